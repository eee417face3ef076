import assert from 'node:assert/strict';
import { coalesced } from './coalesce';

/** Resolves after `hops` turns of the microtask queue. */
async function microtasks(hops: number): Promise<void> {
  for (let i = 0; i < hops; i += 1) await Promise.resolve();
}

describe('coalesced runs', () => {
  it('a run asked for at any moment of a run is followed by a run that starts after it', async () => {
    // A poke that lands between the last check for "again" and the moment the run is forgotten
    // was lost: it joined the run that was finishing, and nothing ran for it (a queue worker then
    // waited a whole interval for the next tick). Pokes at every microtask offset around the end
    // of a run find the moment.
    for (let hops = 0; hops < 30; hops += 1) {
      const events: string[] = [];
      let first = true;
      const c = coalesced(async () => {
        events.push('start');
        if (first) {
          first = false;
          void microtasks(hops).then(() => {
            events.push('poke');
            void c.run();
          });
        }
        await Promise.resolve();
      });
      await c.run();
      await microtasks(40);
      await c.idle();
      const poke = events.indexOf('poke');
      assert.ok(poke >= 0, `the poke ran (${hops} hops)`);
      assert.ok(
        events.lastIndexOf('start') > poke,
        `a run started after the poke at ${hops} hops: ${events.join(' ')}`,
      );
    }
  });

  it('runs asked for during a run happen once after it, never in parallel', async () => {
    let active = 0;
    let most = 0;
    let runs = 0;
    const c = coalesced(async () => {
      runs += 1;
      active += 1;
      most = Math.max(most, active);
      await microtasks(3);
      active -= 1;
    });
    const first = c.run();
    void c.run();
    void c.run();
    await first;
    await c.idle();
    assert.equal(most, 1);
    assert.equal(runs, 2);
  });

  it('a run whose work throws at once does not stop later runs', async () => {
    let calls = 0;
    const c = coalesced(() => {
      calls += 1;
      if (calls === 1) throw new Error('broken at once');
      return Promise.resolve();
    });
    await assert.rejects(c.run(), /broken at once/);
    await c.run();
    assert.equal(calls, 2);
  });

  it('stopped: no run starts', async () => {
    let runs = 0;
    const c = coalesced(
      async () => {
        runs += 1;
      },
      () => true,
    );
    await c.run();
    assert.equal(runs, 0);
  });
});
