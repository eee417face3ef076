// Several runtimes on one database: leases give work that must run once to one runtime at a
// time and move it when that runtime dies; take-back of interrupted work touches only the work of
// runtimes that are gone, never that of a live neighbour.
import assert from 'node:assert/strict';
import { LeaseKeeper } from '../../runtime/leases';
import { createPool } from '../../store/db';
import { acquireLeases, liveRuntimes, renewLeases } from '../../store/leases';
import { claimJobs, confirmOrder, recoverOrphanedJobs } from '../../store/processing';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db';

const TTL_MS = 1200;

describe('leases between runtimes on one database', function () {
  this.timeout(30000);
  let db: TestDatabase;
  const keepers: LeaseKeeper[] = [];

  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    for (const k of keepers.splice(0)) await k.stop();
    await db.drop();
  });

  it('a lease has one holder; another takes it over once it expires, not before', async () => {
    assert.deepEqual(await acquireLeases(db.pool, ['alerts'], 'rt-a', 60000), ['alerts']);
    assert.deepEqual(await acquireLeases(db.pool, ['alerts'], 'rt-b', 60000), []);
    assert.deepEqual(
      await acquireLeases(db.pool, ['alerts'], 'rt-a', 60000),
      ['alerts'],
      'its holder renews it',
    );
    assert.deepEqual(await acquireLeases(db.pool, ['monitor'], 'rt-b', 1), ['monitor']);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      await renewLeases(db.pool, ['monitor'], 'rt-b', 60000),
      [],
      'an expired lease is not renewed',
    );
    assert.deepEqual(await acquireLeases(db.pool, ['monitor'], 'rt-a', 60000), ['monitor']);
  });

  it('work that must run once moves to the other runtime within seconds when its holder loses the database', async () => {
    const poolA = createPool(db.url, { max: 2 });
    const a = new LeaseKeeper({ pool: poolA, runtimeId: 'aaaa', ttlMs: TTL_MS, log: () => undefined });
    const b = new LeaseKeeper({ pool: db.pool, runtimeId: 'bbbb', ttlMs: TTL_MS, log: () => undefined });
    await a.start();
    const heldByA = a.want('alerts');
    await waitFor(() => heldByA.held(), 'runtime a holds the alert rules');
    await b.start();
    keepers.push(b);
    const changes: boolean[] = [];
    const heldByB = b.want('alerts', (held) => changes.push(held));
    const gone: string[] = [];
    b.onRuntimeGone((id) => gone.push(id));
    await new Promise((r) => setTimeout(r, TTL_MS / 2));
    assert.equal(heldByB.held(), false, 'not while a renews it');
    assert.deepEqual((await liveRuntimes(db.pool)).sort(), ['aaaa', 'bbbb']);
    // Runtime a is cut off: it stops renewing. Its work must stop there and start on b.
    await poolA.end();
    await waitFor(() => heldByB.held(), 'runtime b holds the alert rules', TTL_MS * 3);
    assert.equal(heldByA.held(), false, 'a no longer believes it holds them');
    assert.deepEqual(changes, [true]);
    await waitFor(() => gone.length > 0, 'b hears that a is gone', TTL_MS * 3);
    assert.deepEqual(gone, ['aaaa']);
    assert.deepEqual(await liveRuntimes(db.pool), ['bbbb']);
  });

  it('take-back of interrupted processing jobs leaves the jobs of a live runtime alone and takes those of a dead one', async () => {
    const now = new Date();
    const jobs: string[] = [];
    for (const n of [1, 2]) {
      const order = await db.pool.query<{ id: string }>(
        `INSERT INTO processing.orders (order_number, details) VALUES ($1, '{}') RETURNING id::text AS id`,
        [`ORD-SCALE-${n}`],
      );
      jobs.push((await confirmOrder(db.pool, order.rows[0].id, now)).job.id);
    }
    // Runtime "live" renews its lease; runtime "dead" stopped renewing (its lease expired).
    await acquireLeases(db.pool, ['runtime/live'], 'live', 60000);
    await acquireLeases(db.pool, ['runtime/dead'], 'dead', 1);
    const [held] = await claimJobs(db.pool, { owner: 'live/worker-1', max: 1, now });
    const [orphan] = await claimJobs(db.pool, { owner: 'dead/worker-1', max: 1, now });
    assert.deepEqual([held.id, orphan.id].sort(), [...jobs].sort());
    await new Promise((r) => setTimeout(r, 20));
    const taken = await recoverOrphanedJobs(db.pool, { owner: 'third/worker-1', now });
    assert.deepEqual(taken, [orphan.id]);
    const status = await db.pool.query<{ id: string; status: string }>(
      `SELECT id::text AS id, status FROM processing.processing_jobs ORDER BY id`,
    );
    assert.deepEqual(Object.fromEntries(status.rows.map((r) => [r.id, r.status])), {
      [held.id]: 'processing',
      [orphan.id]: 'retry',
    });
  });
});
