import assert from 'node:assert/strict';
import type { IncomingScan } from '../../core/job-status';
import { insertScan } from '../../store/job-status';
import { ScanBatcher, scanBatcherFor } from '../../store/scan-batcher';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db';

const NOW = new Date('2026-01-05T08:00:00Z');
const scan = (msgId: string, code = `4604_5889_${msgId}`): IncomingScan => ({
  code_text: code,
  operations: ['coating'],
  msg_id: msgId,
});

describe('scan group commit (store/scan-batcher) against PostgreSQL', function () {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  async function storedRows(): Promise<
    { scan_id: string; machine_id: string; msg_id: string; code_text: string }[]
  > {
    const result = await db.pool.query(
      'SELECT scan_id, machine_id, msg_id, code_text FROM jobmanager.scanned_codes ORDER BY scan_id',
    );
    return result.rows;
  }

  it('200 concurrent insertScan calls with msg_ids commit in fewer transactions, each with its own row', async () => {
    // Odd scans carry their own time, a user and metadata; even ones take the defaults.
    const EARLIER = '2026-01-05T07:59:00.000Z';
    const calls = Array.from({ length: 200 }, (_, i) =>
      insertScan(
        db.pool,
        `scanner-${i % 7}`,
        i % 2 ? { ...scan(`m${i}`), scanned_at: EARLIER, user_id: `u${i}` } : scan(`m${i}`),
        i % 2 ? { now: NOW, windowMs: 2000, metadata: { n: i } } : { now: NOW, windowMs: 2000 },
      ),
    );
    const results = await Promise.all(calls);
    const stats = scanBatcherFor(db.pool).stats;
    assert.equal(stats.scans, 200);
    assert.ok(stats.flushes < 200, `${stats.flushes} flushes for 200 scans`);
    assert.equal(stats.failedFlushes, 0);

    const rows = await storedRows();
    assert.equal(rows.length, 200);
    const byId = new Map(rows.map((r) => [Number(r.scan_id), r]));
    results.forEach((result, i) => {
      assert.ok(result.stored, `scan ${i} stored`);
      const row = byId.get(result.scan.scan_id);
      assert.ok(row, `scan ${i} has a row`);
      assert.equal(row.msg_id, `m${i}`);
      assert.equal(row.machine_id, `scanner-${i % 7}`);
      assert.equal(row.code_text, `4604_5889_m${i}`);
      assert.equal(result.scan.msg_id, `m${i}`);
      assert.equal(result.scan.machine_id, `scanner-${i % 7}`);
      assert.equal(result.scan.code_text, `4604_5889_m${i}`);
      assert.deepEqual(result.scan.operations, ['coating']);
      assert.equal(result.scan.scanned_at.toISOString(), i % 2 ? EARLIER : NOW.toISOString());
      assert.equal(result.scan.user_id, i % 2 ? `u${i}` : null);
    });
    assert.equal(new Set(results.map((r) => (r.stored ? r.scan.scan_id : 0))).size, 200);
    const detail = await db.pool.query<{
      msg_id: string;
      user_id: string | null;
      metadata: unknown;
      received_at: Date;
    }>(
      `SELECT msg_id, user_id, metadata, received_at FROM jobmanager.scanned_codes WHERE msg_id IN ('m0', 'm1')
       ORDER BY msg_id`,
    );
    assert.deepEqual(detail.rows, [
      { msg_id: 'm0', user_id: null, metadata: null, received_at: NOW },
      { msg_id: 'm1', user_id: 'u1', metadata: { n: 1 }, received_at: NOW },
    ]);
  });

  it('a duplicate msg_id within one batch and across batches is stored once and reported as duplicate', async () => {
    const batcher = new ScanBatcher(db.pool);
    const opts = { now: NOW };
    // The first scan is flushed at once; the second queues behind it.
    await Promise.all([batcher.insert('a', scan('x1'), opts), batcher.insert('a', scan('x2'), opts)]);
    const lone = await batcher.insert('a', scan('x1'), opts); // across batches
    assert.deepEqual(lone, { stored: false, duplicate: 'msg_id' });

    const flushesBefore = batcher.stats.flushes;
    const inFlight = batcher.insert('b', scan('y0'), opts);
    const together = [
      batcher.insert('b', scan('y1'), opts),
      batcher.insert('b', scan('y1', 'second copy'), opts), // same batch, same machine and msg_id
      batcher.insert('c', scan('y1'), opts), // another machine: not a duplicate
      batcher.insert('a', scan('x1'), opts), // stored in an earlier batch
      batcher.insert('b', scan('y0'), opts), // stored by the flush in flight
    ];
    const [r0, ...rs] = await Promise.all([inFlight, ...together]);
    assert.equal(batcher.stats.flushes - flushesBefore, 2, 'the in-flight flush and one batch');
    assert.ok(r0.stored);
    assert.ok(rs[0].stored);
    assert.equal(rs[0].scan.code_text, '4604_5889_y1');
    assert.deepEqual(rs[1], { stored: false, duplicate: 'msg_id' });
    assert.ok(rs[2].stored);
    assert.equal(rs[2].scan.machine_id, 'c');
    assert.deepEqual(rs[3], { stored: false, duplicate: 'msg_id' });
    assert.deepEqual(rs[4], { stored: false, duplicate: 'msg_id' });

    const rows = await storedRows();
    assert.deepEqual(rows.map((r) => `${r.machine_id}/${r.msg_id}/${r.code_text}`).sort(), [
      'a/x1/4604_5889_x1',
      'a/x2/4604_5889_x2',
      'b/y0/4604_5889_y0',
      'b/y1/4604_5889_y1',
      'c/y1/4604_5889_y1',
    ]);
  });

  it('a flush that fails rejects every caller of that flush and stores none of its scans', async () => {
    // COMMIT fails when the batch holds a 'poison' code: the INSERT itself has gone through.
    await db.pool.query(`
      CREATE FUNCTION public.poison_check() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.code_text = 'poison' THEN RAISE EXCEPTION 'poisoned batch'; END IF;
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER poison_check AFTER INSERT ON jobmanager.scanned_codes
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.poison_check();`);
    const batcher = new ScanBatcher(db.pool);
    const opts = { now: NOW };
    const inFlight = batcher.insert('a', scan('ok-0'), opts);
    const doomed = [
      ...Array.from({ length: 20 }, (_, i) => batcher.insert('a', scan(`bad-${i}`), opts)),
      batcher.insert('a', scan('poison-1', 'poison'), opts),
    ];
    const settled = await Promise.allSettled([inFlight, ...doomed]);
    assert.equal(settled[0].status, 'fulfilled');
    for (const s of settled.slice(1)) {
      assert.equal(s.status, 'rejected');
      assert.match(String((s as PromiseRejectedResult).reason), /poisoned batch/);
    }
    assert.equal(batcher.stats.failedFlushes, 1);
    assert.deepEqual(
      (await storedRows()).map((r) => r.msg_id),
      ['ok-0'],
    );

    // The batcher goes on: a resend of a rejected scan is stored.
    const resent = await batcher.insert('a', scan('bad-3'), opts);
    assert.ok(resent.stored);
    assert.deepEqual(
      (await storedRows()).map((r) => r.msg_id),
      ['ok-0', 'bad-3'],
    );
  });

  it('a flush whose connection is terminated rejects all its callers and stores none of them', async () => {
    const batcher = new ScanBatcher(db.pool);
    const opts = { now: NOW };
    // Another session holds an uncommitted k5, so the batch k1..k9 waits inside its INSERT
    // (after inserting k1..k4) until that session ends.
    const holder = await db.pool.connect();
    holder.on('error', () => undefined);
    await holder.query('BEGIN');
    await holder.query(
      `INSERT INTO jobmanager.scanned_codes (code_text, machine_id, operations, msg_id) VALUES ('held', 'a', '[]', 'k5')`,
    );
    // k0 is flushed alone; k1..k9 queue behind it and form the next batch.
    const calls = Array.from({ length: 10 }, (_, i) => batcher.insert('a', scan(`k${i}`), opts));
    const pid = await waitFor(async () => {
      const waiting = await db.pool.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
           AND query LIKE 'INSERT INTO jobmanager.scanned_codes%unnest%'`,
      );
      return waiting.rows[0]?.pid;
    }, 'the batch waiting on the held row');
    await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
    const settled = await Promise.allSettled(calls);
    await holder.query('ROLLBACK');
    holder.release();

    assert.equal(settled[0].status, 'fulfilled');
    assert.deepEqual(
      settled.slice(1).map((s) => s.status),
      Array(9).fill('rejected'),
    );
    assert.deepEqual(batcher.stats, { flushes: 2, failedFlushes: 1, scans: 10, largestBatch: 9 });
    assert.deepEqual(
      (await storedRows()).map((r) => r.msg_id),
      ['k0'],
    );
  });

  it('a lone insert is flushed at once, without waiting for more', async () => {
    const batcher = new ScanBatcher(db.pool);
    const result = await batcher.insert('a', scan('alone'), { now: NOW });
    assert.ok(result.stored);
    assert.equal(result.scan.msg_id, 'alone');
    assert.deepEqual(batcher.stats, { flushes: 1, failedFlushes: 0, scans: 1, largestBatch: 1 });
    assert.equal(batcher.queued, 0);
  });
});
