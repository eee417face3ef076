import assert from 'node:assert/strict';
import { selectContent, simulateUsbWrite } from '../../core/processing';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import verify from './processing-verify';

describe('processing-verify node', () => {
  const t = processingNodeTest();
  const content = selectContent({
    id: '1',
    order_number: 'X',
    status: 'confirmed',
    details: { content: ['a'] },
  });

  it('a write that matches the selection is recorded as verified at progress 90', async () => {
    await t.load(verify, 'floorflow-processing-verify');
    const job = await t.claimed('ORD-F1');
    const usb = simulateUsbWrite(content, 'usb-0');
    const { out } = await t.send({ payload: { ...job, completed_stage: 'usb_writing' }, content, usb });
    assert.ok(out);
    const row = await t.db.pool.query(`SELECT progress FROM processing.processing_jobs WHERE id = $1`, [
      job.id,
    ]);
    assert.equal(row.rows[0].progress, 90);
  });

  it('a short write fails the attempt to the Catch node', async () => {
    await t.load(verify, 'floorflow-processing-verify');
    const job = await t.claimed('ORD-F2');
    const usb = { ...simulateUsbWrite(content, 'usb-0'), bytesWritten: 1 };
    const { caught } = await t.send({ payload: { ...job, completed_stage: 'usb_writing' }, content, usb });
    assert.match(
      (caught?.error as { message: string }).message,
      /verification: wrote 1 of 1024 bytes on usb-0/,
    );
  });
});
