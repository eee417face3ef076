import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import { FloorflowServices, ManualClock } from '../common/services';
import retryBackoff from './retry-backoff';
import { TestDatabase, createTestDatabase, waitFor } from '../../tests/support/db';
import { statusesOf } from '../../tests/support/node-status';

helper.init(require.resolve('node-red'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js') as typeof retryBackoff;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const catchNode = require('@node-red/nodes/core/common/25-catch.js') as typeof retryBackoff;

type FlowNode = Parameters<typeof helper.load>[1][number] & Record<string, unknown>;
type Message = NodeMessage & Record<string, unknown>;

const stageRetries = { policy: 'list', delaysMs: '5000, 15000, 60000', maxAttempts: 4 };

function flowWith(config: Record<string, unknown>): FlowNode[] {
  return [
    { id: 'tab', type: 'tab' },
    { id: 'retry', type: 'floorflow-retry-backoff', z: 'tab', wires: [['attempt'], ['dead']], ...config },
    { id: 'attempt', type: 'helper', z: 'tab' },
    { id: 'dead', type: 'helper', z: 'tab' },
  ];
}

/** Every message that arrives at a helper node, in order. */
function collect(id: string): Message[] {
  const seen: Message[] = [];
  helper.getNode(id).on('input', (msg: Message) => seen.push(msg));
  return seen;
}

describe('retry-backoff node', () => {
  let db: TestDatabase;
  let clock: ManualClock;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });
  beforeEach(async () => {
    clock = new ManualClock();
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
    await db.pool.query('DELETE FROM floorflow.pending_retries');
  });
  afterEach(async () => {
    await helper.unload();
  });

  const pendingRows = async () =>
    (await db.pool.query<{ attempt: number }>('SELECT attempt FROM floorflow.pending_retries ORDER BY id'))
      .rows;

  it('sends a new message to the step at once as attempt 1 with an empty history', async () => {
    await helper.load(retryBackoff, flowWith(stageRetries));
    const attempts = collect('attempt');
    helper.getNode('retry').receive({ payload: { job: 7 } });
    await waitFor(() => attempts.length === 1, 'the first attempt');
    assert.deepEqual(attempts[0].retry, { node: 'retry', attempt: 1, maxAttempts: 4 });
    assert.deepEqual(attempts[0].attempts, []);
    assert.deepEqual(attempts[0].payload, { job: 7 });
  });

  it("waits a processing stage's 5 s, 15 s and 60 s on the clock between attempts, then dead-letters with the history", async () => {
    await helper.load(retryBackoff, flowWith(stageRetries));
    const attempts = collect('attempt');
    const dead = collect('dead');
    const retry = helper.getNode('retry');

    retry.receive({ payload: 'plate 1' });
    await waitFor(() => attempts.length === 1, 'attempt 1');
    const waits = [5000, 15000, 60000];
    for (const [i, wait] of waits.entries()) {
      retry.receive({ ...attempts[i], error: { message: 'machine busy', code: 'FF_MACHINE_FAILED' } });
      await waitFor(async () => (await pendingRows()).length === 1, `retry ${i + 1} stored`);
      await clock.advance(wait - 1);
      assert.equal(attempts.length, i + 1, `attempt ${i + 2} must not go before ${wait} ms`);
      await clock.advance(1);
      await waitFor(() => attempts.length === i + 2, `attempt ${i + 2}`);
      assert.equal(attempts[i + 1].retry && (attempts[i + 1].retry as { attempt: number }).attempt, i + 2);
      assert.equal(attempts[i + 1].error, undefined, 'a retry goes without msg.error');
    }
    retry.receive({ ...attempts[3], error: { message: 'machine busy', code: 'FF_MACHINE_FAILED' } });
    await waitFor(() => dead.length === 1, 'the dead letter');
    const history = dead[0].attempts as Array<{
      attempt: number;
      delayMs?: number;
      error: { code?: string };
    }>;
    assert.deepEqual(
      history.map((a) => [a.attempt, a.delayMs]),
      [
        [1, 5000],
        [2, 15000],
        [3, 60000],
        [4, undefined],
      ],
    );
    assert.equal(history[3].error.code, 'FF_MACHINE_FAILED');
    assert.deepEqual((dead[0].deadLetter as { reason: string }).reason, 'attempts-exhausted');
    assert.deepEqual(await pendingRows(), []);
  });

  it('dead-letters a non-retryable error at once', async () => {
    await helper.load(retryBackoff, flowWith({ ...stageRetries, nonRetryableCodes: 'E_PLATE_DAMAGED' }));
    const dead = collect('dead');
    helper.getNode('retry').receive({ payload: 1, error: { message: 'damaged', code: 'E_PLATE_DAMAGED' } });
    await waitFor(() => dead.length === 1, 'the dead letter');
    assert.equal((dead[0].deadLetter as { reason: string }).reason, 'non-retryable');
    assert.deepEqual(await pendingRows(), []);
  });

  it('shows how many messages wait in its status', async () => {
    await helper.load(retryBackoff, flowWith(stageRetries));
    const retry = helper.getNode('retry');
    retry.receive({ payload: 1, error: { message: 'x' } });
    retry.receive({ payload: 2, error: { message: 'x' } });
    await waitFor(() => statusesOf(retry).some((s) => s.text === '2 waiting'), 'status "2 waiting"');
  });

  it('keeps a waiting retry across a restart and sends it when due', async () => {
    await helper.load(retryBackoff, flowWith(stageRetries));
    helper.getNode('retry').receive({ payload: { job: 42 }, error: { message: 'offline' } });
    await waitFor(async () => (await pendingRows()).length === 1, 'the stored retry');
    await helper.unload();

    await helper.load(retryBackoff, flowWith(stageRetries));
    const attempts = collect('attempt');
    await waitFor(() => clock.pending === 1, 'the reloaded retry scheduled');
    await clock.advance(5000);
    await waitFor(() => attempts.length === 1, 'the retry after the restart');
    assert.deepEqual(attempts[0].payload, { job: 42 });
    assert.equal((attempts[0].retry as { attempt: number }).attempt, 2);
    assert.deepEqual(await pendingRows(), []);
  });

  it('wired around a failing step with a Catch node, retries until the step succeeds', async () => {
    const flow: FlowNode[] = [
      { id: 'tab', type: 'tab' },
      {
        id: 'retry',
        type: 'floorflow-retry-backoff',
        z: 'tab',
        policy: 'exponential',
        initialMs: 1000,
        factor: 2,
        maxMs: 10000,
        jitter: 0,
        maxAttempts: 5,
        wires: [['step'], ['dead']],
      },
      {
        id: 'step',
        type: 'function',
        z: 'tab',
        func: "if (msg.retry.attempt < 3) throw new Error('machine busy'); return msg;",
        outputs: 1,
        wires: [['succeeded']],
      },
      { id: 'catcher', type: 'catch', z: 'tab', scope: ['step'], uncaught: false, wires: [['retry']] },
      { id: 'succeeded', type: 'helper', z: 'tab' },
      { id: 'dead', type: 'helper', z: 'tab' },
    ];
    await helper.load([retryBackoff, functionNode, catchNode], flow);
    const succeeded = collect('succeeded');
    helper.getNode('retry').receive({ payload: 'emboss' });
    await waitFor(async () => (await pendingRows()).length === 1, 'the first retry stored');
    await clock.advance(1000);
    await waitFor(async () => (await pendingRows())[0]?.attempt === 3, 'the second retry stored');
    await clock.advance(2000);
    await waitFor(() => succeeded.length === 1, 'the third attempt succeeding');
    const history = succeeded[0].attempts as Array<{
      attempt: number;
      delayMs: number;
      error: { message: string };
    }>;
    assert.deepEqual(
      history.map((a) => [a.attempt, a.delayMs]),
      [
        [1, 1000],
        [2, 2000],
      ],
    );
    assert.match(history[0].error.message, /machine busy/);
  });

  it('shows a red status and sends nothing with an impossible policy', async () => {
    await helper.load(
      retryBackoff,
      flowWith({ policy: 'exponential', initialMs: 5000, maxMs: 10, factor: 2 }),
    );
    const retry = helper.getNode('retry');
    assert.ok(statusesOf(retry).some((s) => s.fill === 'red'));
  });
});
