// All SQL of storing scans (split out of store/job-status.ts): scanned_codes rows, set-based for a
// group commit (store/inbox-writer.ts), the repeat rules (a msg_id stored once per machine; without
// one, the same code within the repeat window), and rejected_scans for what can never be a scan.
import type { Pool } from 'pg';
import type { IncomingScan } from '../core/job-status';
import { type Queryable, withTransaction } from './db';

/** Transaction-lock class of the per-machine repeat check ("fljs" + 1, beside the source locks). */
const REPEAT_LOCK_CLASS = 0x666c6a73 + 1;

export interface StoredScan {
  scan_id: number;
  machine_id: string;
  code_text: string;
  operations: IncomingScan['operations'];
  scanned_at: Date;
  user_id: string | null;
  msg_id: string | null;
}

export type InsertScanResult =
  { stored: true; scan: StoredScan } | { stored: false; duplicate: 'msg_id' | 'double_send' };

/** A scan to store, as the connection (machine) and the runtime's clock (receipt) give it. */
export interface ScanToStore {
  machineId: string;
  scan: IncomingScan;
  receivedAt: Date;
  metadata?: Record<string, unknown>;
}

export interface RejectedScan {
  id: number;
  machine_id: string;
  /** The payload as it arrived (escaped where PostgreSQL could not hold it). */
  payload: string;
  reason: string;
  received_at: Date;
}

function stored(row: ScanToStore, scanId: string, scannedAt: Date): StoredScan {
  return {
    scan_id: Number(scanId),
    machine_id: row.machineId,
    code_text: row.scan.code_text,
    operations: row.scan.operations,
    scanned_at: scannedAt,
    user_id: row.scan.user_id ?? null,
    msg_id: row.scan.msg_id ?? null,
  };
}

// scan_id values are drawn in the CTE, in input order, so each stored row can be matched to its
// input; the INSERT then only writes them.
const INSERT_COLUMNS = `(scan_id, code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at)`;
const INPUT = `unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[],
                      $8::timestamptz[]) WITH ORDINALITY
                 AS u(code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at, ord)`;

function inputArrays(rows: ScanToStore[]): unknown[] {
  return [
    rows.map((r) => r.scan.code_text),
    rows.map((r) => r.scan.scanned_at ?? r.receivedAt),
    rows.map((r) => r.machineId),
    rows.map((r) => r.scan.user_id ?? null),
    rows.map((r) => JSON.stringify(r.scan.operations)),
    rows.map((r) => (r.metadata ? JSON.stringify(r.metadata) : null)),
    rows.map((r) => r.scan.msg_id ?? null),
    rows.map((r) => r.receivedAt),
  ];
}

/**
 * Stores scans that carry a msg_id in one statement: the unique (machine_id, msg_id) index keeps
 * a repeat out. Returns the stored scan per input index (a repeat has none). Callers pass rows in
 * (machine_id, msg_id) order, so two runtimes storing overlapping keys wait for each other instead
 * of deadlocking.
 */
export async function insertScansWithMsgId(
  db: Queryable,
  rows: ScanToStore[],
): Promise<Map<number, StoredScan>> {
  if (rows.length === 0) return new Map();
  const result = await db.query<{ ord: string; scan_id: string; scanned_at: Date }>(
    `WITH inserted AS (
       INSERT INTO jobmanager.scanned_codes (code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at)
       SELECT u.code_text, u.scanned_at, u.machine_id, u.user_id, u.operations, u.metadata, u.msg_id, u.received_at
       FROM ${INPUT} ORDER BY u.ord
       ON CONFLICT (machine_id, msg_id) WHERE msg_id IS NOT NULL DO NOTHING
       RETURNING scan_id, machine_id, msg_id, scanned_at)
     SELECT u.ord, i.scan_id, i.scanned_at FROM inserted i
     JOIN ${INPUT} ON u.machine_id = i.machine_id AND u.msg_id = i.msg_id`,
    inputArrays(rows),
  );
  return new Map(
    result.rows.map((r) => [Number(r.ord) - 1, stored(rows[Number(r.ord) - 1], r.scan_id, r.scanned_at)]),
  );
}

/**
 * Stores scans without a msg_id, leaving out a repeat: the same code from the same machine
 * received within `windowMs` before. The per-machine transaction locks (taken in machine order)
 * make two copies arriving at once, in two transactions or two runtimes, queue: the second sees
 * the first. Repeats among `rows` themselves are the caller's to leave out
 * (core/job-status isDoubleSend), since one statement does not see its own rows.
 */
export async function insertScansWithoutMsgId(
  db: Queryable,
  rows: ScanToStore[],
  windowMs: number,
): Promise<Map<number, StoredScan>> {
  if (rows.length === 0) return new Map();
  const machines = [...new Set(rows.map((r) => r.machineId))].sort();
  await db.query(`SELECT pg_advisory_xact_lock($1, hashtext(m)) FROM unnest($2::text[]) AS m ORDER BY m`, [
    REPEAT_LOCK_CLASS,
    machines,
  ]);
  const result = await db.query<{ ord: string; scan_id: string; scanned_at: Date }>(
    `WITH input AS MATERIALIZED (
       SELECT u.*, nextval(pg_get_serial_sequence('jobmanager.scanned_codes', 'scan_id')) AS scan_id
       FROM ${INPUT}
       WHERE NOT EXISTS (
         SELECT 1 FROM jobmanager.scanned_codes s
         WHERE s.machine_id = u.machine_id AND s.code_text = u.code_text AND s.msg_id IS NULL
           AND s.received_at > u.received_at - make_interval(secs => $9::double precision / 1000)
           AND s.received_at <= u.received_at)
       ORDER BY u.ord),
     inserted AS (
       INSERT INTO jobmanager.scanned_codes ${INSERT_COLUMNS}
       SELECT scan_id, code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at
       FROM input ORDER BY ord
       RETURNING scan_id, scanned_at)
     SELECT input.ord, i.scan_id, i.scanned_at FROM inserted i JOIN input USING (scan_id)`,
    [...inputArrays(rows), Math.max(0, windowMs)],
  );
  return new Map(
    result.rows.map((r) => [Number(r.ord) - 1, stored(rows[Number(r.ord) - 1], r.scan_id, r.scanned_at)]),
  );
}

/** Keeps scans that can never be stored, with the reason (they are acknowledged all the same). */
export async function insertRejectedScans(
  db: Queryable,
  rows: Array<{ machineId: string; payload: string; reason: string; receivedAt: Date }>,
): Promise<RejectedScan[]> {
  if (rows.length === 0) return [];
  const result = await db.query<{ id: string; ord: string }>(
    `WITH input AS MATERIALIZED (
       SELECT u.*, nextval(pg_get_serial_sequence('jobmanager.rejected_scans', 'id')) AS id
       FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY
            AS u(machine_id, payload, reason, received_at, ord)),
     inserted AS (
       INSERT INTO jobmanager.rejected_scans (id, machine_id, payload, reason, received_at)
       SELECT id, machine_id, payload, reason, received_at FROM input ORDER BY ord RETURNING id)
     SELECT input.id, input.ord FROM inserted JOIN input USING (id) ORDER BY input.ord`,
    [
      rows.map((r) => r.machineId),
      rows.map((r) => r.payload),
      rows.map((r) => r.reason),
      rows.map((r) => r.receivedAt),
    ],
  );
  return result.rows.map((r) => {
    const row = rows[Number(r.ord) - 1];
    return {
      id: Number(r.id),
      machine_id: row.machineId,
      payload: row.payload,
      reason: row.reason,
      received_at: row.receivedAt,
    };
  });
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
  return withTransaction(pool, async (client) => {
    if (scan.msg_id) {
      const inserted = (await insertScansWithMsgId(client, [row])).get(0);
      return inserted ? { stored: true, scan: inserted } : { stored: false, duplicate: 'msg_id' };
    }
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
  const [row] = await insertRejectedScans(pool, [
    { machineId, payload: payload.slice(0, 4096), reason, receivedAt: now },
  ]);
  return row.id;
}
