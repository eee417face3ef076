import assert from 'node:assert/strict';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import queue from './processing-queue';

describe('processing-queue node', () => {
  const t = processingNodeTest();

  it('counts the jobs by status, with the running ones as active', async () => {
    await t.load(queue, 'floorflow-processing-queue');
    await t.claimed('ORD-Q1');
    const { out } = await t.send({ req: { params: {}, query: {}, body: {}, headers: {} } });
    assert.equal(out?.statusCode, 200);
    const data = (out?.payload as { data: { total: number; processing: number; activeJobs: number } }).data;
    assert.ok(data.total >= 1);
    assert.equal(data.activeJobs, data.processing);
    assert.ok(data.processing >= 1);
  });
});
