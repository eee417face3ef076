// Applying "print OS" records (docs/job-status.md, "Rules as implemented") a batch at a time: the
// records go to jobmanager.ff_apply_print (migration 012), which judges them inside PostgreSQL in
// marker order, each against the file states its predecessors left, a job printed only when every
// one of its files across impositions is printed: the rules of core/job-status
// evaluatePrintRecords, which the property tests hold it to.
import type { Pool } from 'pg';
import type { PrintStatus } from '../core/job-status';
import {
  applyWithRetries,
  resultOf,
  type AppliedRow,
  type ApplyContext,
  type ApplyResult,
  type Client,
} from './job-status-apply';

/** A "print OS" record given to the applier directly (job-mapper input, tests). */
export interface PrintOsRecordInput {
  id: number;
  marker: number;
  name: string;
  status: PrintStatus;
  job_complete_time?: Date | null;
}

/**
 * Loads the unprocessed "print OS" rows with markers in (floor, upper] into the batch's working
 * table (in marker order) and applies them, in the caller's transaction (the poller's, which holds
 * the source's lock and moves the marker with it). File ids must be parsed already.
 */
export async function applyPrintRows(
  client: Client,
  floor: number,
  upper: number,
  ctx: ApplyContext,
): Promise<{ read: number; maxMarker: number | null; result: ApplyResult }> {
  await client.query('SELECT jobmanager.ff_prepare_batch()');
  // OFFSET 0: the ledger check stays a probe of its key per row (see store/job-status.ts).
  const loaded = await client.query<{ source_id: string; marker: string }>({
    name: 'ff-print-load-rows',
    text: `INSERT INTO pg_temp.ff_print_batch (pos, source_id, marker, imposition_id, printed, effective_at)
           SELECT row_number() OVER (ORDER BY p.marker, p.id), p.id, p.marker, p.name, p.status = 'PRINTED',
                  COALESCE(p.job_complete_time, p.created_at)
           FROM jobmanager."print OS" p
           WHERE p.marker > $1 AND p.marker <= $2
             AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                             WHERE r.source_type = 'print_os' AND r.source_id = p.id OFFSET 0)
           RETURNING source_id, marker`,
    values: [floor, upper],
  });
  const rows = loaded.rows.map((r) => ({ id: Number(r.source_id), marker: Number(r.marker) }));
  rows.sort((a, b) => a.marker - b.marker || a.id - b.id);
  const applied = await client.query<AppliedRow>({
    name: 'ff-apply-print',
    text: 'SELECT * FROM jobmanager.ff_apply_print($1, $2, false)',
    values: [ctx.now, ctx.flowVersion ?? null],
  });
  return {
    read: rows.length,
    maxMarker: rows.length > 0 ? rows[rows.length - 1].marker : null,
    result: resultOf(
      applied.rows,
      rows.map((r) => r.id),
    ),
  };
}

/** Applies "print OS" records given as values, in one transaction (one call). */
export async function applyPrintOsRecords(
  pool: Pool,
  records: PrintOsRecordInput[],
  ctx: ApplyContext,
): Promise<ApplyResult> {
  const seen = new Set<number>();
  const unique = records.filter((r) => !seen.has(r.id) && seen.add(r.id));
  const rows = await applyWithRetries(pool, ctx, async (checkFiles) => {
    const result = await pool.query<AppliedRow>({
      name: 'ff-apply-print-records',
      text: 'SELECT * FROM jobmanager.ff_apply_print_records($1, $2, $3, $4, $5, $6, $7, $8)',
      values: [
        unique.map((r) => r.id),
        unique.map((r) => r.marker),
        unique.map((r) => r.name),
        unique.map((r) => r.status),
        unique.map((r) => r.job_complete_time ?? ctx.now),
        ctx.now,
        ctx.flowVersion ?? null,
        checkFiles,
      ],
    });
    return result.rows;
  });
  return resultOf(
    rows,
    unique.map((r) => r.id),
  );
}

/** One "print OS" record in its own transaction. */
export async function applyPrintOsRecord(
  pool: Pool,
  record: PrintOsRecordInput,
  ctx: ApplyContext,
): Promise<ApplyResult> {
  return applyPrintOsRecords(pool, [record], ctx);
}
