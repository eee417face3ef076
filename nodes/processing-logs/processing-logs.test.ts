import assert from 'node:assert/strict';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import logs from './processing-logs';

describe('processing-logs node', () => {
  const t = processingNodeTest();
  const request = (jobId: string) => ({ req: { params: { jobId }, query: {}, body: {}, headers: {} } });

  it("answers the job's log rows oldest first, with their count", async () => {
    await t.load(logs, 'floorflow-processing-logs');
    const job = await t.claimed('ORD-G1');
    const { out } = await t.send(request(job.id));
    const data = (
      out?.payload as { data: { jobId: number; logs: Array<{ category: string }>; count: number } }
    ).data;
    assert.equal(data.jobId, Number(job.id));
    assert.deepEqual(
      data.logs.map((l) => l.category),
      ['order', 'worker'],
    );
    assert.equal(data.count, 2);
  });

  it('an unknown job answers 404', async () => {
    await t.load(logs, 'floorflow-processing-logs');
    const { out } = await t.send(request('999999'));
    assert.equal(out?.statusCode, 404);
  });
});
