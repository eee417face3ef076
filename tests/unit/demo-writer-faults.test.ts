import assert from 'node:assert/strict';
import { checkWriterFaults, writerFaultFor } from '../../core/processing';
import { DEMO_WRITER_FAULTS, demoWave } from '../../cli/demo-plant';

describe("the demo's simulated USB writer", () => {
  it('fails the first write of every fourth order of a wave, and no other write', () => {
    assert.equal(checkWriterFaults(DEMO_WRITER_FAULTS), undefined);
    const orders = demoWave('2612021405', 24).orders;
    const failing = orders
      .map((o, i) => ({ i: i + 1, fault: writerFaultFor(DEMO_WRITER_FAULTS, o.order_number, 1) }))
      .filter((o) => o.fault === 'fail')
      .map((o) => o.i);
    assert.deepEqual(failing, [4, 8, 12, 16, 20, 24]);
    assert.ok(orders.every((o) => writerFaultFor(DEMO_WRITER_FAULTS, o.order_number, 2) === undefined));
  });
});
