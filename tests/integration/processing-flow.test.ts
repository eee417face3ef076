// The processing pipeline against the shipped flows/processing.json: real PostgreSQL, the manual
// clock, the simulated USB writer with a fault profile for some orders. Tests drive the HTTP
// routes and the clock and await rows.
import assert from 'node:assert/strict';
import type { Pool } from 'pg';
import type { SimulatedWriterFault } from '../../core/processing';
import { type FlowKit, startFlowKit } from '../support/flow-kit';
import { processingFlowWithWriterFaults } from '../support/processing-fixtures';

/** What the simulated USB writer does to the orders these tests name; every other order is written. */
const WRITER_FAULTS: SimulatedWriterFault[] = [
  // Stays in the writer, so no attempt finishes while a test looks.
  { orders: '^ORD-1$', fault: 'hang' },
  { orders: '^ORD-4$', fault: 'fail' },
  { orders: '^ORD-5$', fault: 'fail', attempts: 1 },
  { orders: '^ORD-MAX-', fault: 'hang' },
  // The device stops answering on the first attempt and is fixed by the next.
  { orders: '^ORD-6$', fault: 'hang', attempts: 1 },
];

async function createOrder(
  pool: Pool,
  orderNumber: string,
  details: Record<string, unknown> = {},
): Promise<string> {
  const result = await pool.query<{ id: string }>(
    `INSERT INTO processing.orders (order_number, details) VALUES ($1, $2) RETURNING id::text AS id`,
    [orderNumber, details],
  );
  return result.rows[0].id;
}

interface JobState {
  id: string;
  status: string;
  progress: number;
  attempts: number;
  completed_stage: string | null;
  fail_reason: string | null;
  next_attempt_at: Date;
}

async function jobOf(pool: Pool, orderId: string): Promise<JobState | undefined> {
  const result = await pool.query<JobState>(
    `SELECT id::text AS id, status, progress, attempts, completed_stage, fail_reason, next_attempt_at FROM processing.processing_jobs WHERE order_id = $1`,
    [orderId],
  );
  return result.rows[0];
}

async function logsOf(
  pool: Pool,
  jobId: string,
): Promise<
  Array<{
    level: string;
    category: string;
    stage: string | null;
    error_code: string | null;
    flow_version: string | null;
  }>
> {
  const result = await pool.query(
    `SELECT level, category, stage, error_code, flow_version FROM processing.processing_job_logs WHERE job_id = $1 ORDER BY id`,
    [jobId],
  );
  return result.rows;
}

describe('processing flow', function () {
  this.timeout(30000);
  let kit: FlowKit;

  beforeEach(async () => {
    kit = await startFlowKit({ flows: [processingFlowWithWriterFaults(WRITER_FAULTS)], broker: false });
  });

  afterEach(async () => {
    await kit.stop();
  });

  const confirm = (orderId: string) => kit.request().post(`/api/admin/orders/${orderId}/confirm`);

  const untilJob = (orderId: string, what: string, check: (job: JobState) => boolean) =>
    kit.waitFor(async () => {
      const job = await jobOf(kit.pool, orderId);
      return job && check(job) ? job : undefined;
    }, what);

  it('confirming an order creates one pending job at progress 0, and confirming it again creates no second job', async () => {
    // No attempt may finish before we look: the writer hangs on this order.
    const orderId = await createOrder(kit.pool, 'ORD-1');
    const first = await confirm(orderId).expect(200);
    assert.equal(first.body.success, true);
    assert.equal(first.body.message, 'Order confirmed successfully');
    assert.equal(first.body.data.created, true);
    const second = await confirm(orderId).expect(200);
    assert.equal(second.body.data.created, false);
    assert.equal(second.body.data.job.id, first.body.data.job.id);
    const jobs = await kit.pool.query(
      `SELECT count(*)::int AS n FROM processing.processing_jobs WHERE order_id = $1`,
      [orderId],
    );
    assert.equal(jobs.rows[0].n, 1);
    assert.equal(first.body.data.job.progress, 0);
    assert.equal(first.body.data.job.status, 'pending');
    const order = await kit.pool.query(`SELECT status FROM processing.orders WHERE id = $1`, [orderId]);
    assert.equal(order.rows[0].status, 'confirmed');
  });

  it('confirming an unknown order answers 404 in the API error shape', async () => {
    const res = await confirm('999999').expect(404);
    assert.deepEqual(res.body, { success: false, error: 'order 999999 not found' });
  });

  it('a confirmed order runs through the four stages with a log row each and ends completed at 100', async () => {
    const orderId = await createOrder(kit.pool, 'ORD-2', {
      content: ['intro.mp4', { name: 'catalog.pdf', bytes: 4096 }],
    });
    await confirm(orderId).expect(200);
    const job = await untilJob(orderId, 'job completed', (j) => j.status === 'completed');
    assert.equal(job.progress, 100);
    assert.equal(job.attempts, 1);
    const stages = (await logsOf(kit.pool, job.id)).filter((l) => l.category === 'stage').map((l) => l.stage);
    assert.deepEqual(stages, ['validation', 'content_selection', 'usb_writing', 'verification', 'completed']);
    const versions = new Set(
      (await logsOf(kit.pool, job.id)).filter((l) => l.category === 'stage').map((l) => l.flow_version),
    );
    assert.equal(versions.size, 1);
    assert.ok([...versions][0], 'stage logs carry the flow version');
    const progress = await kit.pool.query(
      `SELECT (details->>'progress')::int AS p FROM processing.processing_job_logs WHERE job_id = $1 AND category = 'stage' ORDER BY id`,
      [job.id],
    );
    assert.deepEqual(
      progress.rows.map((r) => r.p),
      [10, 30, 80, 90, 100],
    );

    const shown = await kit.request().get(`/v1/processing/job/${job.id}`).expect(200);
    assert.equal(shown.body.data.orderNumber, 'ORD-2');
    assert.equal(shown.body.data.status, 'completed');
    assert.equal(shown.body.data.progress, 100);

    const transitions = await kit.pool.query(
      `SELECT from_state, to_state FROM floorflow.lifecycle_transitions WHERE lifecycle = 'processing-job' AND entity_id = $1 ORDER BY id`,
      [job.id],
    );
    assert.deepEqual(
      transitions.rows.map((r) => `${r.from_state}->${r.to_state}`),
      ['pending->processing', 'processing->completed'],
    );
    const announced: unknown[] = [];
    kit.services.events.on('lifecycle', (e: { lifecycle: string }) => announced.push(e.lifecycle));
    const next = await createOrder(kit.pool, 'ORD-2b');
    await confirm(next).expect(200);
    await untilJob(next, 'second job completed', (j) => j.status === 'completed');
    await kit.waitFor(() => announced.length === 3, 'confirm, start and complete announced');
    assert.deepEqual(announced, ['processing-order', 'processing-job', 'processing-job']);
  });

  it("the queue routes answer in the API's shape with counts, active jobs, max concurrency and the average duration", async () => {
    const orderId = await createOrder(kit.pool, 'ORD-3');
    await confirm(orderId).expect(200);
    await untilJob(orderId, 'job completed', (j) => j.status === 'completed');
    for (const path of ['/v1/processing/queue', '/api/admin/processing/queue']) {
      const res = await kit.request().get(path).expect(200);
      assert.equal(res.body.success, true);
      const data = res.body.data;
      assert.equal(data.total, 1);
      assert.equal(data.completed, 1);
      assert.equal(data.pending, 0);
      assert.equal(data.activeJobs, 0);
      assert.equal(data.maxConcurrent, 3);
      assert.deepEqual(data.dbStats.by_status, [{ status: 'completed', count: 1 }]);
      assert.equal(typeof data.dbStats.avg_duration_minutes, 'number');
    }
  });

  it('a failing stage retries after 5 s, 15 s and 60 s and then fails with fail_reason and PROCESSING_FAILED logs', async () => {
    const orderId = await createOrder(kit.pool, 'ORD-4');
    const start = kit.clock.now().getTime();
    await confirm(orderId).expect(200);
    const delays: number[] = [];
    let job = await untilJob(orderId, 'first failure', (j) => j.status === 'retry' && j.attempts === 1);
    for (const [attempt, wait] of [
      [2, 5000],
      [3, 15000],
      [4, 60000],
    ]) {
      delays.push(job.next_attempt_at.getTime() - kit.clock.now().getTime());
      await kit.clock.advance(wait);
      job = await untilJob(
        orderId,
        `attempt ${attempt} done`,
        (j) => j.attempts === attempt && j.status !== 'processing',
      );
    }
    assert.deepEqual(delays, [5000, 15000, 60000]);
    assert.equal(job.status, 'failed');
    assert.match(job.fail_reason ?? '', /failed writing order ORD-4 \(simulated fault, attempt 4\)/);
    assert.equal(kit.clock.now().getTime() - start, 80000);
    const errors = (await logsOf(kit.pool, job.id)).filter((l) => l.level === 'error');
    assert.equal(errors.length, 4);
    assert.ok(
      errors.every(
        (l) => l.error_code === 'PROCESSING_FAILED' && l.category === 'system' && l.stage === 'usb_writing',
      ),
    );
  });

  it('a retried job resumes after its last completed stage instead of running the earlier stages again', async () => {
    const orderId = await createOrder(kit.pool, 'ORD-5');
    await confirm(orderId).expect(200);
    await untilJob(orderId, 'first failure', (j) => j.status === 'retry');
    await kit.clock.advance(5000);
    const job = await untilJob(orderId, 'job completed', (j) => j.status === 'completed');
    assert.equal(job.attempts, 2);
    const stages = (await logsOf(kit.pool, job.id)).filter((l) => l.category === 'stage').map((l) => l.stage);
    assert.deepEqual(stages, ['validation', 'content_selection', 'usb_writing', 'verification', 'completed']);
  });

  it('the worker runs at most 3 jobs at once and leaves the others pending', async () => {
    const orders: string[] = [];
    for (let i = 0; i < 5; i++) orders.push(await createOrder(kit.pool, `ORD-MAX-${i}`));
    for (const orderId of orders) await confirm(orderId).expect(200);
    const counts = async () =>
      Object.fromEntries(
        (
          await kit.pool.query<{ status: string; n: number }>(
            `SELECT status, count(*)::int AS n FROM processing.processing_jobs GROUP BY status`,
          )
        ).rows.map((r) => [r.status, r.n]),
      );
    await kit.waitFor(async () => (await counts()).processing === 3, 'three jobs processing');
    await kit.clock.advance(5000);
    assert.deepEqual(await counts(), { processing: 3, pending: 2 });
    const queue = await kit.request().get('/v1/processing/queue').expect(200);
    assert.equal(queue.body.data.activeJobs, 3);
  });

  it('the monitor moves a job stuck in processing for more than 5 minutes back to retry, and it then completes', async () => {
    const orderId = await createOrder(kit.pool, 'ORD-6');
    await confirm(orderId).expect(200);
    await untilJob(
      orderId,
      'job hanging in usb writing',
      (j) => j.status === 'processing' && j.progress === 50,
    );
    // The writer's fault profile hangs the first attempt only: the device is fixed while the job hangs.
    await kit.clock.advance(4 * 60 * 1000);
    assert.equal((await jobOf(kit.pool, orderId))!.status, 'processing', 'not stuck yet after 4 minutes');
    await kit.clock.advance(2 * 60 * 1000);
    const job = await untilJob(orderId, 'job completed after the monitor', (j) => j.status === 'completed');
    assert.equal(job.attempts, 2);
    const warnings = (await logsOf(kit.pool, job.id)).filter((l) => l.error_code === 'PROCESSING_STUCK');
    assert.equal(warnings.length, 1);
    const writes = (await logsOf(kit.pool, job.id)).filter(
      (l) => l.category === 'stage' && l.stage === 'usb_writing',
    );
    assert.equal(writes.length, 1, 'the hung attempt, whose lease was taken back, recorded nothing');
  });

  it('what an order carries cannot make a real stage fail or hang: a request for a simulated failure is ignored', async () => {
    const asks = [
      { simulate: { fail_stage: 'validation' } },
      { simulate: { fail_stage: 'content_selection' } },
      { simulate: { fail_stage: 'usb_writing' } },
      { simulate: { fail_stage: 'verification' } },
      { simulate: { hang_stage: 'usb_writing' } },
    ];
    const orders: string[] = [];
    for (const [i, details] of asks.entries())
      orders.push(await createOrder(kit.pool, `ORD-ASKS-${i}`, details));
    for (const orderId of orders) await confirm(orderId).expect(200);
    for (const orderId of orders) {
      const job = await untilJob(
        orderId,
        `job of order ${orderId} completed`,
        (j) => j.status === 'completed',
      );
      assert.equal(job.attempts, 1);
      assert.equal(job.fail_reason, null);
      const errors = (await logsOf(kit.pool, job.id)).filter((l) => l.level === 'error');
      assert.deepEqual(errors, []);
    }
  });
});
