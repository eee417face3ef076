// The inbox writer with several flushes in flight: a machine's messages are never in two flushes
// at once, so they commit and reach listeners in arrival order, the repeat check of scans without
// a msg_id sees the machine's earlier flush, and one flush failing (the database away, or a data
// error) leaves the flushes of other machines beside it alone.
import assert from 'node:assert/strict';
import type { Pool } from 'pg';
import { InboxWriter, type InboxMessage, type InboxReceipt } from '../../store/inbox-writer';
import { createTestDatabase, type TestDatabase } from '../support/db';

const NOW = new Date('2026-01-05T08:00:00Z');

function scanMessage(machineId: string, scan: Record<string, unknown>, receivedAt: Date = NOW): InboxMessage {
  return {
    machineId,
    kind: 'scan',
    topic: `floorflow/machines/${machineId}/scan`,
    payload: Buffer.from(JSON.stringify(scan)),
    receivedAt,
  };
}

const scan = (msgId: string, code = `4604_5889_${msgId}`) => ({
  code,
  operations: ['coating'],
  msg_id: msgId,
});

/** The machine ids a flush's one statement stores scans of (its third parameter). */
function machinesOf(values: unknown): string[] {
  return Array.isArray(values) && Array.isArray(values[2]) ? (values[2] as string[]) : [];
}

interface Watched {
  pool: Pool;
  /** Largest number of flush statements running at once. */
  mostAtOnce(): number;
  /** Machines found in two statements running at once. */
  overlaps: string[];
  /** Makes the flush statement holding this machine's scans fail like a lost connection. */
  failFor: Set<string>;
}

/**
 * The test database's pool, with each inbox statement held back a little (so flushes overlap) and
 * watched: which machines each running statement holds.
 */
function watched(pool: Pool, delayMs = 30): Watched {
  const running = new Map<number, string[]>();
  let next = 0;
  let most = 0;
  const overlaps: string[] = [];
  const failFor = new Set<string>();
  const query = async (config: unknown, values?: unknown): Promise<unknown> => {
    const named = config as { name?: string; values?: unknown };
    if (named?.name !== 'ff-inbox-store') return pool.query(config as string, values as unknown[]);
    const machines = machinesOf(named.values);
    const id = next++;
    for (const other of running.values()) for (const m of machines) if (other.includes(m)) overlaps.push(m);
    running.set(id, machines);
    most = Math.max(most, running.size);
    try {
      await new Promise((r) => setTimeout(r, delayMs));
      if (machines.some((m) => failFor.has(m))) throw new Error('Connection terminated unexpectedly');
      return await pool.query(config as string);
    } finally {
      running.delete(id);
    }
  };
  const proxy = new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop === 'query') return query;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { pool: proxy, mostAtOnce: () => most, overlaps, failFor };
}

describe('inbox writer with flushes in flight together (store/inbox-writer)', function () {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  async function rowsByMachine(): Promise<Map<string, string[]>> {
    const result = await db.pool.query<{ machine_id: string; msg_id: string }>(
      'SELECT machine_id, msg_id FROM jobmanager.scanned_codes ORDER BY scan_id',
    );
    const out = new Map<string, string[]>();
    for (const r of result.rows) out.set(r.machine_id, [...(out.get(r.machine_id) ?? []), r.msg_id]);
    return out;
  }

  it("keeps each machine's scans in arrival order, in the database and to listeners, while flushes overlap", async () => {
    const w = watched(db.pool);
    const writer = new InboxWriter(w.pool, { maxInFlight: 3, maxBatch: 7 });
    const told: InboxReceipt[] = [];
    writer.onCommitted((receipts) => told.push(...receipts));
    const machines = ['m0', 'm1', 'm2', 'm3', 'm4'];
    const writes: Array<Promise<InboxReceipt>> = [];
    // Bursts over several turns of the event loop, machines interleaved, as scanners publish.
    for (let round = 0; round < 8; round += 1) {
      for (let k = 0; k < 5; k += 1)
        for (const m of machines) writes.push(writer.write(scanMessage(m, scan(`${m}-${round * 5 + k}`))));
      await new Promise((r) => setTimeout(r, 5));
    }
    const receipts = await Promise.all(writes);

    assert.ok(w.mostAtOnce() > 1, `flushes overlapped (${w.mostAtOnce()} at once)`);
    assert.equal(writer.mostInFlight, w.mostAtOnce());
    assert.ok(writer.mostInFlight <= 3);
    assert.deepEqual(w.overlaps, [], 'no machine in two flushes at once');
    assert.equal(writer.stats.failedFlushes, 0);
    assert.ok(receipts.every((r) => r.kind === 'scan' && r.outcome === 'stored'));

    const expected = (m: string) => Array.from({ length: 40 }, (_, i) => `${m}-${i}`);
    const stored = await rowsByMachine();
    for (const m of machines) {
      assert.deepEqual(stored.get(m), expected(m), `${m}'s scans by scan id`);
      const heard = told
        .filter((r) => r.machineId === m)
        .map((r) => (r.kind === 'scan' && r.outcome === 'stored' ? r.scan.msg_id : '?'));
      assert.deepEqual(heard, expected(m), `${m}'s receipts to listeners`);
    }
  });

  it('a flush the database does not take rejects its own callers only; the flush beside it commits', async () => {
    const w = watched(db.pool);
    w.failFor.add('bad');
    const writer = new InboxWriter(w.pool, { maxInFlight: 3 });
    const refused: string[] = [];
    writer.onRefused((_err, messages) => refused.push(...messages.map((m) => m.machineId)));
    const lead = writer.write(scanMessage('lead', scan('l0')));
    const bad = [writer.write(scanMessage('bad', scan('b0'))), writer.write(scanMessage('bad', scan('b1')))];
    // Written after bad's flush started: a flush of their own beside it.
    await new Promise((r) => setImmediate(r));
    const good = [
      writer.write(scanMessage('good', scan('g0'))),
      writer.write(scanMessage('good', scan('g1'))),
    ];
    const settled = await Promise.allSettled([lead, ...bad, ...good]);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled'],
    );
    assert.match(String((settled[1] as PromiseRejectedResult).reason), /Connection terminated/);
    assert.deepEqual(refused, ['bad', 'bad']);
    assert.ok(w.mostAtOnce() > 1);

    // The machine's resend is stored once the database takes it again.
    w.failFor.clear();
    const again = await writer.write(scanMessage('bad', scan('b0')));
    assert.ok(again.kind === 'scan' && again.outcome === 'stored');
    const stored = await rowsByMachine();
    assert.deepEqual(stored.get('good'), ['g0', 'g1']);
    assert.deepEqual(stored.get('bad'), ['b0']);
  });

  it("a data error in one flush is sorted out one scan at a time while another machine's flush is in flight, and the machine's next scans wait for it", async () => {
    await db.pool.query(
      `ALTER TABLE jobmanager.scanned_codes ADD CONSTRAINT no_refused CHECK (code_text <> 'REFUSED')`,
    );
    const w = watched(db.pool);
    const writer = new InboxWriter(w.pool, { maxInFlight: 3 });
    const lead = writer.write(scanMessage('other', scan('o0')));
    const first = [
      writer.write(scanMessage('s1', scan('a1'))),
      writer.write(scanMessage('s1', scan('bad', 'REFUSED'))),
      writer.write(scanMessage('s1', scan('a2'))),
      writer.write(scanMessage('s2', scan('c1'))),
    ];
    // Written while s1's flush is in flight: it must wait for it, and commit after a1 and a2.
    await new Promise((r) => setImmediate(r));
    const later = writer.write(scanMessage('s1', scan('a3')));
    const [l, a1, refused, a2, c1, a3] = await Promise.all([lead, ...first, later]);
    for (const r of [l, a1, a2, c1, a3])
      assert.ok(r.kind === 'scan' && r.outcome === 'stored', JSON.stringify(r));
    assert.ok(refused.kind === 'scan' && refused.outcome === 'rejected');
    assert.match(refused.rejected.reason, /the database refused it: .*no_refused/);
    assert.equal(writer.stats.quarantined, 1);
    assert.deepEqual(w.overlaps, []);
    const stored = await rowsByMachine();
    assert.deepEqual(stored.get('s1'), ['a1', 'a2', 'a3']);
    assert.deepEqual(stored.get('s2'), ['c1']);
  });

  it("without a msg_id, a repeat written while the machine's first copy is in flight is found by the repeat check", async () => {
    const w = watched(db.pool);
    const writer = new InboxWriter(w.pool, { maxInFlight: 3, repeatWindowMs: 2000 });
    const at = (ms: number) => new Date(NOW.getTime() + ms);
    const bare = { code: 'RL-1', operations: ['coating'] };
    const lead = writer.write(scanMessage('x', scan('x0')));
    const first = writer.write(scanMessage('s1', bare, at(0)));
    const other = writer.write(scanMessage('s2', bare, at(0)));
    await new Promise((r) => setImmediate(r));
    const repeat = writer.write(scanMessage('s1', bare, at(800)));
    const [, r1, r2, r3] = await Promise.all([lead, first, other, repeat]);
    assert.equal(r1.kind === 'scan' && r1.outcome, 'stored');
    assert.equal(r2.kind === 'scan' && r2.outcome, 'stored');
    assert.equal(r3.kind === 'scan' && r3.outcome === 'duplicate' && r3.duplicate, 'double_send');
  });
});
