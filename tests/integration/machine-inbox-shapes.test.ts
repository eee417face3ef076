// The flush statement per shape (store/machine-inbox): a flush holds only the parts it has, so each
// of the fifteen mixes of scans, rejected scans, events and statuses must store exactly what the one
// statement for every part stored, and a flush of nothing writes nothing. "Last seen" from a flush's
// rows (migration 140) moves a machine at most once a second, whatever the flush's shape.
import assert from 'node:assert/strict';
import type { Pool } from 'pg';
import {
  EVERY_PART,
  flushQuery,
  storeMessages,
  type FlushShape,
  type MessagesToStore,
} from '../../store/machine-inbox';
import { createTestDatabase, type TestDatabase } from '../support/db';

const AT = new Date('2026-01-05T08:00:00Z');
const MACHINES = ['scanner-a', 'scanner-b', 'press-c'];

async function register(pool: Pool): Promise<void> {
  await pool.query(
    `INSERT INTO floorflow.machines (machine_id, kind, secret_hash, secret_sealed)
     SELECT m, CASE WHEN m LIKE 'press%' THEN 'press' ELSE 'scanner' END, 'x', 'x' FROM unnest($1::text[]) AS m`,
    [MACHINES],
  );
}

/** A flush holding the parts of `shape`, its ids made unique by `n`. */
function messagesOf(shape: FlushShape, n: number, at: Date): MessagesToStore {
  return {
    scans: shape.scans
      ? [
          {
            machineId: 'scanner-a',
            scan: { code_text: `4604_${n}_1`, operations: ['coating'], msg_id: `a${n}` },
            receivedAt: at,
          },
          // Sent by every flush with scans: stored by the first, a repeat in the others.
          {
            machineId: 'scanner-a',
            scan: { code_text: '4604_0_1', operations: ['coating'], msg_id: 'again' },
            receivedAt: at,
          },
          {
            machineId: 'scanner-b',
            scan: { code_text: `4604_${n}_2`, operations: ['kiss_cut'], msg_id: `b${n}`, user_id: 'op-1' },
            receivedAt: at,
            metadata: { via: 'test' },
          },
        ]
      : undefined,
    rejected: shape.rejected
      ? [{ machineId: 'scanner-b', payload: `{"bad": ${n}}`, reason: 'not a scan', receivedAt: at }]
      : undefined,
    events: shape.events
      ? [
          { machineId: 'press-c', topic: 'floorflow/machines/press-c/event', payload: { n }, receivedAt: at },
          {
            machineId: 'press-c',
            topic: 'floorflow/machines/press-c/event',
            raw: 'x',
            reason: 'not JSON',
            receivedAt: at,
          },
        ]
      : undefined,
    statuses: shape.statuses ? [{ machineId: 'press-c', status: { n }, receivedAt: at }] : undefined,
  };
}

/** Every row a flush writes, without the ids the sequences drew. */
async function tables(pool: Pool): Promise<unknown> {
  const q = async (sql: string) => (await pool.query(sql)).rows;
  return {
    scans: await q(
      `SELECT code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at
       FROM jobmanager.scanned_codes ORDER BY scan_id`,
    ),
    rejected: await q(
      `SELECT machine_id, payload, reason, received_at FROM jobmanager.rejected_scans ORDER BY id`,
    ),
    events: await q(
      `SELECT machine_id, machine_kind, topic, payload, raw, reason, received_at FROM floorflow.machine_events ORDER BY event_id`,
    ),
    machines: await q(
      `SELECT machine_id, last_status, last_status_at, last_seen_at FROM floorflow.machines ORDER BY machine_id`,
    ),
  };
}

const SHAPES: FlushShape[] = Array.from({ length: 15 }, (_, i) => ({
  scans: ((i + 1) & 1) !== 0,
  rejected: ((i + 1) & 2) !== 0,
  events: ((i + 1) & 4) !== 0,
  statuses: ((i + 1) & 8) !== 0,
}));

describe('the inbox flush statement per shape (store/machine-inbox)', function () {
  let shaped: TestDatabase;
  let whole: TestDatabase;
  beforeEach(async () => {
    shaped = await createTestDatabase();
    whole = await createTestDatabase();
    await register(shaped.pool);
    await register(whole.pool);
  });
  afterEach(async () => {
    await shaped.drop();
    await whole.drop();
  });

  it('each mix of scans, rejected scans, events and statuses stores what the statement for every part stores', async () => {
    for (const [n, shape] of SHAPES.entries()) {
      // Two seconds apart, so every flush is due to move "last seen".
      const at = new Date(AT.getTime() + n * 2000);
      const messages = messagesOf(shape, n, at);
      const stored = await storeMessages(shaped.pool, messages);
      await whole.pool.query(flushQuery(messages, EVERY_PART));

      const label = JSON.stringify(shape);
      if (!shape.scans) assert.equal(stored.scans.size, 0, label);
      else {
        // A (machine, msg_id) stored by an earlier flush is a repeat: no stored scan for it.
        assert.deepEqual([...stored.scans.keys()].sort(), n === 0 ? [0, 1, 2] : [0, 2], label);
        assert.equal(stored.scans.get(2)?.user_id, 'op-1');
        assert.deepEqual(stored.scans.get(0)?.scanned_at, at);
      }
      assert.equal(stored.rejected.length, shape.rejected ? 1 : 0, label);
      assert.deepEqual(
        stored.events.map((e) => [e.machine_kind, e.raw]),
        shape.events
          ? [
              ['press', null],
              ['press', 'x'],
            ]
          : [],
        label,
      );
      assert.deepEqual(await tables(shaped.pool), await tables(whole.pool), label);
    }
    // The ids returned are the rows' own.
    const ids = await shaped.pool.query<{ id: string }>(
      'SELECT id FROM jobmanager.rejected_scans ORDER BY id',
    );
    assert.equal(ids.rows.length, 8);
  });

  it('a flush of nothing writes nothing and asks the database nothing', async () => {
    let asked = 0;
    const counting = {
      query: (...args: Parameters<Pool['query']>) => {
        asked += 1;
        return shaped.pool.query(...args);
      },
    } as unknown as Pool;
    const stored = await storeMessages(counting, { scans: [], rejected: [], events: [], statuses: [] });
    assert.equal(asked, 0);
    assert.deepEqual([stored.scans.size, stored.rejected.length, stored.events.length], [0, 0, 0]);
  });

  it('last seen moves with a flush when it is a second behind, and not within the second', async () => {
    const seen = async () =>
      (
        await shaped.pool.query<{ machine_id: string; last_seen_at: Date | null }>(
          `SELECT machine_id, last_seen_at FROM floorflow.machines ORDER BY machine_id`,
        )
      ).rows.map((r) => [r.machine_id, r.last_seen_at?.toISOString() ?? null]);
    const scanAt = (machineId: string, msgId: string, at: Date) => ({
      machineId,
      scan: { code_text: '4604_1_1', operations: ['coating'], msg_id: msgId },
      receivedAt: at,
    });
    const t = (ms: number) => new Date(AT.getTime() + ms);
    // A machine never seen, one twice in the flush (the later time counts), one not registered.
    await storeMessages(shaped.pool, {
      scans: [
        scanAt('nobody', 'n0', t(0)),
        scanAt('scanner-a', 'a0', t(0)),
        scanAt('scanner-a', 'a1', t(400)),
      ],
    });
    assert.deepEqual(await seen(), [
      ['press-c', null],
      ['scanner-a', t(400).toISOString()],
      ['scanner-b', null],
    ]);
    // Within the second: not written again; a second later: written; the other table's rows too.
    await storeMessages(shaped.pool, {
      scans: [scanAt('scanner-a', 'a2', t(1300)), scanAt('scanner-b', 'b0', t(1300))],
    });
    assert.deepEqual(await seen(), [
      ['press-c', null],
      ['scanner-a', t(400).toISOString()],
      ['scanner-b', t(1300).toISOString()],
    ]);
    await storeMessages(shaped.pool, {
      scans: [scanAt('scanner-a', 'a3', t(1500))],
      rejected: [{ machineId: 'press-c', payload: '?', reason: 'not a scan', receivedAt: t(1500) }],
    });
    assert.deepEqual(await seen(), [
      ['press-c', t(1500).toISOString()],
      ['scanner-a', t(1500).toISOString()],
      ['scanner-b', t(1300).toISOString()],
    ]);
  });
});
