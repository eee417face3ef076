// The kill -9 rule of docs/processing.md, on the real runtime process: a job found in
// `processing` held by a runtime that is gone is retried from its last completed stage, once;
// jobs pending at start are picked up. Nothing is lost and no stage is recorded twice.
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase, waitFor } from '../support/db';
import { type RuntimeProcess, startRuntimeProcess, tempDir } from '../support/runtime-process';
import { confirmOrder } from '../../store/processing';
import { runtimeFlowsWithWriterFaults } from '../support/processing-fixtures';

const TOKEN = 'processing-crash-test-token-0123456789';

describe('processing after kill -9 of the runtime', function () {
  this.timeout(180000);
  let db: TestDatabase;
  let runtime: RuntimeProcess | undefined;

  before(async () => {
    db = await createTestDatabase();
  });

  // Each test's last runtime is stopped after it: the next test starts its own.
  afterEach(async () => {
    await runtime?.stop('SIGKILL');
    runtime = undefined;
  });

  after(async () => {
    await db.drop();
  });

  const order = async (orderNumber: string, details: Record<string, unknown>) =>
    (
      await db.pool.query<{ id: string }>(
        `INSERT INTO processing.orders (order_number, details) VALUES ($1, $2) RETURNING id::text AS id`,
        [orderNumber, details],
      )
    ).rows[0].id;

  const jobOf = async (orderId: string) =>
    (
      await db.pool.query<{ id: string; status: string; progress: number; attempts: number }>(
        `SELECT id::text AS id, status, progress, attempts FROM processing.processing_jobs WHERE order_id = $1`,
        [orderId],
      )
    ).rows[0];

  it('a job killed mid-stage resumes after its last completed stage once, and a job pending at start runs, each exactly once', async () => {
    const dataDir = tempDir();
    const env = { DATABASE_URL: db.url, FLOORFLOW_API_TOKEN: TOKEN, FLOORFLOW_LOG_LEVEL: 'warn' };
    // The simulated USB writer stops answering on this order's first attempt only.
    runtimeFlowsWithWriterFaults(dataDir, [{ orders: '^ORD-CRASH-1$', fault: 'hang', attempts: 1 }]);
    const interrupted = await order('ORD-CRASH-1', {});
    runtime = await startRuntimeProcess({ dataDir, env });
    const confirmed = await fetch(`${runtime.baseUrl}/api/admin/orders/${interrupted}/confirm`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(confirmed.status, 200);
    // In the middle of stage 3: the USB write started (50 %) and its device stopped answering.
    await waitFor(
      async () => (await jobOf(interrupted))?.progress === 50,
      'job in the middle of usb writing',
      30000,
    );
    assert.equal(await runtime.stop('SIGKILL'), null);
    runtime = undefined;

    // While the runtime is down another order is confirmed; the device answers on the next attempt.
    const pending = await order('ORD-CRASH-2', {});
    await confirmOrder(db.pool, pending, new Date());

    runtime = await startRuntimeProcess({ dataDir, env });
    const resumed = await waitFor(
      async () => {
        const job = await jobOf(interrupted);
        return job?.status === 'completed' ? job : undefined;
      },
      'interrupted job completed after restart',
      60000,
    );
    const picked = await waitFor(
      async () => {
        const job = await jobOf(pending);
        return job?.status === 'completed' ? job : undefined;
      },
      'pending job completed after restart',
      60000,
    );
    assert.equal(resumed.attempts, 2);
    assert.equal(picked.attempts, 1);
    const jobs = await db.pool.query(`SELECT count(*)::int AS n FROM processing.processing_jobs`);
    assert.equal(jobs.rows[0].n, 2);
    const stages = await db.pool.query<{ stage: string; n: number }>(
      `SELECT stage, count(*)::int AS n FROM processing.processing_job_logs WHERE job_id = $1 AND category = 'stage' GROUP BY stage ORDER BY stage`,
      [resumed.id],
    );
    assert.deepEqual(stages.rows, [
      { stage: 'completed', n: 1 },
      { stage: 'content_selection', n: 1 },
      { stage: 'usb_writing', n: 1 },
      { stage: 'validation', n: 1 },
      { stage: 'verification', n: 1 },
    ]);
    const interruptions = await db.pool.query(
      `SELECT count(*)::int AS n FROM processing.processing_job_logs WHERE job_id = $1 AND error_code = 'PROCESSING_INTERRUPTED'`,
      [resumed.id],
    );
    assert.equal(interruptions.rows[0].n, 1);
  });
  it('a job mid-stage when the runtime stops gracefully is given back to retry at once, not left to the monitor', async () => {
    const dataDir = tempDir();
    const env = { DATABASE_URL: db.url, FLOORFLOW_API_TOKEN: TOKEN, FLOORFLOW_LOG_LEVEL: 'warn' };
    runtimeFlowsWithWriterFaults(dataDir, [{ orders: '^ORD-STOP-1$', fault: 'hang' }]);
    const hung = await order('ORD-STOP-1', {});
    runtime = await startRuntimeProcess({ dataDir, env });
    const confirmed = await fetch(`${runtime.baseUrl}/api/admin/orders/${hung}/confirm`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(confirmed.status, 200);
    await waitFor(
      async () => (await jobOf(hung))?.progress === 50,
      'job in the middle of usb writing',
      30000,
    );
    assert.equal(await runtime.stop('SIGTERM'), 0);
    runtime = undefined;
    const job = await jobOf(hung);
    assert.equal(job.status, 'retry');
    const given = await db.pool.query(
      `SELECT message FROM processing.processing_job_logs WHERE job_id = $1 AND error_code = 'PROCESSING_INTERRUPTED'`,
      [job.id],
    );
    assert.deepEqual(
      given.rows.map((r) => r.message),
      ['interrupted: the worker was stopped or redeployed'],
    );
  });
});
