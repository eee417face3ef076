import assert from 'node:assert/strict';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import getJob from './processing-job';

describe('processing-job node', () => {
  const t = processingNodeTest();
  const request = (jobId: string) => ({ req: { params: { jobId }, query: {}, body: {}, headers: {} } });

  it('answers the job with its order number, status and attempts', async () => {
    await t.load(getJob, 'floorflow-processing-job');
    const job = await t.claimed('ORD-J1');
    const { out } = await t.send(request(job.id));
    assert.equal(out?.statusCode, 200);
    const data = (out?.payload as { data: Record<string, unknown> }).data;
    assert.equal(data.orderNumber, 'ORD-J1');
    assert.equal(data.status, 'processing');
    assert.equal(data.attempts, 1);
  });

  it('an unknown or malformed job id answers 404', async () => {
    await t.load(getJob, 'floorflow-processing-job');
    for (const id of ['999999', 'abc']) {
      const { out } = await t.send(request(id));
      assert.equal(out?.statusCode, 404);
      assert.deepEqual(out?.payload, { success: false, error: `processing job ${id} not found` });
    }
  });
});
