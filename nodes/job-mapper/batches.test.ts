import assert from 'node:assert/strict';
import { coalescedBatches, type BatchOutcome } from './batches';

/** Batches of numbers, each applied at once (no database), with the time each batch started. */
function recorder(options: { minSpacingMs?: number; maxBatch?: number }) {
  const started: Array<{ items: number[]; at: number }> = [];
  let t = 0;
  const batches = coalescedBatches<number, number>({
    maxBatch: options.maxBatch ?? 100,
    minSpacingMs: options.minSpacingMs,
    now: () => t,
    apply: async (items) => {
      started.push({ items, at: t });
      return items.map((value): BatchOutcome<number> => ({ ok: true, value: value * 2 }));
    },
  });
  return {
    batches,
    started,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('coalesced batches (nodes/job-mapper/batches)', () => {
  it('without spacing, an item arriving after a batch settled is applied at once, alone', async () => {
    const r = recorder({});
    assert.deepEqual(await r.batches.add(1), { ok: true, value: 2 });
    assert.deepEqual(await r.batches.add(2), { ok: true, value: 4 });
    assert.deepEqual(
      r.started.map((s) => s.items),
      [[1], [2]],
    );
  });

  it('with spacing, a lone item after a quiet spell goes at once, and items soon after wait to go together', async () => {
    const r = recorder({ minSpacingMs: 20 });
    await r.batches.add(1);
    // Within the spacing (the monotonic clock has not moved): these wait for the real timer.
    const outcomes = Promise.all([r.batches.add(2), r.batches.add(3), r.batches.add(4)]);
    assert.equal(r.batches.waiting, 3);
    assert.deepEqual(await outcomes, [
      { ok: true, value: 4 },
      { ok: true, value: 6 },
      { ok: true, value: 8 },
    ]);
    r.advance(20);
    await r.batches.add(5);
    assert.deepEqual(
      r.started.map((s) => s.items),
      [[1], [2, 3, 4], [5]],
    );
  });

  it('with spacing, a full batch does not wait for it', async () => {
    const r = recorder({ minSpacingMs: 60000, maxBatch: 3 });
    await r.batches.add(1);
    const full = Promise.all([r.batches.add(2), r.batches.add(3), r.batches.add(4)]);
    // A minute's spacing: only a full batch can have started this one.
    await full;
    assert.deepEqual(
      r.started.map((s) => s.items),
      [[1], [2, 3, 4]],
    );
    await r.batches.idle();
  });
});
