// Job-status processing by marker: polling "print OS" and scanned_codes in batches (one
// transaction per batch: the source's lock, its rows, their effects, their ledger rows and the new
// marker), gap reports, reprocessing and the job-status read. Applying a batch is
// store/job-status-print.ts and store/job-status-scans.ts; storing scans is store/scan-ingest.ts.
import type { Pool } from 'pg';
import { findGaps, lookBackFrom, type MarkerGap, type SourceType } from '../core/job-status';
import { withTransaction } from './db';
import {
  EMPTY_RESULT,
  applyWithRetries,
  indexNewFiles,
  type ApplyContext,
  type ApplyResult,
  type Client,
} from './job-status-apply';
import { applyPrintRows } from './job-status-print';
import { applyScansIn } from './job-status-scans';

export type { ApplyContext, ApplyResult } from './job-status-apply';
export type { SourceType } from '../core/job-status';

interface SourceDef {
  markerType: 'print_os' | 'scanned_codes';
  /** The NOTIFY channel of migration 010's insert trigger. */
  channel: string;
  /** Second key of the transaction-scoped advisory lock that lets one worker at a time work the source. */
  lockKey: number;
}

export const SOURCES: Readonly<Record<SourceType, SourceDef>> = Object.freeze({
  print_os: { markerType: 'print_os', channel: 'floorflow_print_os', lockKey: 1 },
  scanner: { markerType: 'scanned_codes', channel: 'floorflow_scanned_codes', lockKey: 2 },
});

export const LOCK_CLASS = 0x666c6a73; // "fljs"

export interface BatchOptions extends ApplyContext {
  batchSize: number;
  /**
   * catchUp only: once a batch comes back full (a backlog), the next ones take up to this many rows
   * (default: BACKLOG_BATCH_FACTOR times batchSize). A batch's fixed work per job (its claims,
   * job_operations and jobs.operations rows, judged and written once per batch) is then done once
   * for many records; a source that is caught up goes back to batchSize.
   */
  backlogBatchSize?: number;
  /** How far below the stored marker to re-read for rows that committed late (in marker units). */
  lookBack: number;
  /** Read from marker 0 (the process-print-os route's force); records already processed still take no second effect. */
  force?: boolean;
  /** Wait up to this long for another worker's lock instead of giving up at once. */
  waitMs?: number;
}

export interface BatchResult extends ApplyResult {
  source: SourceType;
  /** false when another worker holds the source; nothing was read or written. */
  locked: boolean;
  last_marker: number;
  /** The batch was full: more rows may be waiting. */
  more: boolean;
}

// ---------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------

interface ScanRow {
  scan_id: string;
  code_text: string;
  operations: unknown;
  scanned_at: Date;
}

async function lockSource(client: Client, source: SourceType, waitMs: number | undefined): Promise<boolean> {
  const key = SOURCES[source].lockKey;
  if (!waitMs) {
    const result = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1, $2) AS ok', [
      LOCK_CLASS,
      key,
    ]);
    return result.rows[0].ok;
  }
  await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(waitMs))}`);
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, key]);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') return false;
    throw err;
  }
}

async function readMarker(client: Client, source: SourceType): Promise<number> {
  const markerType = SOURCES[source].markerType;
  await client.query(
    `INSERT INTO jobmanager.processing_markers (marker_type, last_processed_id) VALUES ($1, 0)
     ON CONFLICT (marker_type) DO NOTHING`,
    [markerType],
  );
  const result = await client.query<{ last: string }>(
    'SELECT last_processed_id AS last FROM jobmanager.processing_markers WHERE marker_type = $1 FOR UPDATE',
    [markerType],
  );
  return Number(result.rows[0].last);
}

async function writeMarker(client: Client, source: SourceType, marker: number, now: Date): Promise<void> {
  await client.query(
    `UPDATE jobmanager.processing_markers
     SET last_processed_id = GREATEST(last_processed_id, $2), last_processed_at = $3, updated_at = $3
     WHERE marker_type = $1`,
    [SOURCES[source].markerType, marker, now],
  );
}

// "NOT EXISTS (... OFFSET 0)" keeps the ledger check a probe of its primary key per source row:
// without OFFSET 0 the planner may turn it into an anti-join, and with the ledger's statistics
// behind its growth (it grows by a batch a transaction) it picks one that rescans the whole ledger
// for every row (measured: 0.5 s per batch of 1000 at 10,000 rows). The same in
// store/job-status-print.ts and store/machine-inbox.ts.
//
// A batch is every unprocessed row above the look-back floor up to the marker of the `limit`-th
// one, so rows that share that marker stay together ("print OS".marker is not unique; a batch must
// not split one). Two statements: with the upper marker known, the planner walks the marker index
// instead of guessing a range and scanning the backlog.
const PRINT_OS_BATCH_END = `
  SELECT max(marker) AS upper FROM (
    SELECT p.marker FROM jobmanager."print OS" p
    WHERE p.marker > $1
      AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                      WHERE r.source_type = 'print_os' AND r.source_id = p.id OFFSET 0)
    ORDER BY p.marker LIMIT $2) AS candidates`;

const READ_SCANS = `
  SELECT s.scan_id, s.code_text, s.operations, s.scanned_at
  FROM jobmanager.scanned_codes s
  WHERE s.scan_id > $1
    AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                    WHERE r.source_type = 'scanner' AND r.source_id = s.scan_id OFFSET 0)
  ORDER BY s.scan_id LIMIT $2`;

const MAX_MARKER: Record<SourceType, string> = {
  print_os: 'SELECT max(marker) AS max FROM jobmanager."print OS"',
  scanner: 'SELECT max(scan_id) AS max FROM jobmanager.scanned_codes',
};

/**
 * One batch of one source in one transaction: the source's advisory lock, the marker, the rows,
 * their effects, their processed-record rows and the new marker commit together or not at all.
 * Rows are read from `lookBack` below the marker, minus those already processed, so a row that
 * committed late behind a higher marker is still applied, and a row read twice has no second effect.
 */
export async function processBatch(
  pool: Pool,
  source: SourceType,
  options: BatchOptions,
): Promise<BatchResult> {
  return applyWithRetries(pool, options, () => processBatchOnce(pool, source, options));
}

async function processBatchOnce(pool: Pool, source: SourceType, options: BatchOptions): Promise<BatchResult> {
  return withTransaction(pool, async (client): Promise<BatchResult> => {
    if (!(await lockSource(client, source, options.waitMs))) {
      return { ...EMPTY_RESULT, skips: [], records: [], source, locked: false, last_marker: -1, more: false };
    }
    await indexNewFiles(client, options.filePattern);
    const last = await readMarker(client, source);
    const floor = options.force ? 0 : lookBackFrom(last, options.lookBack);
    const limit = Math.max(1, Math.floor(options.batchSize));
    let result: ApplyResult;
    let batchMax: number;
    let read: number;
    if (source === 'print_os') {
      const upper = (await client.query<{ upper: string | null }>(PRINT_OS_BATCH_END, [floor, limit])).rows[0]
        .upper;
      if (upper === null) {
        read = 0;
        batchMax = last;
        result = { ...EMPTY_RESULT, skips: [], records: [] };
      } else {
        const applied = await applyPrintRows(client, floor, Number(upper), options);
        read = applied.read;
        batchMax = applied.maxMarker ?? last;
        result = applied.result;
      }
    } else {
      const rows = (await client.query<ScanRow>(READ_SCANS, [floor, limit])).rows;
      read = rows.length;
      batchMax = rows.length > 0 ? Number(rows[rows.length - 1].scan_id) : last;
      result =
        rows.length === 0
          ? { ...EMPTY_RESULT, skips: [], records: [] }
          : await applyScansIn(
              client,
              rows.map((r) => ({ ...r, scan_id: Number(r.scan_id) })),
              options,
            );
    }
    const more = read >= limit;
    // A short read saw every visible unprocessed row above the floor, so everything visible up to
    // the source's highest marker is now processed (some by the live scan path).
    let next = batchMax;
    if (!more) {
      const max = (await client.query<{ max: string | null }>(MAX_MARKER[source])).rows[0].max;
      if (max !== null) next = Math.max(next, Number(max));
    }
    if (next > last) await writeMarker(client, source, next, options.now);
    return { ...result, source, locked: true, last_marker: Math.max(last, next), more };
  });
}

/**
 * How much larger than the batch size catchUp's batches grow on a backlog (BatchOptions.backlogBatchSize).
 * 20, not 10 as until wave 5: on the bench's backlog (100,000 rows, batches of 1000) a batch writes
 * ~9,400 jobs' operation rows and claims whatever its size, and batches of 20,000 took 13 % less
 * database CPU than batches of 10,000 (docs/benchmarks.md, "Print OS backlog", wave 5). A batch then
 * holds its jobs' locks ~3 s instead of ~1.7 s, which delays applying scans of those jobs (not their
 * acknowledgement: docs/job-status.md, "Scan acknowledgement rule") while a backlog lasts.
 */
export const BACKLOG_BATCH_FACTOR = 20;

/** Batches until the source is caught up (or `maxBatches` ran); used by the pollers and the HTTP triggers. */
export async function catchUp(
  pool: Pool,
  source: SourceType,
  options: BatchOptions & { maxBatches?: number },
): Promise<BatchResult> {
  // Per-record results are left out of the total: a backlog may hold a hundred thousand.
  const total: BatchResult = {
    ...EMPTY_RESULT,
    skips: [],
    records: [],
    source,
    locked: true,
    last_marker: 0,
    more: false,
  };
  const most = Math.max(
    options.batchSize,
    options.backlogBatchSize ?? options.batchSize * BACKLOG_BATCH_FACTOR,
  );
  let size = options.batchSize;
  for (let i = 0; i < (options.maxBatches ?? 1000); i += 1) {
    const batch = await processBatch(pool, source, { ...options, batchSize: size });
    // Straight to the backlog size, not doubling towards it: a larger limit reads only the rows
    // that are there (a burst just past batchSize is still one short batch), and the batches
    // between (2, 4 and 8 times batchSize) each judged and wrote most of the backlog's jobs again
    // for a fraction of its records (docs/benchmarks.md, "Print OS backlog", wave 5).
    size = batch.more ? most : options.batchSize;
    if (!batch.locked) return { ...total, locked: i > 0 };
    total.processed += batch.processed;
    total.applied += batch.applied;
    total.skipped += batch.skipped;
    total.jobs_updated += batch.jobs_updated;
    total.skips.push(...batch.skips.slice(0, 100 - total.skips.length));
    total.last_marker = batch.last_marker;
    total.more = batch.more;
    if (!batch.more) break;
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// Markers: status, gaps, reprocess
// ---------------------------------------------------------------------------------------

export interface SourceStatus {
  source: SourceType;
  last_marker: number;
  max_marker: number;
  /** Highest marker in the source minus the processed marker. */
  lag: number;
}

export async function sourceStatus(pool: Pool, source: SourceType): Promise<SourceStatus> {
  const result = await pool.query<{ last: string | null; max: string | null }>(
    `SELECT (SELECT last_processed_id FROM jobmanager.processing_markers WHERE marker_type = $1) AS last,
            (${MAX_MARKER[source]}) AS max`,
    [SOURCES[source].markerType],
  );
  const last = Number(result.rows[0].last ?? 0);
  const max = Number(result.rows[0].max ?? 0);
  return { source, last_marker: last, max_marker: max, lag: Math.max(0, max - last) };
}

export interface GapReport extends SourceStatus {
  /** Missing markers between `window` below the processed marker and the highest marker. */
  gaps: MarkerGap[];
  /** Rows in that range not processed yet. */
  unprocessed: number;
}

export async function gapReport(pool: Pool, source: SourceType, window: number): Promise<GapReport> {
  const status = await sourceStatus(pool, source);
  const floor = lookBackFrom(status.last_marker, window);
  const sql =
    source === 'print_os'
      ? `SELECT DISTINCT marker AS m, EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
           WHERE r.source_type = 'print_os' AND r.source_id = p.id) AS done
         FROM jobmanager."print OS" p WHERE marker > $1 ORDER BY 1 LIMIT 100000`
      : `SELECT scan_id AS m, EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
           WHERE r.source_type = 'scanner' AND r.source_id = s.scan_id) AS done
         FROM jobmanager.scanned_codes s WHERE scan_id > $1 ORDER BY 1 LIMIT 100000`;
  const rows = (await pool.query<{ m: string; done: boolean }>(sql, [floor])).rows;
  const markers = rows.map((r) => Number(r.m));
  if (floor > 0) markers.unshift(floor);
  return { ...status, gaps: findGaps(markers), unprocessed: rows.filter((r) => !r.done).length };
}

/**
 * Re-reads a source from `fromMarker`: the marker is put back below it and the skipped records
 * from there on are forgotten, so they are tried again (a mapping imported since, a job created
 * since). Applied records stay recorded, so a reprocess never applies anything twice.
 */
export async function reprocessFrom(
  pool: Pool,
  source: SourceType,
  fromMarker: number,
  now: Date,
): Promise<{ retried_skipped: number }> {
  return withTransaction(pool, async (client) => {
    await lockSource(client, source, 30000);
    await readMarker(client, source);
    const forgotten = await client.query(
      `DELETE FROM jobmanager.processed_source_records
       WHERE source_type = $1 AND outcome IN ('skipped', 'failed') AND marker >= $2`,
      [source, fromMarker],
    );
    await client.query(
      `UPDATE jobmanager.processing_markers SET last_processed_id = LEAST(last_processed_id, $2), updated_at = $3
       WHERE marker_type = $1`,
      [SOURCES[source].markerType, Math.max(0, fromMarker - 1), now],
    );
    return { retried_skipped: forgotten.rowCount ?? 0 };
  });
}

export async function skippedRecords(
  pool: Pool,
  source: SourceType,
  limit = 100,
): Promise<Array<{ source_id: number; marker: number; reason: string }>> {
  const result = await pool.query<{ source_id: string; marker: string; reason: string }>(
    `SELECT source_id, marker, reason FROM jobmanager.processed_source_records
     WHERE source_type = $1 AND outcome = 'skipped' ORDER BY marker DESC, source_id DESC LIMIT $2`,
    [source, limit],
  );
  return result.rows.map((r) => ({
    source_id: Number(r.source_id),
    marker: Number(r.marker),
    reason: r.reason,
  }));
}

// ---------------------------------------------------------------------------------------
// Job status read (GET /api/job-status/:jobId)
// ---------------------------------------------------------------------------------------

export interface JobStatus {
  job_id: string;
  current_status: Record<string, unknown>;
  update_history: Array<{
    update_id: number;
    operation_type: string;
    status: string;
    source_type: string;
    source_id: number | null;
    notes: string | null;
    updated_at: string;
  }>;
}

export async function jobStatus(
  pool: Pool,
  jobId: string,
  historyLimit = 500,
): Promise<JobStatus | undefined> {
  const job = await pool.query<{ operations: Record<string, unknown> }>(
    'SELECT operations FROM jobmanager.jobs WHERE job_id = $1',
    [jobId],
  );
  if (job.rows.length === 0) return undefined;
  const history = await pool.query<{
    update_id: string;
    operation_type: string;
    status: string;
    source_type: string;
    source_id: string | null;
    notes: string | null;
    updated_at: Date;
  }>(
    `SELECT update_id, operation_type, status, source_type, source_id, notes, updated_at
     FROM jobmanager.job_status_updates WHERE job_id = $1 ORDER BY update_id DESC LIMIT $2`,
    [jobId, historyLimit],
  );
  return {
    job_id: jobId,
    current_status: job.rows[0].operations,
    update_history: history.rows.map((r) => ({
      update_id: Number(r.update_id),
      operation_type: r.operation_type,
      status: r.status,
      source_type: r.source_type,
      source_id: r.source_id === null ? null : Number(r.source_id),
      notes: r.notes,
      updated_at: r.updated_at.toISOString(),
    })),
  };
}
