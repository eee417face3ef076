import assert from 'node:assert/strict';
import helper from 'node-red-node-test-helper';
import { selectContent } from '../../core/processing';
import { errorsLoggedBy, statusesOf } from '../../tests/support/node-status';
import { processingNodeTest } from '../../tests/support/processing-nodes';
import usbWriter from './usb-writer';

describe('usb-writer node (simulated)', () => {
  const t = processingNodeTest();
  const content = selectContent({ id: '1', order_number: 'X', status: 'confirmed', details: {} });
  const atWriting = { completed_stage: 'content_selection' };

  it('writes the selection in full on msg.usb and marks the write started (progress 50)', async () => {
    await t.load(usbWriter, 'floorflow-usb-writer', { device: 'usb-7' });
    const job = await t.claimed('ORD-U1');
    const { out } = await t.send({ payload: { ...job, ...atWriting }, content });
    assert.deepEqual(out?.usb, {
      device: 'usb-7',
      files: content.files,
      bytesWritten: content.totalBytes,
      checksum: content.checksum,
    });
    const row = await t.db.pool.query(
      `SELECT progress, stage FROM processing.processing_jobs WHERE id = $1`,
      [job.id],
    );
    assert.deepEqual(row.rows[0], { progress: 50, stage: 'usb_writing' });
  });

  it('its fault profile fails the first attempt of the orders it names, and only those', async () => {
    await t.load(usbWriter, 'floorflow-usb-writer', {
      faults: [{ orders: '^ORD-U2$', fault: 'fail', attempts: 1 }],
    });
    const named = await t.claimed('ORD-U2');
    const { caught } = await t.send({ payload: { ...named, ...atWriting }, content });
    assert.match(
      (caught?.error as { message: string }).message,
      /USB writer sim-usb-0 failed writing order ORD-U2 \(simulated fault, attempt 1\)/,
    );
    const other = await t.claimed('ORD-U22');
    const { out } = await t.send({ payload: { ...other, ...atWriting }, content });
    assert.ok(out?.usb);
    const later = await t.send({ payload: { ...named, ...atWriting, attempts: 2 }, content });
    assert.ok(later.out?.usb, 'the second attempt is written');
  });

  it('ignores what an order asks for: details.simulate does not make it fail or hang', async () => {
    await t.load(usbWriter, 'floorflow-usb-writer');
    for (const [i, simulate] of [{ fail_stage: 'usb_writing' }, { hang_stage: 'usb_writing' }].entries()) {
      const job = await t.claimed(`ORD-U3-${i}`, { simulate });
      const { out } = await t.send({ payload: { ...job, ...atWriting }, content });
      assert.ok(out?.usb);
    }
  });

  it('a fault profile whose order pattern is no regular expression gives a red status and one error', async () => {
    await t.load(usbWriter, 'floorflow-usb-writer', { faults: [{ orders: '(', fault: 'fail' }] });
    const node = helper.getNode('node');
    assert.deepEqual(statusesOf(node), [{ fill: 'red', shape: 'ring', text: 'invalid configuration' }]);
    const errors = errorsLoggedBy('node');
    assert.equal(errors.length, 1);
    assert.match(errors[0], /fault 1: orders is not a regular expression/);
  });
});
