// For the processing nodes' own tests (nodes/processing-*/): one node under
// node-red-node-test-helper with the floorflow services on a fresh database and a ManualClock,
// a helper node on its output and a Catch node on its failures, and orders and claimed jobs
// made through the store as the confirm route and the queue worker make them.
import { EventEmitter } from 'node:events';
import type { NodeInitializer, NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import { type FloorflowServices, ManualClock } from '../../nodes/common/services';
import { type ClaimedProcessingJob, claimJobs, confirmOrder, failAttempt } from '../../store/processing';
import { type TestDatabase, createTestDatabase, waitFor } from './db';

helper.init(require.resolve('node-red'));

// Node-RED's own Catch node, which sees what a node passes to done(err).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const catchNode = require('@node-red/nodes/core/common/25-catch.js') as NodeInitializer;

export type Message = NodeMessage & Record<string, unknown>;

export interface ProcessingNodeTest {
  db: TestDatabase;
  clock: ManualClock;
  /** Loads the node `type` (id `node`) with `config`; its output goes to helper `out`, its failures to helper `caught`. */
  load(init: NodeInitializer, type: string, config?: Record<string, unknown>): Promise<void>;
  /** Sends `msg` to the node and resolves with what arrives at `out` or `caught` first. */
  send(msg: Record<string, unknown>): Promise<{ out?: Message; caught?: Message }>;
  /** A new order (pending) with `details`; its id. */
  order(orderNumber: string, details?: Record<string, unknown>): Promise<string>;
  /** A confirmed order's job, claimed as the queue worker claims it. */
  claimed(orderNumber: string, details?: Record<string, unknown>): Promise<ClaimedProcessingJob>;
  /** A confirmed order's job after four failed attempts: `failed`. Its id. */
  failed(orderNumber: string): Promise<string>;
}

/** Sets up the database and services for a describe block; call at its top. */
export function processingNodeTest(): ProcessingNodeTest {
  const at = new Date('2026-01-05T08:00:00Z');
  const test = { clock: new ManualClock(at) } as ProcessingNodeTest;

  before(async () => {
    test.db = await createTestDatabase();
  });
  after(async () => {
    await test.db.drop();
  });
  beforeEach(() => {
    test.clock = new ManualClock(at);
    const services: FloorflowServices = {
      pool: test.db.pool,
      topicPrefix: 'floorflow',
      runtimeId: 'test',
      events: new EventEmitter(),
      flowVersion: () => '2.0.0',
      machineSecret: async () => undefined,
      clock: test.clock,
    };
    helper.settings({ floorflow: services } as Parameters<typeof helper.settings>[0]);
  });
  afterEach(async () => {
    await helper.unload();
  });

  test.load = async (init, type, config = {}) => {
    await helper.load([init, catchNode], [
      { id: 'tab', type: 'tab' },
      { id: 'node', type, z: 'tab', x: 100, y: 100, wires: [['out']], ...config },
      { id: 'out', type: 'helper', z: 'tab', x: 300, y: 100 },
      { id: 'stage-failed', type: 'catch', z: 'tab', x: 100, y: 200, scope: ['node'], wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'tab', x: 300, y: 200 },
    ] as Parameters<typeof helper.load>[1]);
  };

  test.send = (msg) =>
    new Promise((resolve) => {
      helper.getNode('out').on('input', (m: Message) => resolve({ out: m }));
      helper.getNode('caught').on('input', (m: Message) => resolve({ caught: m }));
      helper.getNode('node').receive(msg as NodeMessage);
    });

  test.order = async (orderNumber, details = {}) =>
    (
      await test.db.pool.query<{ id: string }>(
        `INSERT INTO processing.orders (order_number, details) VALUES ($1, $2) RETURNING id::text AS id`,
        [orderNumber, details],
      )
    ).rows[0].id;

  const claim = (jobId: string, now: Date) =>
    waitFor(async () => {
      const jobs = await claimJobs(test.db.pool, { owner: 'test/worker', max: 100, now });
      return jobs.find((j) => j.id === jobId);
    }, `job ${jobId} claimed`);

  test.claimed = async (orderNumber, details = {}) => {
    const orderId = await test.order(orderNumber, details);
    const { job } = await confirmOrder(test.db.pool, orderId, test.clock.now());
    return claim(job.id, test.clock.now());
  };

  test.failed = async (orderNumber) => {
    let job = await test.claimed(orderNumber);
    let now = test.clock.now();
    for (;;) {
      const outcome = await failAttempt(test.db.pool, job, { message: 'broken' }, undefined, now);
      if (outcome.outcome !== 'retry') return job.id;
      now = outcome.nextAttemptAt;
      job = await claim(job.id, now);
    }
  };

  return test;
}
