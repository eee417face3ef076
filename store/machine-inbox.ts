// All SQL of the machine inbox: one statement that stores a flush of machine messages (scans in
// jobmanager.scanned_codes, rejected ones in rejected_scans, events in floorflow.machine_events,
// the latest status in floorflow.machines.last_status), and what a consumer has not applied yet,
// in event order. The repeat window of scans without a msg_id is store/scan-ingest.ts.
import type { IncomingScan } from '../core/job-status';
import type { Queryable } from './db';
import type { LedgerSource } from './ledger';

export interface StoredScan {
  scan_id: number;
  machine_id: string;
  code_text: string;
  operations: IncomingScan['operations'];
  scanned_at: Date;
  user_id: string | null;
  msg_id: string | null;
}

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

export interface RejectedScanToStore {
  machineId: string;
  payload: string;
  reason: string;
  receivedAt: Date;
}

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

export interface StatusToStore {
  machineId: string;
  status: Record<string, unknown>;
  receivedAt: Date;
}

export interface MessagesToStore {
  /** Scans with a msg_id, in machine order (see storeMessages). */
  scans?: ScanToStore[];
  rejected?: RejectedScanToStore[];
  /** In the order received. */
  events?: EventToStore[];
  /** One per machine (the latest). */
  statuses?: StatusToStore[];
}

export interface StoredMessages {
  /** The stored scan per index of `scans`; a repeated (machine, msg_id) has none. */
  scans: Map<number, StoredScan>;
  rejected: RejectedScan[];
  /** In the order of `events`. */
  events: StoredEvent[];
}

export function storedScan(row: ScanToStore, scanId: string | number, scannedAt: Date): StoredScan {
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

/** The columns of scanned_codes a scan fills, as parameter arrays (8 of them). */
export function scanArrays(rows: ScanToStore[]): unknown[] {
  return [
    rows.map((r) => r.scan.code_text),
    // Times as ISO text: pg would write each Date out in the local zone, digit by digit.
    rows.map((r) => r.scan.scanned_at ?? r.receivedAt.toISOString()),
    rows.map((r) => r.machineId),
    rows.map((r) => r.scan.user_id ?? null),
    rows.map((r) => JSON.stringify(r.scan.operations)),
    rows.map((r) => (r.metadata ? JSON.stringify(r.metadata) : null)),
    rows.map((r) => r.scan.msg_id ?? null),
    rows.map((r) => r.receivedAt.toISOString()),
  ];
}

/** The parts of a flush: which tables its statement writes. */
export interface FlushShape {
  scans: boolean;
  rejected: boolean;
  events: boolean;
  statuses: boolean;
}

/** Every part, as one statement for all flushes was before wave 5 (the bench's "before"). */
export const EVERY_PART: Readonly<FlushShape> = Object.freeze({
  scans: true,
  rejected: true,
  events: true,
  statuses: true,
});

// One statement, so a flush is one round trip and commits atomically on its own. Ids are drawn in
// the CTEs, in input order, so each stored row is matched to its input and a machine's events keep
// the order they arrived in. A data-modifying CTE runs whether or not the result reads it, and an
// INSERT of no rows still fires its table's statement triggers (the wake-up notification, "last
// seen"), so a flush's statement holds only the parts it has: one text per shape, each prepared
// once a connection (almost every flush is scans only).
function flushStatement(shape: FlushShape): string {
  const ctes: string[] = [];
  const results: string[] = [];
  let n = 0;
  const params = (types: string[]): string[] => types.map((t) => `$${(n += 1)}::${t}[]`);
  if (shape.scans) {
    const p = params(['text', 'timestamptz', 'text', 'text', 'jsonb', 'jsonb', 'text', 'timestamptz']);
    // The stored rows are matched to their input by (machine, msg_id), read from the two arrays.
    ctes.push(`scans AS (
    INSERT INTO jobmanager.scanned_codes (code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at)
    SELECT code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at
    FROM unnest(${p.join(', ')}) WITH ORDINALITY
         AS u(code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at, ord)
    ORDER BY ord
    ON CONFLICT (machine_id, msg_id) WHERE msg_id IS NOT NULL DO NOTHING
    RETURNING scan_id, machine_id, msg_id, scanned_at)`);
    results.push(`SELECT 's' AS kind, i.ord, s.scan_id AS id, s.scanned_at, NULL AS machine_kind
  FROM scans s JOIN unnest(${p[2]}, ${p[6]}) WITH ORDINALITY AS i(machine_id, msg_id, ord)
       ON i.machine_id = s.machine_id AND i.msg_id = s.msg_id`);
  }
  if (shape.rejected) {
    const p = params(['text', 'text', 'text', 'timestamptz']);
    ctes.push(
      `rejected_in AS MATERIALIZED (
    SELECT u.*, nextval(pg_get_serial_sequence('jobmanager.rejected_scans', 'id')) AS id
    FROM unnest(${p.join(', ')}) WITH ORDINALITY
         AS u(machine_id, payload, reason, received_at, ord)
    ORDER BY u.ord)`,
      `rejected AS (
    INSERT INTO jobmanager.rejected_scans (id, machine_id, payload, reason, received_at)
    SELECT id, machine_id, payload, reason, received_at FROM rejected_in ORDER BY ord)`,
    );
    results.push(`SELECT 'r' AS kind, ord, id, NULL AS scanned_at, NULL AS machine_kind FROM rejected_in`);
  }
  if (shape.events) {
    const p = params(['text', 'text', 'jsonb', 'text', 'text', 'timestamptz']);
    ctes.push(
      `event_in AS MATERIALIZED (
    SELECT o.*, nextval(pg_get_serial_sequence('floorflow.machine_events', 'event_id')) AS event_id
    FROM (SELECT u.*, m.kind AS machine_kind
          FROM unnest(${p.join(', ')})
               WITH ORDINALITY AS u(machine_id, topic, payload, raw, reason, received_at, ord)
          LEFT JOIN floorflow.machines m ON m.machine_id = u.machine_id
          ORDER BY u.ord) o)`,
      `events AS (
    INSERT INTO floorflow.machine_events (event_id, machine_id, machine_kind, topic, payload, raw, reason, received_at)
    SELECT event_id, machine_id, machine_kind, topic, payload, raw, reason, received_at FROM event_in ORDER BY ord)`,
    );
    results.push(`SELECT 'e' AS kind, ord, event_id AS id, NULL AS scanned_at, machine_kind FROM event_in`);
  }
  if (shape.statuses) {
    const [machines, status, at] = params(['text', 'jsonb', 'timestamptz']);
    ctes.push(`statuses AS (
    UPDATE floorflow.machines m
    SET last_status = u.status, last_status_at = u.received_at,
        last_seen_at = GREATEST(m.last_seen_at, u.received_at)
    FROM unnest(${machines}, ${status}, ${at}) AS u(machine_id, status, received_at)
    WHERE m.machine_id = u.machine_id AND m.machine_id = ANY(${machines}))`);
  }
  if (results.length === 0)
    results.push(`SELECT NULL::text AS kind, NULL::bigint AS ord, NULL::bigint AS id, NULL::timestamptz AS scanned_at,
         NULL::text AS machine_kind WHERE false`);
  return `WITH ${ctes.join(',\n  ')}\n  ${results.join('\n  UNION ALL ')}`;
}

const flushStatements = new Map<string, { name: string; text: string }>();

/** The flush's statement for its shape (made once a process), and its parameters. */
export function flushQuery(
  messages: MessagesToStore,
  shape: FlushShape = {
    scans: (messages.scans?.length ?? 0) > 0,
    rejected: (messages.rejected?.length ?? 0) > 0,
    events: (messages.events?.length ?? 0) > 0,
    statuses: (messages.statuses?.length ?? 0) > 0,
  },
): { name: string; text: string; values: unknown[] } {
  const key = `${shape.scans ? 's' : ''}${shape.rejected ? 'r' : ''}${shape.events ? 'e' : ''}${shape.statuses ? 't' : ''}`;
  let statement = flushStatements.get(key);
  if (!statement) {
    // Scans only, the common shape, keeps the one name the flush had before.
    statement = {
      name: key === 's' ? 'ff-inbox-store' : `ff-inbox-store-${key}`,
      text: flushStatement(shape),
    };
    flushStatements.set(key, statement);
  }
  const values: unknown[] = [];
  if (shape.scans) values.push(...scanArrays(messages.scans ?? []));
  if (shape.rejected) {
    const rejected = messages.rejected ?? [];
    values.push(
      rejected.map((r) => r.machineId),
      rejected.map((r) => r.payload),
      rejected.map((r) => r.reason),
      rejected.map((r) => r.receivedAt),
    );
  }
  if (shape.events) {
    const events = messages.events ?? [];
    values.push(
      events.map((e) => e.machineId),
      events.map((e) => e.topic),
      events.map((e) => (e.payload === undefined ? null : JSON.stringify(e.payload))),
      events.map((e) => e.raw ?? null),
      events.map((e) => e.reason ?? null),
      events.map((e) => e.receivedAt),
    );
  }
  if (shape.statuses) {
    const statuses = messages.statuses ?? [];
    values.push(
      statuses.map((s) => s.machineId),
      statuses.map((s) => JSON.stringify(s.status)),
      statuses.map((s) => s.receivedAt),
    );
  }
  return { ...statement, values };
}

interface FlushRow {
  kind: 's' | 'r' | 'e';
  ord: string;
  id: string;
  scanned_at: Date | null;
  machine_kind: string | null;
}

/**
 * Stores a flush of machine messages in one statement (none when it holds nothing to write). Scans
 * with a msg_id are given grouped by machine, so two runtimes storing one machine's overlapping
 * scans wait for each other instead of deadlocking; the unique (machine_id, msg_id) index keeps a
 * repeat out. Each event is stored with its machine's kind as registered now.
 */
export async function storeMessages(db: Queryable, messages: MessagesToStore): Promise<StoredMessages> {
  const scans = messages.scans ?? [];
  const rejected = messages.rejected ?? [];
  const events = messages.events ?? [];
  const statuses = messages.statuses ?? [];
  const empty = scans.length + rejected.length + events.length + statuses.length === 0;
  const result = empty ? { rows: [] as FlushRow[] } : await db.query<FlushRow>(flushQuery(messages));
  const stored: StoredMessages = {
    scans: new Map(),
    rejected: new Array<RejectedScan>(rejected.length),
    events: new Array<StoredEvent>(events.length),
  };
  for (const row of result.rows) {
    const i = Number(row.ord) - 1;
    if (row.kind === 's') stored.scans.set(i, storedScan(scans[i], row.id, row.scanned_at!));
    else if (row.kind === 'r') {
      const r = rejected[i];
      stored.rejected[i] = {
        id: Number(row.id),
        machine_id: r.machineId,
        payload: r.payload,
        reason: r.reason,
        received_at: r.receivedAt,
      };
    } else {
      const e = events[i];
      stored.events[i] = {
        event_id: Number(row.id),
        machine_id: e.machineId,
        machine_kind: row.machine_kind,
        topic: e.topic,
        payload: e.payload ?? null,
        raw: e.raw ?? null,
        reason: e.reason ?? null,
        received_at: e.receivedAt,
      };
    }
  }
  return stored;
}

/** A machine_events row as pg returns it (bigint as text). */
type EventRow = Omit<StoredEvent, 'event_id'> & { event_id: string };

function eventOf(row: EventRow): StoredEvent {
  return { ...row, event_id: Number(row.event_id) };
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
  // OFFSET 0: the ledger check stays a probe of its key per event (see store/job-status.ts).
  const result = await db.query<EventRow>(
    `SELECT e.event_id, e.machine_id, e.machine_kind, e.topic, e.payload, e.raw, e.reason, e.received_at
     FROM floorflow.machine_events e
     WHERE e.machine_kind = ANY($2::text[]) AND e.event_id > $3
       AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                       WHERE r.source_type = $1 AND r.source_id = e.event_id OFFSET 0)
     ORDER BY e.event_id LIMIT $4`,
    [query.source, [...query.machineKinds], query.after, query.limit],
  );
  return result.rows.map(eventOf);
}

/**
 * Moves the consumer's marker up to just below its first unprocessed event (or to the highest
 * event when none is left), never back, and writes nothing when it does not move (a runtime with
 * no machine events writes nothing at start). Returns the marker.
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
                         WHERE r.source_type = $1 AND r.source_id = e.event_id OFFSET 0)),
     highest AS (SELECT max(event_id) AS id FROM floorflow.machine_events),
     moved AS (
       INSERT INTO jobmanager.processing_markers (marker_type, last_processed_id, last_processed_at, updated_at)
       SELECT $1, next.id, $4, $4
       FROM current, first_open, highest,
            LATERAL (SELECT GREATEST(current.last, coalesce(first_open.id - 1, highest.id, 0)) AS id) next
       WHERE next.id > current.last
       ON CONFLICT (marker_type) DO UPDATE
         SET last_processed_id = GREATEST(processing_markers.last_processed_id, excluded.last_processed_id),
             last_processed_at = excluded.last_processed_at, updated_at = excluded.updated_at
       RETURNING last_processed_id)
     SELECT coalesce((SELECT last_processed_id FROM moved), (SELECT last FROM current)) AS last`,
    [query.source, [...query.machineKinds], Math.max(0, query.lookBack), now],
  );
  return Number(result.rows[0].last);
}
