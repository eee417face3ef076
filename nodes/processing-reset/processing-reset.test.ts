import assert from 'node:assert/strict';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import reset from './processing-reset';

describe('processing-reset node', () => {
  const t = processingNodeTest();
  const request = (jobId: string) => ({ req: { params: { jobId }, query: {}, body: {}, headers: {} } });

  it('a failed job goes back to pending with its attempts cleared', async () => {
    await t.load(reset, 'floorflow-processing-reset');
    const jobId = await t.failed('ORD-S1');
    const { out } = await t.send(request(jobId));
    assert.equal(out?.statusCode, 200);
    const data = (out?.payload as { data: { status: string; attempts: number } }).data;
    assert.deepEqual([data.status, data.attempts], ['pending', 0]);
  });

  it('a job that has not failed answers 409 and stays as it is', async () => {
    await t.load(reset, 'floorflow-processing-reset');
    const job = await t.claimed('ORD-S2');
    const { out } = await t.send(request(job.id));
    assert.equal(out?.statusCode, 409);
    const row = await t.db.pool.query(`SELECT status FROM processing.processing_jobs WHERE id = $1`, [
      job.id,
    ]);
    assert.equal(row.rows[0].status, 'processing');
  });
});
