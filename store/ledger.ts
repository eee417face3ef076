// The processed-record ledger (jobmanager.processed_source_records): one row per source record a
// consumer has processed, written in the transaction of the record's effects. Claiming is
// INSERT ... ON CONFLICT DO NOTHING RETURNING, so a record seen twice (a replay, a catch-up after
// a restart, two workers) takes effect in exactly one transaction; a claim another transaction
// holds uncommitted waits for it.
import type { Queryable } from './db';

/** 'print_os', 'scanner', or '<consumer>_event' for the machine events a consumer applies. */
export type LedgerSource = string;

export type LedgerOutcome = 'applied' | 'skipped' | 'failed';

export interface LedgerEntry {
  source_type: LedgerSource;
  source_id: number;
  marker: number;
}

/** The ledger source of the machine events `consumer` (a domain: embossing, engraving) applies. */
export function eventSource(consumer: string): LedgerSource {
  return `${consumer}_event`;
}

/** Claims one record for this transaction; false when another transaction processed it. */
export async function claimRecord(
  db: Queryable,
  entry: LedgerEntry,
  context: { now: Date; flowVersion?: string },
): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO jobmanager.processed_source_records (source_type, source_id, marker, outcome, flow_version, processed_at)
     VALUES ($1, $2, $3, 'applied', $4, $5) ON CONFLICT (source_type, source_id) DO NOTHING`,
    [entry.source_type, entry.source_id, entry.marker, context.flowVersion ?? null, context.now],
  );
  return (result.rowCount ?? 0) > 0;
}

/** Records the outcome of a claimed record (applied by default when claimed). */
export async function finishRecord(
  db: Queryable,
  entry: LedgerEntry,
  outcome: LedgerOutcome,
  reason: string | null,
  jobsUpdated = 0,
): Promise<void> {
  await db.query(
    `UPDATE jobmanager.processed_source_records SET outcome = $3, reason = $4, jobs_updated = $5
     WHERE source_type = $1 AND source_id = $2`,
    [entry.source_type, entry.source_id, outcome, reason, jobsUpdated],
  );
}

/**
 * Records a record that took no effect (skipped: nothing to apply; failed: it failed on its own),
 * in a statement of its own. A record processed meanwhile keeps its row.
 */
export async function recordWithoutEffect(
  db: Queryable,
  entry: LedgerEntry,
  outcome: 'skipped' | 'failed',
  reason: string,
  context: { now: Date; flowVersion?: string },
): Promise<void> {
  await db.query(
    `INSERT INTO jobmanager.processed_source_records (source_type, source_id, marker, outcome, reason, flow_version, processed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source_type, source_id) DO NOTHING`,
    [
      entry.source_type,
      entry.source_id,
      entry.marker,
      outcome,
      reason,
      context.flowVersion ?? null,
      context.now,
    ],
  );
}

/** Whether a record is in the ledger (committed). */
export async function isProcessed(
  db: Queryable,
  sourceType: LedgerSource,
  sourceId: number,
): Promise<boolean> {
  const result = await db.query(
    'SELECT 1 FROM jobmanager.processed_source_records WHERE source_type = $1 AND source_id = $2',
    [sourceType, sourceId],
  );
  return (result.rowCount ?? 0) > 0;
}

/**
 * The ledger entry of a message a machine-events node sent (`msg.inbox`: `{source, id}`), or
 * undefined for a message from elsewhere (an `mqtt in` node, a test), which has no ledger row.
 */
export function ledgerEntryOfInbox(inbox: unknown): LedgerEntry | undefined {
  if (typeof inbox !== 'object' || inbox === null) return undefined;
  const { source, id } = inbox as { source?: unknown; id?: unknown };
  if (typeof source !== 'string' || !/^[a-z][a-z_]*_event$/.test(source)) return undefined;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) return undefined;
  return { source_type: source, source_id: id, marker: id };
}
