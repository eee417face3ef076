import assert from 'node:assert/strict';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import retry from './processing-retry';

describe('processing-retry node', () => {
  const t = processingNodeTest();

  it("a first failed attempt is retried 5 s later, with the Catch node's error as fail_reason and a PROCESSING_FAILED row", async () => {
    await t.load(retry, 'floorflow-processing-retry');
    const job = await t.claimed('ORD-R1');
    const { out } = await t.send({
      payload: job,
      error: { message: 'usb_writing: the device is full', code: 'FF_MACHINE_FAILED' },
    });
    const outcome = out?.outcome as { outcome: string; nextAttemptAt: Date };
    assert.equal(outcome.outcome, 'retry');
    assert.equal(new Date(outcome.nextAttemptAt).getTime(), t.clock.now().getTime() + 5000);
    const row = await t.db.pool.query(
      `SELECT status, fail_reason FROM processing.processing_jobs WHERE id = $1`,
      [job.id],
    );
    assert.deepEqual(row.rows[0], { status: 'retry', fail_reason: 'usb_writing: the device is full' });
    const errors = await t.db.pool.query(
      `SELECT error_code FROM processing.processing_job_logs WHERE job_id = $1 AND level = 'error'`,
      [job.id],
    );
    assert.deepEqual(errors.rows, [{ error_code: 'PROCESSING_FAILED' }]);
  });

  it('a failure reported by an attempt whose job was taken back changes nothing', async () => {
    await t.load(retry, 'floorflow-processing-retry');
    const job = await t.claimed('ORD-R2');
    const { out } = await t.send({
      payload: { ...job, lease_token: '00000000-0000-4000-8000-000000000000' },
      error: { message: 'late' },
    });
    assert.deepEqual(out?.outcome, { outcome: 'lease_lost' });
    const row = await t.db.pool.query(`SELECT status FROM processing.processing_jobs WHERE id = $1`, [
      job.id,
    ]);
    assert.equal(row.rows[0].status, 'processing');
  });
});
