import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import { type FloorflowServices, ManualClock } from '../common/services';
import { statusesOf } from '../../tests/support/node-status';
import engravingAlert from './engraving-alert';

helper.init(require.resolve('node-red'));

type FlowNode = Parameters<typeof helper.load>[1][number] & Record<string, unknown>;
type Message = NodeMessage & Record<string, unknown>;

const flow: FlowNode[] = [
  { id: 'tab', type: 'tab' },
  {
    id: 'alert',
    type: 'floorflow-engraving-alert',
    z: 'tab',
    name: 'call a person',
    schemaVersion: 1,
    wires: [['next']],
  },
  { id: 'next', type: 'helper', z: 'tab' },
];

describe('engraving alert node (call a person)', () => {
  let events: EventEmitter;
  const alerts: Array<Record<string, unknown>> = [];
  const at = new Date('2026-01-05T08:00:00Z');

  beforeEach(() => {
    alerts.length = 0;
    events = new EventEmitter();
    events.on('alert', (body: Record<string, unknown>) => alerts.push(body));
    const services = {
      topicPrefix: 'floorflow',
      runtimeId: 'test',
      events,
      flowVersion: () => '1.2.0',
      machineSecret: async () => undefined,
      clock: new ManualClock(at),
    } as unknown as FloorflowServices;
    helper.settings({ floorflow: services } as Parameters<typeof helper.settings>[0]);
  });
  afterEach(async () => {
    await helper.unload();
    helper.settings({} as Parameters<typeof helper.settings>[0]);
  });

  async function through(payload: Record<string, unknown>): Promise<Message> {
    await helper.load(engravingAlert, flow);
    const passed = new Promise<Message>((resolve) => helper.getNode('next').on('input', resolve));
    helper.getNode('alert').receive({ topic: 'engraving/x', payload } as NodeMessage);
    return passed;
  }

  it('an escalated job raises engraving_job_escalated with its reason and goes on unchanged', async () => {
    const payload = { jobId: 7, status: 'escalated', machineId: null, reason: 'QA failed 3 times', at };
    const passed = await through(payload);
    assert.deepEqual(passed.payload, payload);
    assert.deepEqual(alerts, [
      { name: 'engraving_job_escalated', severity: 'warning', jobId: 7, reason: 'QA failed 3 times', at },
    ]);
  });

  it('a job that needs attention raises engraving_job_needs_attention naming its engraver', async () => {
    await through({
      jobId: 8,
      status: 'needs_attention',
      machineId: 'engraver-1',
      reason: 'laser fault',
      at,
    });
    assert.deepEqual(alerts, [
      {
        name: 'engraving_job_needs_attention',
        severity: 'warning',
        jobId: 8,
        machineId: 'engraver-1',
        reason: 'laser fault',
        at,
      },
    ]);
  });

  it('outside the floorflow runtime it says so in red and raises nothing', async () => {
    helper.settings({} as Parameters<typeof helper.settings>[0]);
    await helper.load(engravingAlert, flow);
    assert.deepEqual(statusesOf(helper.getNode('alert')), [
      { fill: 'red', shape: 'ring', text: 'needs the floorflow runtime' },
    ]);
  });
});
