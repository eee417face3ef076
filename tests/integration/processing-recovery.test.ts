// Processing job logs and the manual recovery of a failed job, over HTTP against the shipped
// flows/processing.json: real PostgreSQL, the manual clock, the simulated USB writer.
import assert from 'node:assert/strict';
import type { Identity } from '../../core/access';
import { type FlowKit, startFlowKit } from '../support/flow-kit';

const OPERATOR: Identity = { kind: 'user', name: 'olga', role: 'operator', session: 's' };

describe('processing job logs and manual recovery', function () {
  this.timeout(30000);
  let kit: FlowKit;

  beforeEach(async () => {
    kit = await startFlowKit({ flows: ['flows/processing.json'], broker: false });
  });

  afterEach(async () => {
    await kit.stop();
  });

  async function createOrder(orderNumber: string, details: Record<string, unknown> = {}): Promise<string> {
    const result = await kit.pool.query<{ id: string }>(
      `INSERT INTO processing.orders (order_number, details) VALUES ($1, $2) RETURNING id::text AS id`,
      [orderNumber, details],
    );
    return result.rows[0].id;
  }

  async function jobOf(orderId: string) {
    const result = await kit.pool.query<{ id: string; status: string; attempts: number }>(
      `SELECT id::text AS id, status, attempts FROM processing.processing_jobs WHERE order_id = $1`,
      [orderId],
    );
    return result.rows[0];
  }

  const untilStatus = (orderId: string, status: string, attempts?: number) =>
    kit.waitFor(async () => {
      const job = await jobOf(orderId);
      return job && job.status === status && (attempts === undefined || job.attempts === attempts)
        ? job
        : undefined;
    }, `job of order ${orderId} ${status}`);

  /**
   * Confirms an order whose validation fails on every attempt (its content is not a list of
   * files) and runs it to `failed` (5, 15, 60 s).
   */
  async function failedJob(orderNumber: string): Promise<{ orderId: string; jobId: string }> {
    const orderId = await createOrder(orderNumber, { content: 'catalogue.pdf' });
    await kit.request().post(`/api/admin/orders/${orderId}/confirm`).expect(200);
    await untilStatus(orderId, 'retry', 1);
    for (const [attempt, wait] of [
      [2, 5000],
      [3, 15000],
      [4, 60000],
    ]) {
      await kit.clock.advance(wait);
      await kit.waitFor(async () => {
        const job = await jobOf(orderId);
        return job.attempts === attempt && job.status !== 'processing';
      }, `attempt ${attempt}`);
    }
    const job = await untilStatus(orderId, 'failed');
    return { orderId, jobId: job.id };
  }

  it("GET /v1/processing/job/:jobId/logs answers a completed job's log rows in order, with stage, level and flow version", async () => {
    const orderId = await createOrder('ORD-L1');
    await kit.request().post(`/api/admin/orders/${orderId}/confirm`).expect(200);
    const job = await untilStatus(orderId, 'completed');
    const res = await kit.request().get(`/v1/processing/job/${job.id}/logs`).expect(200);
    assert.equal(res.body.success, true);
    assert.equal(res.body.data.jobId, Number(job.id));
    const logs = res.body.data.logs as Array<Record<string, unknown>>;
    assert.equal(res.body.data.count, logs.length);
    assert.deepEqual(
      logs.filter((l) => l.category === 'stage').map((l) => l.stage),
      ['validation', 'content_selection', 'usb_writing', 'verification', 'completed'],
    );
    assert.equal(logs[0].category, 'order');
    const ids = logs.map((l) => l.id as number);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
    const stageLog = logs.find((l) => l.stage === 'validation')!;
    assert.equal(stageLog.level, 'info');
    assert.ok(stageLog.flowVersion, 'a stage log names the flow version that wrote it');
    assert.equal(typeof stageLog.createdAt, 'string');
    assert.equal((stageLog.details as { progress: number }).progress, 10);
  });

  it('the logs of an unknown or malformed job id answer 404 in the API error shape', async () => {
    const unknown = await kit.request().get('/v1/processing/job/999999/logs').expect(404);
    assert.deepEqual(unknown.body, { success: false, error: 'processing job 999999 not found' });
    const malformed = await kit.request().get('/v1/processing/job/abc/logs').expect(404);
    assert.deepEqual(malformed.body, { success: false, error: 'processing job abc not found' });
  });

  it('a failed job reset by an operator runs again from the first stage and completes, and its logs say who reset it', async () => {
    const { orderId, jobId } = await failedJob('ORD-R1');
    // The cause is fixed on the order (its content made a list), then the job is recovered.
    await kit.pool.query(
      `UPDATE processing.orders SET details = '{"content": ["catalogue.pdf"]}' WHERE id = $1`,
      [orderId],
    );
    const res = await kit.requestAs(OPERATOR).post(`/v1/processing/job/${jobId}/reset`).expect(200);
    assert.equal(res.body.success, true);
    assert.equal(res.body.data.status, 'pending');
    assert.equal(res.body.data.attempts, 0);
    assert.equal(res.body.data.progress, 0);
    assert.equal(res.body.data.failReason, null);

    const done = await untilStatus(orderId, 'completed');
    assert.equal(done.attempts, 1);
    const logs = (await kit.request().get(`/v1/processing/job/${jobId}/logs`).expect(200)).body.data
      .logs as Array<Record<string, unknown>>;
    const recovery = logs.filter((l) => l.category === 'recovery');
    assert.equal(recovery.length, 1);
    assert.match(recovery[0].message as string, /reset by olga/);
    assert.equal((recovery[0].details as { previousAttempts: number }).previousAttempts, 4);
    // After the reset, every stage ran once more, in order.
    const after = logs.slice(logs.indexOf(recovery[0]) + 1).filter((l) => l.category === 'stage');
    assert.deepEqual(
      after.map((l) => l.stage),
      ['validation', 'content_selection', 'usb_writing', 'verification', 'completed'],
    );
    const audit = await kit.pool.query<{
      actor: string;
      source: string;
      from_state: string;
      to_state: string;
    }>(
      `SELECT actor, source, from_state, to_state FROM floorflow.lifecycle_transitions
       WHERE lifecycle = 'processing-job' AND entity_id = $1 AND action = 'reset'`,
      [jobId],
    );
    assert.deepEqual(audit.rows, [
      { actor: 'olga', source: 'manual recovery', from_state: 'failed', to_state: 'pending' },
    ]);
  });

  it('resetting a job that has not failed answers 409 and changes nothing; an unknown job answers 404', async () => {
    const orderId = await createOrder('ORD-R2');
    await kit.request().post(`/api/admin/orders/${orderId}/confirm`).expect(200);
    const job = await untilStatus(orderId, 'completed');
    const refused = await kit.requestAs(OPERATOR).post(`/v1/processing/job/${job.id}/reset`).expect(409);
    assert.equal(refused.body.success, false);
    assert.match(refused.body.error, /reset/);
    assert.equal((await jobOf(orderId)).status, 'completed');
    const unknown = await kit.requestAs(OPERATOR).post('/v1/processing/job/999999/reset').expect(404);
    assert.deepEqual(unknown.body, { success: false, error: 'processing job 999999 not found' });
  });

  it('a reset that names who did it in the body is refused with 400', async () => {
    const { jobId } = await failedJob('ORD-R3');
    const res = await kit
      .requestAs(OPERATOR)
      .post(`/v1/processing/job/${jobId}/reset`)
      .send({ actor: 'someone-else' })
      .expect(400);
    assert.equal(res.body.success, false);
    assert.match(res.body.error, /actor is not accepted/);
  });
});
