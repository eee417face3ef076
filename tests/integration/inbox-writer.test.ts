import assert from 'node:assert/strict';
import { InboxWriter, type InboxMessage, type InboxReceipt } from '../../store/inbox-writer';
import { recordWithoutEffect } from '../../store/ledger';
import { advanceEventMarker, unprocessedEvents } from '../../store/machine-inbox';
import { MachineStore } from '../../store/machines';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db';

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

function stored(receipt: InboxReceipt) {
  assert.ok(receipt.kind === 'scan' && receipt.outcome === 'stored', JSON.stringify(receipt));
  return receipt.scan;
}

describe('durable inbox writer (store/inbox-writer) against PostgreSQL', function () {
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

  describe('group commit of scans', () => {
    it('with a flush spacing, a lone scan is flushed at once and the scans soon after share one flush', async () => {
      // The monotonic clock stands still: after the first flush, the spacing is always in force.
      const writer = new InboxWriter(db.pool, { minFlushSpacingMs: 100, monotonicNow: () => 0 });
      stored(await writer.write(scanMessage('s1', scan('lone'))));
      assert.equal(writer.stats.flushes, 1, 'the lone scan did not wait');
      const soon = await Promise.all(
        ['a', 'b', 'c', 'd', 'e'].map((id, i) => writer.write(scanMessage(`s${i % 2}`, scan(id)))),
      );
      soon.forEach(stored);
      assert.equal(writer.stats.flushes, 2, 'the five waited for the spacing together');
      assert.equal(writer.stats.largestBatch, 5);
      assert.equal((await storedRows()).length, 6);
    });

    it('with a flush spacing, a full batch is flushed without waiting for it', async () => {
      const writer = new InboxWriter(db.pool, {
        minFlushSpacingMs: 600000,
        monotonicNow: () => 0,
        maxBatch: 3,
      });
      stored(await writer.write(scanMessage('s1', scan('lone'))));
      // Ten minutes' spacing: only a full batch can flush these within the test's time.
      (await Promise.all(['a', 'b', 'c'].map((id) => writer.write(scanMessage('s1', scan(id)))))).forEach(
        stored,
      );
      assert.equal(writer.stats.flushes, 2);
      assert.equal(writer.stats.largestBatch, 3);
    });

    it('200 concurrent scans with msg_ids commit in fewer transactions, each with its own row', async () => {
      // Odd scans carry their own time and a user; even ones take the defaults.
      const EARLIER = '2026-01-05T07:59:00.000Z';
      const writer = new InboxWriter(db.pool);
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          writer.write(
            scanMessage(
              `scanner-${i % 7}`,
              i % 2 ? { ...scan(`m${i}`), scanned_at: EARLIER, user_id: `u${i}` } : scan(`m${i}`),
            ),
          ),
        ),
      );
      assert.equal(writer.stats.messages, 200);
      assert.ok(writer.stats.flushes < 200, `${writer.stats.flushes} flushes for 200 scans`);
      assert.equal(writer.stats.failedFlushes, 0);

      const rows = await storedRows();
      assert.equal(rows.length, 200);
      const byId = new Map(rows.map((r) => [Number(r.scan_id), r]));
      results.forEach((result, i) => {
        const s = stored(result);
        const row = byId.get(s.scan_id);
        assert.ok(row, `scan ${i} has a row`);
        assert.equal(row.msg_id, `m${i}`);
        assert.equal(row.machine_id, `scanner-${i % 7}`);
        assert.equal(row.code_text, `4604_5889_m${i}`);
        assert.equal(s.msg_id, `m${i}`);
        assert.equal(s.machine_id, `scanner-${i % 7}`);
        assert.equal(s.code_text, `4604_5889_m${i}`);
        assert.deepEqual(s.operations, ['coating']);
        assert.equal(s.scanned_at.toISOString(), i % 2 ? EARLIER : NOW.toISOString());
        assert.equal(s.user_id, i % 2 ? `u${i}` : null);
      });
      assert.equal(new Set(results.map((r) => stored(r).scan_id)).size, 200);
      const detail = await db.pool.query<{ msg_id: string; user_id: string | null; received_at: Date }>(
        `SELECT msg_id, user_id, received_at FROM jobmanager.scanned_codes WHERE msg_id IN ('m0', 'm1') ORDER BY msg_id`,
      );
      assert.deepEqual(detail.rows, [
        { msg_id: 'm0', user_id: null, received_at: NOW },
        { msg_id: 'm1', user_id: 'u1', received_at: NOW },
      ]);
    });

    it('a duplicate msg_id within one batch and across batches is stored once and reported as duplicate', async () => {
      const writer = new InboxWriter(db.pool);
      // The first scan is flushed at once; the second queues behind it.
      await Promise.all([
        writer.write(scanMessage('a', scan('x1'))),
        writer.write(scanMessage('a', scan('x2'))),
      ]);
      const lone = await writer.write(scanMessage('a', scan('x1'))); // across batches
      assert.equal(lone.kind === 'scan' && lone.outcome === 'duplicate' && lone.duplicate, 'msg_id');

      const flushesBefore = writer.stats.flushes;
      const inFlight = writer.write(scanMessage('b', scan('y0')));
      const together = [
        writer.write(scanMessage('b', scan('y1'))),
        writer.write(scanMessage('b', scan('y1', 'second copy'))), // same batch, same machine and msg_id
        writer.write(scanMessage('c', scan('y1'))), // another machine: not a duplicate
        writer.write(scanMessage('a', scan('x1'))), // stored in an earlier batch
        writer.write(scanMessage('b', scan('y0'))), // stored by the flush in flight
      ];
      const [r0, ...rs] = await Promise.all([inFlight, ...together]);
      assert.equal(writer.stats.flushes - flushesBefore, 2, 'the in-flight flush and one batch');
      stored(r0);
      assert.equal(stored(rs[0]).code_text, '4604_5889_y1');
      for (const i of [1, 3, 4])
        assert.equal(rs[i].kind === 'scan' && rs[i].outcome, 'duplicate', `result ${i}`);
      assert.equal(stored(rs[2]).machine_id, 'c');

      const rows = await storedRows();
      assert.deepEqual(rows.map((r) => `${r.machine_id}/${r.msg_id}/${r.code_text}`).sort(), [
        'a/x1/4604_5889_x1',
        'a/x2/4604_5889_x2',
        'b/y0/4604_5889_y0',
        'b/y1/4604_5889_y1',
        'c/y1/4604_5889_y1',
      ]);
    });

    it('without msg_id the same code within the window is stored once, inside one flush and across flushes', async () => {
      const writer = new InboxWriter(db.pool, { repeatWindowMs: 2000 });
      const at = (ms: number) => new Date(NOW.getTime() + ms);
      const bare = { code: 'RL-1', operations: ['coating'] };
      const first = await Promise.all([
        writer.write(scanMessage('s1', bare, at(0))),
        writer.write(scanMessage('s1', bare, at(0))),
        writer.write(scanMessage('s1', bare, at(500))),
        writer.write(scanMessage('s2', bare, at(500))),
      ]);
      assert.deepEqual(
        first.map((r) => r.kind === 'scan' && r.outcome),
        ['stored', 'duplicate', 'duplicate', 'stored'],
      );
      const later = await writer.write(scanMessage('s1', bare, at(1500)));
      assert.equal(later.kind === 'scan' && later.outcome === 'duplicate' && later.duplicate, 'double_send');
      stored(await writer.write(scanMessage('s1', bare, at(2500))));
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
      const writer = new InboxWriter(db.pool);
      const inFlight = writer.write(scanMessage('a', scan('ok-0')));
      const doomed = [
        ...Array.from({ length: 20 }, (_, i) => writer.write(scanMessage('a', scan(`bad-${i}`)))),
        writer.write(scanMessage('a', scan('poison-1', 'poison'))),
      ];
      const settled = await Promise.allSettled([inFlight, ...doomed]);
      assert.equal(settled[0].status, 'fulfilled');
      for (const s of settled.slice(1)) {
        assert.equal(s.status, 'rejected');
        assert.match(String((s as PromiseRejectedResult).reason), /poisoned batch/);
      }
      assert.equal(writer.stats.failedFlushes, 1);
      assert.deepEqual(
        (await storedRows()).map((r) => r.msg_id),
        ['ok-0'],
      );

      // The writer goes on: a resend of a rejected scan is stored.
      stored(await writer.write(scanMessage('a', scan('bad-3'))));
      assert.deepEqual(
        (await storedRows()).map((r) => r.msg_id),
        ['ok-0', 'bad-3'],
      );
    });

    it('a flush whose connection is terminated rejects all its callers and stores none of them', async () => {
      const writer = new InboxWriter(db.pool);
      // Another session holds an uncommitted k5, so the batch k1..k9 waits inside its INSERT
      // (after inserting k1..k4) until that session ends.
      const holder = await db.pool.connect();
      holder.on('error', () => undefined);
      await holder.query('BEGIN');
      await holder.query(
        `INSERT INTO jobmanager.scanned_codes (code_text, machine_id, operations, msg_id) VALUES ('held', 'a', '[]', 'k5')`,
      );
      // k0 is flushed alone; k1..k9 queue behind it and form the next batch.
      const calls = Array.from({ length: 10 }, (_, i) => writer.write(scanMessage('a', scan(`k${i}`))));
      const pid = await waitFor(async () => {
        const waiting = await db.pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
             AND query LIKE '%INSERT INTO jobmanager.scanned_codes%unnest%'`,
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
      assert.deepEqual(writer.stats, {
        flushes: 2,
        failedFlushes: 1,
        messages: 10,
        largestBatch: 9,
        quarantined: 0,
      });
      assert.deepEqual(
        (await storedRows()).map((r) => r.msg_id),
        ['k0'],
      );
    });

    it('a lone write is flushed at once, without waiting for more', async () => {
      const writer = new InboxWriter(db.pool);
      const result = await writer.write(scanMessage('a', scan('alone')));
      assert.equal(stored(result).msg_id, 'alone');
      assert.deepEqual(writer.stats, {
        flushes: 1,
        failedFlushes: 0,
        messages: 1,
        largestBatch: 1,
        quarantined: 0,
      });
      assert.equal(writer.queued, 0);
    });

    it('with group commit off every message has a transaction of its own', async () => {
      const writer = new InboxWriter(db.pool, { groupCommit: false });
      await Promise.all(Array.from({ length: 10 }, (_, i) => writer.write(scanMessage('a', scan(`g${i}`)))));
      assert.equal(writer.stats.flushes, 10);
      assert.equal((await storedRows()).length, 10);
    });
  });

  describe('every kind of machine message', () => {
    it('scans, events and statuses of many machines commit together, events in the order received', async () => {
      const machines = new MachineStore(db.pool, 'seal');
      await machines.add('EMB-1', 'embosser');
      await machines.add('ENG-1', 'engraver');
      const writer = new InboxWriter(db.pool);
      const event = (machineId: string, body: unknown): InboxMessage => ({
        machineId,
        kind: 'event',
        topic: `floorflow/machines/${machineId}/event`,
        payload: Buffer.from(JSON.stringify(body)),
        receivedAt: NOW,
      });
      const status = (machineId: string, state: string): InboxMessage => ({
        machineId,
        kind: 'status',
        topic: `floorflow/machines/${machineId}/status`,
        payload: Buffer.from(JSON.stringify({ state })),
        receivedAt: NOW,
      });
      const blocker = writer.write(scanMessage('s1', scan('first')));
      const burst = await Promise.all([
        writer.write(event('EMB-1', { job_id: 7, status: 'accepted' })),
        writer.write(status('EMB-1', 'busy')),
        writer.write(event('ENG-1', { job_id: 9, status: 'completed' })),
        writer.write(event('EMB-1', { job_id: 7, status: 'in_progress' })),
        writer.write(scanMessage('s1', scan('second'))),
        writer.write(event('EMB-1', { job_id: 7, status: 'completed' })),
        writer.write(status('EMB-1', 'idle')),
      ]);
      await blocker;
      assert.equal(writer.stats.flushes, 2, 'the first scan alone, then everything that queued behind it');
      const events = await db.pool.query<{ machine_id: string; machine_kind: string; status: string }>(
        `SELECT machine_id, machine_kind, payload->>'status' AS status FROM floorflow.machine_events ORDER BY event_id`,
      );
      assert.deepEqual(
        events.rows.map((e) => `${e.machine_id}/${e.machine_kind}/${e.status}`),
        [
          'EMB-1/embosser/accepted',
          'ENG-1/engraver/completed',
          'EMB-1/embosser/in_progress',
          'EMB-1/embosser/completed',
        ],
      );
      assert.deepEqual(
        (await machines.get('EMB-1'))?.last_status,
        { state: 'idle' },
        'the latest status wins',
      );
      assert.deepEqual(
        burst.map((r) => `${r.kind}:${r.outcome}`),
        [
          'event:stored',
          'status:stored',
          'event:stored',
          'event:stored',
          'scan:stored',
          'event:stored',
          'status:stored',
        ],
      );
    });

    it("a consumer reads its machines' unapplied events in order, and its marker moves up to the first one it has not applied", async () => {
      const machines = new MachineStore(db.pool, 'seal');
      await machines.add('EMB-1', 'embosser');
      await machines.add('ENG-1', 'engraver');
      const writer = new InboxWriter(db.pool);
      const event = (machineId: string, n: number): InboxMessage => ({
        machineId,
        kind: 'event',
        topic: `floorflow/machines/${machineId}/event`,
        payload: Buffer.from(JSON.stringify({ job_id: n, status: 'accepted' })),
        receivedAt: NOW,
      });
      const query = { source: 'embossing_event', machineKinds: ['embosser'] };
      assert.equal(await advanceEventMarker(db.pool, { ...query, lookBack: 0 }, NOW), 0);
      const markerRows = async () =>
        (
          await db.pool.query(
            `SELECT 1 FROM jobmanager.processing_markers WHERE marker_type = 'embossing_event'`,
          )
        ).rows.length;
      assert.equal(await markerRows(), 0, 'nothing to move: nothing written');
      const stored = [];
      for (const [machine, n] of [
        ['EMB-1', 1],
        ['ENG-1', 2],
        ['EMB-1', 3],
        ['EMB-1', 4],
      ] as const)
        stored.push(await writer.write(event(machine, n)));
      const ids = stored.map((r) => (r.kind === 'event' ? r.event.event_id : 0));
      const open = await unprocessedEvents(db.pool, { ...query, after: 0, limit: 10 });
      assert.deepEqual(
        open.map((e) => e.event_id),
        [ids[0], ids[2], ids[3]],
        "only the embosser's events, in order",
      );
      await recordWithoutEffect(
        db.pool,
        { source_type: 'embossing_event', source_id: ids[0], marker: ids[0] },
        'skipped',
        'test',
        {
          now: NOW,
        },
      );
      assert.equal(await advanceEventMarker(db.pool, { ...query, lookBack: 0 }, NOW), ids[2] - 1);
      for (const id of [ids[2], ids[3]])
        await recordWithoutEffect(
          db.pool,
          { source_type: 'embossing_event', source_id: id, marker: id },
          'skipped',
          'test',
          {
            now: NOW,
          },
        );
      assert.equal(await advanceEventMarker(db.pool, { ...query, lookBack: 0 }, NOW), ids[3]);
      assert.deepEqual(await unprocessedEvents(db.pool, { ...query, after: 0, limit: 10 }), []);
    });

    it('an event that is not JSON the database can hold is kept escaped with the reason, and acknowledged', async () => {
      const writer = new InboxWriter(db.pool);
      const receipt = await writer.write({
        machineId: 'EMB-9',
        kind: 'event',
        topic: 'floorflow/machines/EMB-9/event',
        payload: Buffer.from('{"job_id": 1, "status": "done\\u0000"}'),
        receivedAt: NOW,
      });
      assert.equal(receipt.kind, 'event');
      const row = await db.pool.query('SELECT payload, raw, reason FROM floorflow.machine_events');
      assert.equal(row.rows[0].payload, null);
      assert.equal(row.rows[0].raw, '{"job_id": 1, "status": "done\\u0000"}');
      assert.match(row.rows[0].reason, /NUL character/);
    });
  });

  describe('poison scans (never block a scanner)', () => {
    const poison: Array<[string, Buffer, RegExp]> = [
      ['a NUL byte in the code', Buffer.from('{"code": "RL-1\\u0000", "operations": ["coating"]}'), /NUL/],
      [
        'a NUL byte in an operation',
        Buffer.from('{"code": "RL-1", "operations": ["coat\\u0000ing"]}'),
        /NUL/,
      ],
      [
        'a NUL byte in user_id',
        Buffer.from('{"code": "RL-1", "operations": ["coating"], "user_id": "\\u0000"}'),
        /NUL/,
      ],
      [
        'a NUL byte in msg_id',
        Buffer.from('{"code": "RL-1", "operations": ["coating"], "msg_id": "m\\u0000"}'),
        /NUL/,
      ],
      [
        'a lone UTF-16 surrogate',
        Buffer.from('{"code": "RL-\\ud800", "operations": ["coating"]}'),
        /surrogate/,
      ],
      [
        'year 99999',
        Buffer.from('{"code": "RL-1", "operations": [], "scanned_at": "+099999-01-01T00:00:00Z"}'),
        /1970 and 9999/,
      ],
      ['a raw NUL byte and bytes that are not UTF-8', Buffer.from([0x52, 0x4c, 0x00, 0xff, 0x5c]), /./],
    ];
    for (const [what, payload, reason] of poison) {
      it(`a scan with ${what} is kept raw with the reason, acknowledged, and the scans around it are stored`, async () => {
        const writer = new InboxWriter(db.pool);
        const results = await Promise.all([
          writer.write(scanMessage('s1', scan('before'))),
          writer.write({ ...scanMessage('s1', {}), payload }),
          writer.write(scanMessage('s1', scan('after'))),
        ]);
        stored(results[0]);
        stored(results[2]);
        const rejected = results[1];
        assert.ok(rejected.kind === 'scan' && rejected.outcome === 'rejected', JSON.stringify(rejected));
        assert.match(rejected.rejected.reason, reason);
        const row = await db.pool.query<{ payload: string; reason: string }>(
          'SELECT payload, reason FROM jobmanager.rejected_scans',
        );
        assert.equal(row.rows.length, 1);
        assert.ok(!row.rows[0].payload.includes('\u0000'));
        if (what.startsWith('a raw NUL')) {
          assert.equal(row.rows[0].payload, 'RL\\u0000\\xff\\\\');
          assert.match(row.rows[0].reason, /stored escaped/);
        }
      });
    }

    it("a scan the database refuses on its own is kept raw with the database's reason; the rest of its flush is stored", async () => {
      await db.pool.query(
        `ALTER TABLE jobmanager.scanned_codes ADD CONSTRAINT no_refused CHECK (code_text <> 'REFUSED')`,
      );
      const writer = new InboxWriter(db.pool);
      const first = writer.write(scanMessage('s1', scan('lead')));
      const rest = await Promise.all([
        writer.write(scanMessage('s1', scan('ok-1'))),
        writer.write(scanMessage('s1', scan('bad', 'REFUSED'))),
        writer.write(scanMessage('s1', scan('ok-2'))),
      ]);
      await first;
      stored(rest[0]);
      stored(rest[2]);
      assert.ok(rest[1].kind === 'scan' && rest[1].outcome === 'rejected');
      assert.match(rest[1].rejected.reason, /the database refused it: .*no_refused/);
      assert.equal(writer.stats.quarantined, 1);
      assert.deepEqual((await storedRows()).map((r) => r.msg_id).sort(), ['lead', 'ok-1', 'ok-2']);
    });
  });
});
