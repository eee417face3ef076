import assert from 'node:assert/strict';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import confirm from './processing-confirm';

describe('processing-confirm node', () => {
  const t = processingNodeTest();
  const request = (orderId: string) => ({ req: { params: { orderId }, query: {}, body: {}, headers: {} } });

  it('confirms an order by its number and answers with its new pending job', async () => {
    await t.load(confirm, 'floorflow-processing-confirm');
    await t.order('ORD-K1');
    const { out } = await t.send(request('ORD-K1'));
    assert.equal(out?.statusCode, 200);
    const body = out?.payload as { success: boolean; data: { created: boolean; job: { status: string } } };
    assert.equal(body.success, true);
    assert.equal(body.data.created, true);
    assert.equal(body.data.job.status, 'pending');
  });

  it('an unknown order answers 404 in the API shape, not to a Catch node', async () => {
    await t.load(confirm, 'floorflow-processing-confirm');
    const { out } = await t.send(request('ORD-NOPE'));
    assert.equal(out?.statusCode, 404);
    assert.deepEqual(out?.payload, { success: false, error: 'order ORD-NOPE not found' });
  });

  it('a cancelled order is not confirmed: 409, and no job is created', async () => {
    await t.load(confirm, 'floorflow-processing-confirm');
    const orderId = await t.order('ORD-K3');
    await t.db.pool.query(`UPDATE processing.orders SET status = 'cancelled' WHERE id = $1`, [orderId]);
    const { out } = await t.send(request(orderId));
    assert.equal(out?.statusCode, 409);
    assert.deepEqual(out?.payload, { success: false, error: 'order ORD-K3 is cancelled' });
    const jobs = await t.db.pool.query(`SELECT 1 FROM processing.processing_jobs WHERE order_id = $1`, [
      orderId,
    ]);
    assert.equal(jobs.rowCount, 0);
  });
});
