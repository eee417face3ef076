// Storing scans (split out of store/job-status.ts): the repeat window of scans without a msg_id
// (the same code from the same machine within it is one scan sent twice), and single scans for a
// caller outside the inbox's group commit. Scans with a msg_id, rejected scans and the rest of a
// flush are one statement of store/machine-inbox.ts.
import type { Pool } from 'pg';
import type { IncomingScan } from '../core/job-status';
import { type Queryable, withTransaction } from './db';
import { scanArrays, storedScan, storeMessages, type ScanToStore, type StoredScan } from './machine-inbox';

/** Transaction-lock class of the per-machine repeat check ("fljs" + 1, beside the source locks). */
const REPEAT_LOCK_CLASS = 0x666c6a73 + 1;

export type { RejectedScan, ScanToStore, StoredScan } from './machine-inbox';

export type InsertScanResult =
  { stored: true; scan: StoredScan } | { stored: false; duplicate: 'msg_id' | 'double_send' };

/**
 * Stores scans without a msg_id, leaving out a repeat: the same code with the same operations from
 * the same machine received within `windowMs` before (one window for all, or one per row: a
 * scanner's own double-send window). A `kiss_cut` scan just after a `coating` scan of the same
 * code is a second operation, not the first scan sent twice. The per-machine transaction locks (taken in machine order)
 * make two copies arriving at once, in two transactions or two runtimes, queue: the second sees
 * the first. Repeats among `rows` themselves are the caller's to leave out
 * (core/job-status isDoubleSend), since one statement does not see its own rows.
 */
export async function insertScansWithoutMsgId(
  db: Queryable,
  rows: ScanToStore[],
  windowMs: number | readonly number[],
): Promise<Map<number, StoredScan>> {
  if (rows.length === 0) return new Map();
  const machines = [...new Set(rows.map((r) => r.machineId))].sort();
  await db.query(`SELECT pg_advisory_xact_lock($1, hashtext(m)) FROM unnest($2::text[]) AS m ORDER BY m`, [
    REPEAT_LOCK_CLASS,
    machines,
  ]);
  const result = await db.query<{ ord: string; scan_id: string; scanned_at: Date }>({
    name: 'ff-scans-without-msg-id',
    text: `WITH input AS MATERIALIZED (
       SELECT o.*, nextval(pg_get_serial_sequence('jobmanager.scanned_codes', 'scan_id')) AS scan_id
       FROM (SELECT u.* FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[],
                                    $7::text[], $8::timestamptz[]) WITH ORDINALITY
                 AS u(code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at, ord)
             WHERE NOT EXISTS (
               SELECT 1 FROM jobmanager.scanned_codes s
               WHERE s.machine_id = u.machine_id AND s.code_text = u.code_text AND s.msg_id IS NULL
                 AND s.operations = u.operations
                 AND s.received_at > u.received_at - make_interval(secs => ($9::double precision[])[u.ord] / 1000)
                 AND s.received_at <= u.received_at)
             ORDER BY u.ord) o),
     inserted AS (
       INSERT INTO jobmanager.scanned_codes
         (scan_id, code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at)
       SELECT scan_id, code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at
       FROM input ORDER BY ord
       RETURNING scan_id, scanned_at)
     SELECT input.ord, i.scan_id, i.scanned_at FROM inserted i JOIN input USING (scan_id)`,
    values: [
      ...scanArrays(rows),
      rows.map((_, i) => Math.max(0, typeof windowMs === 'number' ? windowMs : (windowMs[i] ?? 0))),
    ],
  });
  return new Map(
    result.rows.map((r) => [Number(r.ord) - 1, storedScan(rows[Number(r.ord) - 1], r.scan_id, r.scanned_at)]),
  );
}

/**
 * Stores one scan in a transaction of its own (a repeated msg_id, or without one the same code
 * within `windowMs`, is not stored again). The runtime stores machine scans through the inbox
 * writer's group commit instead; this is the same rule for a caller with a single scan.
 */
export async function insertScan(
  pool: Pool,
  machineId: string,
  scan: IncomingScan,
  options: { now: Date; windowMs: number; metadata?: Record<string, unknown> },
): Promise<InsertScanResult> {
  const row: ScanToStore = { machineId, scan, receivedAt: options.now, metadata: options.metadata };
  if (scan.msg_id) {
    const inserted = (await storeMessages(pool, { scans: [row] })).scans.get(0);
    return inserted ? { stored: true, scan: inserted } : { stored: false, duplicate: 'msg_id' };
  }
  return withTransaction(pool, async (client) => {
    const inserted = (await insertScansWithoutMsgId(client, [row], options.windowMs)).get(0);
    return inserted ? { stored: true, scan: inserted } : { stored: false, duplicate: 'double_send' };
  });
}

/** Keeps one scan that can never be stored, with the reason; returns its id. */
export async function rejectScan(
  pool: Pool,
  machineId: string,
  payload: string,
  reason: string,
  now: Date,
): Promise<number> {
  const stored = await storeMessages(pool, {
    rejected: [{ machineId, payload: payload.slice(0, 4096), reason, receivedAt: now }],
  });
  return stored.rejected[0].id;
}
