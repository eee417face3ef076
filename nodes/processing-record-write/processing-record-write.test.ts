import assert from 'node:assert/strict';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import recordWrite from './processing-record-write';

describe('processing-record-write node', () => {
  const t = processingNodeTest();
  const usb = { device: 'usb-3', files: [{ name: 'a.pdf', bytes: 10 }], bytesWritten: 10, checksum: 'c' };

  it("records the writer's msg.usb at progress 80", async () => {
    await t.load(recordWrite, 'floorflow-processing-record-write');
    const job = await t.claimed('ORD-W1');
    const { out } = await t.send({ payload: { ...job, completed_stage: 'content_selection' }, usb });
    assert.deepEqual(out?.usb, usb);
    const row = await t.db.pool.query(
      `SELECT progress, completed_stage FROM processing.processing_jobs WHERE id = $1`,
      [job.id],
    );
    assert.deepEqual(row.rows[0], { progress: 80, completed_stage: 'usb_writing' });
  });

  it('without msg.usb (the writer reported nothing) the attempt fails to the Catch node', async () => {
    await t.load(recordWrite, 'floorflow-processing-record-write');
    const job = await t.claimed('ORD-W2');
    const { caught } = await t.send({ payload: { ...job, completed_stage: 'content_selection' } });
    assert.match((caught?.error as { message: string }).message, /the USB writer returned no result/);
  });
});
