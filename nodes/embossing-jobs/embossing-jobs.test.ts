import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import type { Pool } from 'pg';
import { FloorflowServices, ManualClock } from '../common/services';
import embossingJobs from './embossing-jobs';

helper.init(require.resolve('node-red'));

type Answer = NodeMessage & { statusCode: number; payload: { success: boolean; error?: string } };

/** A database that is away: every query fails as a lost connection does. */
const awayPool = {
  query: () => Promise.reject(new Error('Connection terminated unexpectedly')),
} as unknown as Pool;

function warningsOf(id: string): string[] {
  const log = helper.log() as unknown as {
    args: Array<[{ level: number; id?: string; msg: unknown }]>;
    WARN: number;
  };
  return log.args
    .map(([entry]) => entry)
    .filter((entry) => entry.level === log.WARN && entry.id === id)
    .map((entry) => String(entry.msg));
}

describe('embossing jobs node', () => {
  beforeEach(() => {
    const services: FloorflowServices = {
      pool: awayPool,
      topicPrefix: 'floorflow',
      runtimeId: 'test',
      events: new EventEmitter(),
      flowVersion: () => '1.0.0',
      machineSecret: async () => undefined,
      clock: new ManualClock(new Date('2026-01-05T08:00:00Z')),
    };
    helper.settings({ floorflow: services } as Parameters<typeof helper.settings>[0]);
  });
  afterEach(async () => {
    await helper.unload();
  });

  const flow = [
    { id: 'tab', type: 'tab' },
    { id: 'jobs', type: 'floorflow-embossing-jobs', z: 'tab', wires: [['answer']] },
    { id: 'answer', type: 'helper', z: 'tab' },
  ];

  async function ask(req: Record<string, unknown>): Promise<Answer> {
    await helper.load(embossingJobs, flow);
    const answered = new Promise<Answer>((resolve) =>
      (helper.getNode('answer') as unknown as EventEmitter).on('input', resolve),
    );
    helper.getNode('jobs').receive({ req: { params: {}, query: {}, ...req } } as NodeMessage);
    return answered;
  }

  it('answers an unknown job with 404 in the API shape', async () => {
    const answer = await ask({ params: { id: 'no-such-job' }, route: { path: '/api/embossing-jobs/:id' } });
    assert.equal(answer.statusCode, 404);
    assert.deepEqual(answer.payload, { success: false, error: 'embossing job no-such-job not found' });
  });

  it('answers a failure it did not expect with 500 and no details, and logs the cause for the engineer', async () => {
    const answer = await ask({ query: { limit: '10' }, route: { path: '/api/embossing-jobs' } });
    assert.equal(answer.statusCode, 500);
    assert.deepEqual(answer.payload, { success: false, error: 'internal error' });
    assert.deepEqual(warningsOf('jobs'), ['request failed: Connection terminated unexpectedly']);
  });
});
