// All SQL of the machine inbox besides scans (store/scan-ingest.ts): machine events
// (floorflow.machine_events, migration 011), the latest status of each machine
// (floorflow.machines.last_status), and what a consumer has not applied yet, in event order.
import type { Queryable } from './db';
import type { LedgerSource } from './ledger';

export interface StoredEvent {
  event_id: number;
  machine_id: string;
  /** The machine's kind when the event arrived (null for a machine not registered then). */
  machine_kind: string | null;
  topic: string;
  /** The event as received, or null when it was not JSON PostgreSQL can hold (then raw, reason). */
  payload: unknown;
  raw: string | null;
  reason: string | null;
  received_at: Date;
}

export interface EventToStore {
  machineId: string;
  topic: string;
  payload?: unknown;
  raw?: string;
  reason?: string;
  receivedAt: Date;
}

interface EventRow {
  event_id: string;
  machine_id: string;
  machine_kind: string | null;
  topic: string;
  payload: unknown;
  raw: string | null;
  reason: string | null;
  received_at: Date;
}

function eventOf(row: EventRow): StoredEvent {
  return { ...row, event_id: Number(row.event_id) };
}

/**
 * Stores events in input order (event ids follow it, so a machine's burst keeps its order), each
 * with its machine's kind as registered now. Returns them in input order.
 */
export async function insertEvents(db: Queryable, rows: EventToStore[]): Promise<StoredEvent[]> {
  if (rows.length === 0) return [];
  const result = await db.query<EventRow & { ord: string }>(
    `WITH input AS MATERIALIZED (
       SELECT u.*, m.kind AS machine_kind,
              nextval(pg_get_serial_sequence('floorflow.machine_events', 'event_id')) AS event_id
       FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::text[], $6::timestamptz[]) WITH ORDINALITY
            AS u(machine_id, topic, payload, raw, reason, received_at, ord)
       LEFT JOIN floorflow.machines m ON m.machine_id = u.machine_id
       ORDER BY u.ord),
     inserted AS (
       INSERT INTO floorflow.machine_events (event_id, machine_id, machine_kind, topic, payload, raw, reason, received_at)
       SELECT event_id, machine_id, machine_kind, topic, payload, raw, reason, received_at FROM input ORDER BY ord
       RETURNING event_id)
     SELECT input.* FROM inserted JOIN input USING (event_id) ORDER BY input.ord`,
    [
      rows.map((r) => r.machineId),
      rows.map((r) => r.topic),
      rows.map((r) => (r.payload === undefined ? null : JSON.stringify(r.payload))),
      rows.map((r) => r.raw ?? null),
      rows.map((r) => r.reason ?? null),
      rows.map((r) => r.receivedAt),
    ],
  );
  return result.rows.map(eventOf);
}

/** Records each machine's latest status (one row per machine: the caller keeps the last of a batch). */
export async function recordStatuses(
  db: Queryable,
  rows: Array<{ machineId: string; status: Record<string, unknown>; receivedAt: Date }>,
): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `UPDATE floorflow.machines m
     SET last_status = u.status, last_status_at = u.received_at,
         last_seen_at = GREATEST(m.last_seen_at, u.received_at)
     FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[]) AS u(machine_id, status, received_at)
     WHERE m.machine_id = u.machine_id AND m.machine_id = ANY($1::text[])`,
    [rows.map((r) => r.machineId), rows.map((r) => JSON.stringify(r.status)), rows.map((r) => r.receivedAt)],
  );
}

export interface EventQuery {
  /** The consumer's ledger source ('<consumer>_event'). */
  source: LedgerSource;
  /** Kinds of the machines whose events the consumer applies. */
  machineKinds: readonly string[];
  /** Events above this id. */
  after: number;
  limit: number;
}

/** Events of the consumer's machine kinds it has not processed yet, in event order. */
export async function unprocessedEvents(db: Queryable, query: EventQuery): Promise<StoredEvent[]> {
  const result = await db.query<EventRow>(
    `SELECT e.event_id, e.machine_id, e.machine_kind, e.topic, e.payload, e.raw, e.reason, e.received_at
     FROM floorflow.machine_events e
     WHERE e.machine_kind = ANY($2::text[]) AND e.event_id > $3
       AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                       WHERE r.source_type = $1 AND r.source_id = e.event_id)
     ORDER BY e.event_id LIMIT $4`,
    [query.source, [...query.machineKinds], query.after, query.limit],
  );
  return result.rows.map(eventOf);
}

/** The consumer's marker: every event of its machines up to it is processed (0 at first). */
export async function eventMarker(db: Queryable, source: LedgerSource): Promise<number> {
  const result = await db.query<{ last: string }>(
    'SELECT last_processed_id AS last FROM jobmanager.processing_markers WHERE marker_type = $1',
    [source],
  );
  return Number(result.rows[0]?.last ?? 0);
}

/**
 * Moves the consumer's marker up to just below its first unprocessed event (or to the highest
 * event when none is left), never back. Returns the marker.
 */
export async function advanceEventMarker(
  db: Queryable,
  query: Omit<EventQuery, 'limit' | 'after'> & { lookBack: number },
  now: Date,
): Promise<number> {
  const result = await db.query<{ last: string }>(
    `WITH current AS (
       SELECT coalesce((SELECT last_processed_id FROM jobmanager.processing_markers WHERE marker_type = $1), 0) AS last),
     floor AS (SELECT GREATEST(0, last - $3) AS id FROM current),
     first_open AS (
       SELECT min(e.event_id) AS id FROM floorflow.machine_events e, floor
       WHERE e.machine_kind = ANY($2::text[]) AND e.event_id > floor.id
         AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                         WHERE r.source_type = $1 AND r.source_id = e.event_id)),
     highest AS (SELECT max(event_id) AS id FROM floorflow.machine_events)
     INSERT INTO jobmanager.processing_markers (marker_type, last_processed_id, last_processed_at, updated_at)
     SELECT $1, GREATEST(current.last, coalesce(first_open.id - 1, highest.id, 0)), $4, $4
     FROM current, first_open, highest
     ON CONFLICT (marker_type) DO UPDATE
       SET last_processed_id = GREATEST(processing_markers.last_processed_id, excluded.last_processed_id),
           last_processed_at = excluded.last_processed_at, updated_at = excluded.updated_at
     RETURNING last_processed_id AS last`,
    [query.source, [...query.machineKinds], Math.max(0, query.lookBack), now],
  );
  return Number(result.rows[0].last);
}
