import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import { FloorflowServices, ManualClock } from '../common/services';
import embosser from './embosser';
import { claimJobs, createJob, getJob } from '../../store/embossing';
import { MachineStore } from '../../store/machines';
import { TestDatabase, createTestDatabase, waitFor } from '../../tests/support/db';
import { statusesOf } from '../../tests/support/node-status';

helper.init(require.resolve('node-red'));

type FlowNode = Parameters<typeof helper.load>[1][number] & Record<string, unknown>;
type Message = NodeMessage & Record<string, unknown>;

function flowWith(config: Record<string, unknown>): FlowNode[] {
  return [
    { id: 'tab', type: 'tab' },
    { id: 'emb', type: 'floorflow-embosser', z: 'tab', wires: [['done'], ['cmd'], ['reply']], ...config },
    { id: 'done', type: 'helper', z: 'tab' },
    { id: 'cmd', type: 'helper', z: 'tab' },
    { id: 'reply', type: 'helper', z: 'tab' },
  ];
}

describe('embosser node', () => {
  let db: TestDatabase;
  let clock: ManualClock;
  const at = new Date('2026-01-05T08:00:00Z');

  before(async () => {
    db = await createTestDatabase();
    await new MachineStore(db.pool, crypto.randomBytes(16).toString('hex')).add('EMB-1', 'embosser');
  });
  after(async () => {
    await db.drop();
  });
  beforeEach(() => {
    clock = new ManualClock(at);
    const services: FloorflowServices = {
      pool: db.pool,
      topicPrefix: 'floorflow',
      runtimeId: 'test',
      events: new EventEmitter(),
      flowVersion: () => '1.0.0',
      machineSecret: async () => undefined,
      clock,
    };
    helper.settings({ floorflow: services } as Parameters<typeof helper.settings>[0]);
  });
  afterEach(async () => {
    await helper.unload();
  });

  async function heldJob(): Promise<string> {
    const plate = await db.pool.query<{ id: string }>(
      `INSERT INTO embossing.plates (plate_number, status) VALUES ('N-1', 'in_production') RETURNING id::text AS id`,
    );
    const { job } = await createJob(db.pool, { plateIds: [plate.rows[0].id], machineId: 'EMB-1' }, { at });
    const claimed = await claimJobs(db.pool, { max: 100, now: at });
    assert.ok(claimed.some((j) => j.id === job.id));
    return job.id;
  }

  it('with "machine offline: wait" puts the job back in the queue for later instead of failing it', async () => {
    await helper.load(embosser, flowWith({ whenOffline: 'wait', offlineWait: 30 }));
    const jobId = await heldJob();
    const commands: Message[] = [];
    helper.getNode('cmd').on('input', (m: Message) => commands.push(m));
    helper.getNode('emb').receive({ payload: { id: jobId } } as NodeMessage);
    await waitFor(async () => {
      const row = await db.pool.query<{ next_attempt_at: Date }>(
        'SELECT next_attempt_at FROM embossing.embossing_jobs WHERE id = $1',
        [jobId],
      );
      return row.rows[0].next_attempt_at.getTime() === at.getTime() + 30000;
    }, 'the job due again in 30 s');
    assert.equal((await getJob(db.pool, jobId))?.status, 'queued');
    assert.deepEqual(commands, [], 'nothing was sent to the offline machine');
    const log = await db.pool.query<{ result: string }>(
      'SELECT result FROM embossing.machine_messages WHERE job_id = $1',
      [jobId],
    );
    assert.deepEqual(
      log.rows.map((r) => r.result),
      ['not sent: machine offline'],
    );
  });

  it("shows each machine's announced state in its status", async () => {
    await helper.load(embosser, flowWith({}));
    const node = helper.getNode('emb');
    node.receive({ topic: 'floorflow/machines/EMB-1/status', payload: '{"state":"busy"}' } as NodeMessage);
    await waitFor(() => statusesOf(node).some((s) => s.text === 'EMB-1 busy'), 'status "EMB-1 busy"');
    node.receive({ topic: 'floorflow/machines/EMB-1/status', payload: { state: 'offline' } } as NodeMessage);
    await waitFor(
      () => statusesOf(node).some((s) => s.text === 'EMB-1 offline' && s.fill === 'yellow'),
      'status "EMB-1 offline"',
    );
  });

  it('logs and ignores an event it cannot read, changing no job', async () => {
    await helper.load(embosser, flowWith({}));
    helper.getNode('emb').receive({
      topic: 'floorflow/machines/EMB-1/event',
      payload: { job_id: 'x', status: '?' },
    } as NodeMessage);
    await waitFor(async () => {
      const log = await db.pool.query<{ result: string }>(
        `SELECT result FROM embossing.machine_messages WHERE direction = 'in' AND machine_id = 'EMB-1'`,
      );
      return log.rows.some((r) => r.result.startsWith('rejected'));
    }, 'the rejected event logged');
  });

  it('shows a red status for a profile list that is not valid', async () => {
    await helper.load(embosser, flowWith({ profiles: '[{"name": "x"}]' }));
    assert.ok(statusesOf(helper.getNode('emb')).some((s) => s.fill === 'red'));
    await helper.unload();
    await helper.load(embosser, flowWith({ profile: 'no-such-profile' }));
    assert.ok(statusesOf(helper.getNode('emb')).some((s) => s.fill === 'red'));
  });
});
