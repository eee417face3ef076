// All SQL of job-status processing (seed 001): polling "print OS" and scanned_codes by marker,
// applying records set-based (one statement per step for a whole batch), scan ingest with
// dedupe, gap reports and the job-status read. The rules themselves are in core/job-status.
import type { Pool, PoolClient } from 'pg';
import {
  claimWins,
  doubleSendWindowStart,
  evaluatePrintRecords,
  findGaps,
  jobIdOfFile,
  lookBackFrom,
  planScan,
  scanTarget,
  type FileState,
  type IncomingScan,
  type MappedFile,
  type MarkerGap,
  type OperationClaim,
  type PrintRecord,
  type PrintStatus,
  type ScanPlan,
  type ScanTarget,
  type SourceType,
} from '../core/job-status';
import type { ScanPatterns } from '../core/scan-code';
import { withTransaction } from './db';
import { groupCommitEnabled, scanBatcherFor } from './scan-batcher';

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

export interface ApplyContext {
  /** The clock's time: completed_at and updated_at of every row written. */
  now: Date;
  flowVersion?: string;
  /** File-id pattern (core/scan-code DEFAULT_SCAN_PATTERNS.file when absent). */
  filePattern?: string;
  /** Patterns for classifying scanned codes read back from scanned_codes. */
  scanPatterns?: ScanPatterns;
}

export interface BatchOptions extends ApplyContext {
  batchSize: number;
  /** How far below the stored marker to re-read for rows that committed late (in marker units). */
  lookBack: number;
  /** Read from marker 0 (seed §7.1 force); records already processed still take no second effect. */
  force?: boolean;
  /** Wait up to this long for another worker's lock instead of giving up at once. */
  waitMs?: number;
}

export interface ApplyResult {
  /** Source records claimed by this call (applied + skipped); records seen before are not counted. */
  processed: number;
  applied: number;
  skipped: number;
  /** Distinct jobs whose status rows were written. */
  jobs_updated: number;
  skips: Array<{ source_id: number; reason: string }>;
}

export interface BatchResult extends ApplyResult {
  source: SourceType;
  /** false when another worker holds the source; nothing was read or written. */
  locked: boolean;
  last_marker: number;
  /** The batch was full: more rows may be waiting. */
  more: boolean;
}

const EMPTY: ApplyResult = { processed: 0, applied: 0, skipped: 0, jobs_updated: 0, skips: [] };

type Client = Pick<PoolClient, 'query'>;

// ---------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------

interface PrintRow {
  id: string;
  marker: string;
  name: string;
  status: PrintStatus;
  effective_at: Date;
}

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

// A batch is every unprocessed row above the look-back floor up to the marker of the `limit`-th
// one, so rows that share that marker stay together ("print OS".marker is not unique; a batch must
// not split one). Two statements: with the upper marker known, the planner walks the marker index
// instead of guessing a range and scanning the backlog.
const PRINT_OS_BATCH_END = `
  SELECT max(marker) AS upper FROM (
    SELECT p.marker FROM jobmanager."print OS" p
    WHERE p.marker > $1
      AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                      WHERE r.source_type = 'print_os' AND r.source_id = p.id)
    ORDER BY p.marker LIMIT $2) AS candidates`;

const READ_PRINT_OS = `
  SELECT p.id, p.marker, p.name, p.status, COALESCE(p.job_complete_time, p.created_at) AS effective_at
  FROM jobmanager."print OS" p
  WHERE p.marker > $1 AND p.marker <= $2
    AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                    WHERE r.source_type = 'print_os' AND r.source_id = p.id)
  ORDER BY p.marker, p.id`;

const READ_SCANS = `
  SELECT s.scan_id, s.code_text, s.operations, s.scanned_at
  FROM jobmanager.scanned_codes s
  WHERE s.scan_id > $1
    AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                    WHERE r.source_type = 'scanner' AND r.source_id = s.scan_id)
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
  return withTransaction(pool, async (client) => {
    if (!(await lockSource(client, source, options.waitMs))) {
      return { ...EMPTY, source, locked: false, last_marker: -1, more: false };
    }
    const last = await readMarker(client, source);
    const floor = options.force ? 0 : lookBackFrom(last, options.lookBack);
    const limit = Math.max(1, Math.floor(options.batchSize));
    let result: ApplyResult;
    let batchMax: number;
    let read: number;
    if (source === 'print_os') {
      const upper = (await client.query<{ upper: string | null }>(PRINT_OS_BATCH_END, [floor, limit])).rows[0]
        .upper;
      const rows = upper === null ? [] : (await client.query<PrintRow>(READ_PRINT_OS, [floor, upper])).rows;
      read = rows.length;
      batchMax = rows.length > 0 ? Number(rows[rows.length - 1].marker) : last;
      result = await applyPrintRows(client, rows, options);
    } else {
      const rows = (await client.query<ScanRow>(READ_SCANS, [floor, limit])).rows;
      read = rows.length;
      batchMax = rows.length > 0 ? Number(rows[rows.length - 1].scan_id) : last;
      result = await applyScanRows(client, rows, options);
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

/** Batches until the source is caught up (or `maxBatches` ran); used by the HTTP triggers. */
export async function catchUp(
  pool: Pool,
  source: SourceType,
  options: BatchOptions & { maxBatches?: number },
): Promise<BatchResult> {
  const total: BatchResult = { ...EMPTY, skips: [], source, locked: true, last_marker: 0, more: false };
  for (let i = 0; i < (options.maxBatches ?? 1000); i += 1) {
    const batch = await processBatch(pool, source, options);
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
// Applying records
// ---------------------------------------------------------------------------------------

/** Claims records for this transaction; a record another transaction claimed is left out. */
async function claim(
  client: Client,
  source: SourceType,
  ids: number[],
  markers: number[],
  ctx: ApplyContext,
): Promise<Set<number>> {
  if (ids.length === 0) return new Set();
  const result = await client.query<{ source_id: string }>(
    `INSERT INTO jobmanager.processed_source_records (source_type, source_id, marker, outcome, flow_version, processed_at)
     SELECT $1, u.id, u.marker, 'applied', $4, $5 FROM unnest($2::bigint[], $3::bigint[]) AS u(id, marker)
     ON CONFLICT (source_type, source_id) DO NOTHING
     RETURNING source_id`,
    [source, ids, markers, ctx.flowVersion ?? null, ctx.now],
  );
  return new Set(result.rows.map((r) => Number(r.source_id)));
}

async function finishClaims(
  client: Client,
  source: SourceType,
  results: Array<{ source_id: number; outcome: 'applied' | 'skipped'; reason: string | null; jobs: number }>,
): Promise<void> {
  if (results.length === 0) return;
  await client.query(
    `UPDATE jobmanager.processed_source_records r
     SET outcome = u.outcome, reason = u.reason, jobs_updated = u.jobs
     FROM unnest($2::bigint[], $3::text[], $4::text[], $5::int[]) AS u(id, outcome, reason, jobs)
     WHERE r.source_type = $1 AND r.source_id = u.id AND r.source_id = ANY($2::bigint[])`,
    [
      source,
      results.map((r) => r.source_id),
      results.map((r) => r.outcome),
      results.map((r) => r.reason),
      results.map((r) => r.jobs),
    ],
  );
}

/** Parses the job id of every mapping row not parsed yet (migration 010's trigger queues them). */
async function indexNewFiles(client: Client, filePattern: string | undefined): Promise<void> {
  const pending = await client.query<{ imposition_id: string; file_id: string }>(
    `SELECT imposition_id, file_id FROM jobmanager.job_files
     WHERE job_id IS NULL AND parse_error IS NULL ORDER BY imposition_id, file_id FOR UPDATE SKIP LOCKED`,
  );
  if (pending.rows.length === 0) return;
  const jobIds: Array<string | null> = [];
  const errors: Array<string | null> = [];
  for (const row of pending.rows) {
    const parsed = jobIdOfFile(row.file_id, filePattern);
    jobIds.push(parsed.ok ? parsed.job_id : null);
    errors.push(parsed.ok ? null : parsed.reason);
  }
  await client.query(
    `UPDATE jobmanager.job_files j SET job_id = u.job_id, parse_error = u.parse_error
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(imposition_id, file_id, job_id, parse_error)
     WHERE j.imposition_id = u.imposition_id AND j.file_id = u.file_id AND j.imposition_id = ANY($1::text[])`,
    [pending.rows.map((r) => r.imposition_id), pending.rows.map((r) => r.file_id), jobIds, errors],
  );
}

async function lockKnownJobs(client: Client, jobIds: string[]): Promise<Map<string, string | null>> {
  if (jobIds.length === 0) return new Map();
  // In job order, so two transactions touching the same jobs queue instead of deadlocking.
  const result = await client.query<{ job_id: string; version_tag: string | null }>(
    `SELECT job_id, version_tag FROM jobmanager.jobs WHERE job_id = ANY($1::text[]) ORDER BY job_id FOR UPDATE`,
    [jobIds],
  );
  return new Map(result.rows.map((r) => [r.job_id, r.version_tag]));
}

async function operationCatalog(client: Client): Promise<Map<string, string>> {
  const result = await client.query<{ operation_name: string; operation_id: string }>(
    'SELECT operation_name, operation_id FROM logs.operation_catalog',
  );
  return new Map(result.rows.map((r) => [r.operation_name, r.operation_id]));
}

async function currentClaims(
  client: Client,
  pairs: Array<[string, string]>,
): Promise<Map<string, OperationClaim>> {
  if (pairs.length === 0) return new Map();
  const result = await client.query<{
    job_id: string;
    operation_name: string;
    value: boolean;
    source_type: OperationClaim['source_type'];
    source_id: string | null;
    effective_at: Date;
  }>(
    `SELECT c.job_id, c.operation_name, c.value, c.source_type, c.source_id, c.effective_at
     FROM jobmanager.job_operation_claims c
     JOIN unnest($1::text[], $2::text[]) AS u(job_id, operation_name) USING (job_id, operation_name)
     WHERE c.job_id = ANY($1::text[])`,
    [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
  );
  return new Map(
    result.rows.map((r) => [
      claimKey(r.job_id, r.operation_name),
      {
        value: r.value,
        source_type: r.source_type,
        source_id: r.source_id === null ? null : Number(r.source_id),
        effective_at: r.effective_at,
      },
    ]),
  );
}

function claimKey(jobId: string, operation: string): string {
  return `${jobId}\u0000${operation}`;
}

/** Writes the winning claims and the jobs.operations flags they set, one statement each. */
async function writeClaims(
  client: Client,
  won: Map<string, { job_id: string; operation: string; claim: OperationClaim }>,
  ctx: ApplyContext,
): Promise<void> {
  if (won.size === 0) return;
  const rows = [...won.values()].sort((a, b) => (a.job_id < b.job_id ? -1 : a.job_id > b.job_id ? 1 : 0));
  await client.query(
    `INSERT INTO jobmanager.job_operation_claims (job_id, operation_name, value, source_type, source_id, effective_at, updated_at)
     SELECT * , $7::timestamptz FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[], $5::bigint[], $6::timestamptz[])
     ON CONFLICT (job_id, operation_name) DO UPDATE
     SET value = excluded.value, source_type = excluded.source_type, source_id = excluded.source_id,
         effective_at = excluded.effective_at, updated_at = excluded.updated_at`,
    [
      rows.map((r) => r.job_id),
      rows.map((r) => r.operation),
      rows.map((r) => r.claim.value),
      rows.map((r) => r.claim.source_type),
      rows.map((r) => r.claim.source_id),
      rows.map((r) => r.claim.effective_at),
      ctx.now,
    ],
  );
  const patches = new Map<string, Record<string, boolean>>();
  for (const r of rows)
    patches.set(r.job_id, { ...(patches.get(r.job_id) ?? {}), [r.operation]: r.claim.value });
  await client.query(
    `UPDATE jobmanager.jobs j SET operations = j.operations || u.patch::jsonb, updated_at = $3
     FROM unnest($1::text[], $2::text[]) AS u(job_id, patch) WHERE j.job_id = u.job_id AND j.job_id = ANY($1::text[])`,
    [[...patches.keys()], [...patches.values()].map((p) => JSON.stringify(p)), ctx.now],
  );
}

interface StatusRow {
  job_id: string;
  operation: string;
  status: 'completed' | 'partial' | 'aborted';
  source_id: number;
  notes: string | null;
}

async function writeStatusUpdates(
  client: Client,
  source: SourceType,
  rows: StatusRow[],
  ctx: ApplyContext,
): Promise<void> {
  if (rows.length === 0) return;
  await client.query(
    `INSERT INTO jobmanager.job_status_updates
       (job_id, operation_type, status, source_type, source_id, notes, flow_version, created_at, updated_at)
     SELECT u.job_id, u.operation, u.status, $1, u.source_id, u.notes, $7, $8, $8
     FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) AS u(job_id, operation, status, source_id, notes)
     ON CONFLICT ON CONSTRAINT job_status_updates_source_key DO NOTHING`,
    [
      source,
      rows.map((r) => r.job_id),
      rows.map((r) => r.operation),
      rows.map((r) => r.status),
      rows.map((r) => r.source_id),
      rows.map((r) => r.notes),
      ctx.flowVersion ?? null,
      ctx.now,
    ],
  );
}

interface OperationLogRow {
  key: string;
  operation_id: string;
  version_tag: string | null;
  /** null = notes only (a partly printed job is not completed). */
  status: 'completed' | 'aborted' | null;
  source_id: number;
  notes: string | null;
}

/** Seed §2.1 step 5: the tracking columns of logs.job_operations (key = job id) or imposition_operations. */
async function writeOperationLogs(
  client: Client,
  table: 'job' | 'imposition',
  source: SourceType,
  rows: OperationLogRow[],
  ctx: ApplyContext,
): Promise<void> {
  if (rows.length === 0) return;
  const [relation, match] =
    table === 'job'
      ? [
          'logs.job_operations',
          `t.job_id = u.key AND t.job_id = ANY($2::text[]) AND t.operation_id = u.operation_id
           AND (t.version_tag IS NULL OR u.version_tag IS NULL OR t.version_tag = u.version_tag)`,
        ]
      : [
          'logs.imposition_operations',
          't.imposition_id = u.key AND t.imposition_id = ANY($2::text[]) AND t.operation_id = u.operation_id',
        ];
  await client.query(
    `UPDATE ${relation} t
     SET status = COALESCE(u.status, t.status),
         completed_at = CASE WHEN u.status IS NULL THEN t.completed_at ELSE $8 END,
         completed_by = CASE WHEN u.status IS NULL THEN t.completed_by ELSE $1 END,
         source_id = CASE WHEN u.status IS NULL THEN t.source_id ELSE u.source_id END,
         notes = u.notes, flow_version = $9, updated_at = $8
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[])
          AS u(key, operation_id, version_tag, status, source_id, notes)
     WHERE ${match}`,
    [
      source,
      rows.map((r) => r.key),
      rows.map((r) => r.operation_id),
      rows.map((r) => r.version_tag),
      rows.map((r) => r.status),
      rows.map((r) => r.source_id),
      rows.map((r) => r.notes),
      ctx.now,
      ctx.flowVersion ?? null,
    ],
  );
}

// Every UPDATE ... FROM unnest(...) also says `key = ANY($n)`: the planner cannot see into
// unnest and would otherwise hash the whole target table on every batch, a cost that grows with
// the tables (the processed-record ledger by one row per record); with ANY it probes the index.

/** Keeps the last row per key (rows are in record order, so the last is the newest). */
function lastPerKey<T>(rows: T[], key: (row: T) => string): T[] {
  const byKey = new Map<string, T>();
  for (const row of rows) {
    const k = key(row);
    byKey.delete(k);
    byKey.set(k, row);
  }
  return [...byKey.values()];
}

async function applyPrintRows(client: Client, rows: PrintRow[], ctx: ApplyContext): Promise<ApplyResult> {
  if (rows.length === 0) return { ...EMPTY, skips: [] };
  const claimed = await claim(
    client,
    'print_os',
    rows.map((r) => Number(r.id)),
    rows.map((r) => Number(r.marker)),
    ctx,
  );
  const mine = rows.filter((r) => claimed.has(Number(r.id)));
  if (mine.length === 0) return { ...EMPTY, skips: [] };
  await indexNewFiles(client, ctx.filePattern);

  const impositionIds = [...new Set(mine.map((r) => r.name))];
  const mapped = await client.query<{
    imposition_id: string;
    file_id: string;
    job_id: string | null;
    parse_error: string | null;
  }>(
    `SELECT imposition_id, file_id, job_id, parse_error FROM jobmanager.job_files
     WHERE imposition_id = ANY($1::text[]) ORDER BY imposition_id, file_id`,
    [impositionIds],
  );
  const impositionFiles = new Map<string, MappedFile[]>();
  for (const row of mapped.rows) {
    const file: MappedFile = row.job_id
      ? { file_id: row.file_id, job_id: row.job_id }
      : { file_id: row.file_id, reason: row.parse_error ?? 'not parsed' };
    const list = impositionFiles.get(row.imposition_id) ?? [];
    list.push(file);
    impositionFiles.set(row.imposition_id, list);
  }
  const jobIds = [...new Set(mapped.rows.flatMap((r) => (r.job_id ? [r.job_id] : [])))].sort();
  const knownJobs = await lockKnownJobs(client, jobIds);
  const files = await client.query<{
    job_id: string;
    file_id: string;
    printed: boolean | null;
    aborted: boolean | null;
  }>(
    `SELECT jf.job_id, jf.file_id, s.printed, s.aborted
     FROM jobmanager.job_files jf LEFT JOIN jobmanager.print_file_states s ON s.file_id = jf.file_id
     WHERE jf.job_id = ANY($1::text[])`,
    [[...knownJobs.keys()]],
  );
  const jobFiles = new Map<string, string[]>();
  const fileStates = new Map<string, FileState>();
  for (const row of files.rows) {
    const list = jobFiles.get(row.job_id) ?? [];
    list.push(row.file_id);
    jobFiles.set(row.job_id, list);
    if (row.printed !== null)
      fileStates.set(row.file_id, { printed: row.printed, aborted: row.aborted ?? false });
  }

  const records: PrintRecord[] = mine.map((r) => ({
    source_id: Number(r.id),
    marker: Number(r.marker),
    imposition_id: r.name,
    status: r.status,
  }));
  const evaluation = evaluatePrintRecords(records, {
    impositionFiles,
    jobFiles,
    fileStates,
    knownJobs: new Set(knownJobs.keys()),
  });

  if (evaluation.changedFiles.size > 0) {
    const changed = [...evaluation.changedFiles.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    await client.query(
      `INSERT INTO jobmanager.print_file_states (file_id, printed, aborted, updated_at)
       SELECT u.file_id, u.printed, u.aborted, $4 FROM unnest($1::text[], $2::boolean[], $3::boolean[]) AS u(file_id, printed, aborted)
       ON CONFLICT (file_id) DO UPDATE
       SET printed = print_file_states.printed OR excluded.printed,
           aborted = print_file_states.aborted OR excluded.aborted, updated_at = excluded.updated_at`,
      [changed.map((c) => c[0]), changed.map((c) => c[1].printed), changed.map((c) => c[1].aborted), ctx.now],
    );
  }

  const catalog = await operationCatalog(client);
  const printOp = catalog.get('print') ?? 'print';
  const effectiveAt = new Map(mine.map((r) => [Number(r.id), r.effective_at]));
  const claims = await currentClaims(
    client,
    [...knownJobs.keys()].map((id) => [id, 'print']),
  );
  const won = new Map<string, { job_id: string; operation: string; claim: OperationClaim }>();
  const statusRows: StatusRow[] = [];
  const jobLogs: OperationLogRow[] = [];
  const impositionLogs: OperationLogRow[] = [];
  const finished: Array<{
    source_id: number;
    outcome: 'applied' | 'skipped';
    reason: string | null;
    jobs: number;
  }> = [];
  const jobsTouched = new Set<string>();
  const skips: ApplyResult['skips'] = [];

  for (const outcome of evaluation.outcomes) {
    if (outcome.kind === 'skipped') {
      finished.push({ source_id: outcome.source_id, outcome: 'skipped', reason: outcome.reason, jobs: 0 });
      skips.push({ source_id: outcome.source_id, reason: outcome.reason });
      continue;
    }
    const extra = outcome.notes.length > 0 ? `; ${outcome.notes.join('; ')}` : '';
    impositionLogs.push({
      key: outcome.imposition_id,
      operation_id: printOp,
      version_tag: null,
      status: outcome.imposition_status,
      source_id: outcome.source_id,
      notes: outcome.notes.length > 0 ? outcome.notes.join('; ') : null,
    });
    for (const job of outcome.jobs) {
      jobsTouched.add(job.job_id);
      let note = job.note + extra;
      let applies = true;
      if (job.print !== undefined) {
        const key = claimKey(job.job_id, 'print');
        const incoming: OperationClaim = {
          value: job.print,
          source_type: 'print_os',
          source_id: outcome.source_id,
          effective_at: effectiveAt.get(outcome.source_id) ?? ctx.now,
        };
        const current = won.get(key)?.claim ?? claims.get(key);
        applies = claimWins('print', current, incoming);
        if (applies) won.set(key, { job_id: job.job_id, operation: 'print', claim: incoming });
        else note += `; not applied: ${current?.source_type} record ${current?.source_id} is newer`;
      }
      statusRows.push({
        job_id: job.job_id,
        operation: 'print',
        status: job.status,
        source_id: outcome.source_id,
        notes: note,
      });
      if (applies) {
        jobLogs.push({
          key: job.job_id,
          operation_id: printOp,
          version_tag: knownJobs.get(job.job_id) ?? null,
          status: job.status === 'partial' || job.print === undefined ? null : job.status,
          source_id: outcome.source_id,
          notes: note,
        });
      }
    }
    finished.push({
      source_id: outcome.source_id,
      outcome: 'applied',
      reason: null,
      jobs: outcome.jobs.length,
    });
  }

  await writeOperationLogs(
    client,
    'imposition',
    'print_os',
    lastPerKey(impositionLogs, (r) => r.key),
    ctx,
  );
  await writeOperationLogs(
    client,
    'job',
    'print_os',
    lastPerKey(jobLogs, (r) => r.key),
    ctx,
  );
  await writeClaims(client, won, ctx);
  await writeStatusUpdates(client, 'print_os', statusRows, ctx);
  await finishClaims(client, 'print_os', finished);
  const skipped = finished.filter((f) => f.outcome === 'skipped').length;
  return {
    processed: finished.length,
    applied: finished.length - skipped,
    skipped,
    jobs_updated: jobsTouched.size,
    skips,
  };
}

interface ScanInput extends ScanRow {
  /** Already classified (by scan-parser); otherwise code_text is classified here. */
  target?: ScanTarget;
}

async function applyScanRows(client: Client, rows: ScanInput[], ctx: ApplyContext): Promise<ApplyResult> {
  if (rows.length === 0) return { ...EMPTY, skips: [] };
  const ids = rows.map((r) => Number(r.scan_id));
  const claimed = await claim(client, 'scanner', ids, ids, ctx);
  const mine = rows.filter((r) => claimed.has(Number(r.scan_id)));
  if (mine.length === 0) return { ...EMPTY, skips: [] };
  await indexNewFiles(client, ctx.filePattern);

  const targets = mine.map((r) => r.target ?? scanTarget(r.code_text, ctx.scanPatterns));
  const jobCandidates = new Set<string>();
  const runlistCandidates = new Set<string>();
  for (const t of targets) {
    if (t.kind === 'job') jobCandidates.add(t.job_id);
    if (t.kind === 'runlist') {
      runlistCandidates.add(t.runlist_id);
      if (t.job) jobCandidates.add(t.job.job_id);
    }
  }
  // findRunlistByScan for every job code at once: job → its files' impositions → their runlists.
  const jobRunlistRows = await client.query<{ job_id: string; runlist_id: string }>(
    `SELECT DISTINCT jf.job_id, p.runlist_id
     FROM jobmanager.job_files jf JOIN logs.production_planner_paths p ON p.imposition_id = jf.imposition_id
     WHERE jf.job_id = ANY($1::text[])`,
    [[...jobCandidates]],
  );
  const jobRunlists = new Map<string, string[]>();
  for (const r of jobRunlistRows.rows) {
    jobRunlists.set(r.job_id, [...(jobRunlists.get(r.job_id) ?? []), r.runlist_id]);
    runlistCandidates.add(r.runlist_id);
  }
  const runlistRows = await client.query<{
    runlist_id: string;
    imposition_id: string;
    job_id: string | null;
  }>(
    `SELECT DISTINCT p.runlist_id, p.imposition_id, jf.job_id
     FROM logs.production_planner_paths p
     LEFT JOIN jobmanager.job_files jf ON jf.imposition_id = p.imposition_id AND jf.job_id IS NOT NULL
     WHERE p.runlist_id = ANY($1::text[])`,
    [[...runlistCandidates]],
  );
  const runlistImpositions = new Map<string, string[]>();
  const runlistJobs = new Map<string, string[]>();
  for (const r of runlistRows.rows) {
    const imps = runlistImpositions.get(r.runlist_id) ?? [];
    if (!imps.includes(r.imposition_id)) imps.push(r.imposition_id);
    runlistImpositions.set(r.runlist_id, imps);
    const jobs = runlistJobs.get(r.runlist_id) ?? [];
    if (r.job_id && !jobs.includes(r.job_id)) jobs.push(r.job_id);
    runlistJobs.set(r.runlist_id, jobs);
  }
  const allJobs = new Set([...jobCandidates, ...[...runlistJobs.values()].flat()]);
  const knownJobs = await lockKnownJobs(client, [...allJobs].sort());
  const catalog = await operationCatalog(client);
  const facts = { runlistImpositions, runlistJobs, jobRunlists, knownJobs, catalog };
  const plans: ScanPlan[] = mine.map((r, i) =>
    planScan(
      {
        source_id: Number(r.scan_id),
        code_text: r.code_text,
        operations: r.operations,
        scanned_at: r.scanned_at,
      },
      targets[i],
      facts,
    ),
  );

  const pairs: Array<[string, string]> = [];
  for (const plan of plans) {
    if (plan.kind === 'applied')
      for (const job of plan.jobs) for (const op of plan.operations) pairs.push([job.job_id, op.name]);
  }
  const claims = await currentClaims(client, pairs);
  const won = new Map<string, { job_id: string; operation: string; claim: OperationClaim }>();
  const statusRows: StatusRow[] = [];
  const jobLogs: OperationLogRow[] = [];
  const impositionLogs: OperationLogRow[] = [];
  const finished: Array<{
    source_id: number;
    outcome: 'applied' | 'skipped';
    reason: string | null;
    jobs: number;
  }> = [];
  const jobsTouched = new Set<string>();
  const skips: ApplyResult['skips'] = [];

  for (const plan of plans) {
    if (plan.kind === 'skipped') {
      finished.push({ source_id: plan.source_id, outcome: 'skipped', reason: plan.reason, jobs: 0 });
      skips.push({ source_id: plan.source_id, reason: plan.reason });
      continue;
    }
    const via = plan.via === 'runlist' ? `scanned via runlist ${plan.runlist_ids.join(', ')}` : 'scanned job';
    const baseNote = [via, ...plan.notes].join('; ');
    for (const op of plan.operations) {
      for (const imposition of plan.impositions) {
        impositionLogs.push({
          key: imposition,
          operation_id: op.operation_id,
          version_tag: null,
          status: 'completed',
          source_id: plan.source_id,
          notes: baseNote,
        });
      }
      for (const job of plan.jobs) {
        jobsTouched.add(job.job_id);
        const key = claimKey(job.job_id, op.name);
        const incoming: OperationClaim = {
          value: true,
          source_type: 'scanner',
          source_id: plan.source_id,
          effective_at: plan.effective_at,
        };
        const current = won.get(key)?.claim ?? claims.get(key);
        const applies = claimWins(op.name, current, incoming);
        let note = baseNote;
        if (applies) {
          won.set(key, { job_id: job.job_id, operation: op.name, claim: incoming });
          jobLogs.push({
            key: job.job_id,
            operation_id: op.operation_id,
            version_tag: job.version_tag,
            status: 'completed',
            source_id: plan.source_id,
            notes: baseNote,
          });
        } else {
          note += `; not applied: ${current?.source_type} has precedence for ${op.name}`;
        }
        statusRows.push({
          job_id: job.job_id,
          operation: op.name,
          status: 'completed',
          source_id: plan.source_id,
          notes: note,
        });
      }
    }
    finished.push({ source_id: plan.source_id, outcome: 'applied', reason: null, jobs: plan.jobs.length });
  }

  await writeOperationLogs(
    client,
    'imposition',
    'scanner',
    lastPerKey(impositionLogs, (r) => `${r.key}\u0000${r.operation_id}`),
    ctx,
  );
  await writeOperationLogs(
    client,
    'job',
    'scanner',
    lastPerKey(jobLogs, (r) => `${r.key}\u0000${r.operation_id}`),
    ctx,
  );
  await writeClaims(client, won, ctx);
  await writeStatusUpdates(client, 'scanner', statusRows, ctx);
  await finishClaims(client, 'scanner', finished);
  const skipped = finished.filter((f) => f.outcome === 'skipped').length;
  return {
    processed: finished.length,
    applied: finished.length - skipped,
    skipped,
    jobs_updated: jobsTouched.size,
    skips,
  };
}

/** A print-OS record given to job-mapper (e.g. from another flow): applied in its own transaction. */
export interface PrintOsRecordInput {
  id: number;
  marker: number;
  name: string;
  status: PrintStatus;
  job_complete_time?: Date | null;
}

export async function applyPrintOsRecord(
  pool: Pool,
  record: PrintOsRecordInput,
  ctx: ApplyContext,
): Promise<ApplyResult> {
  return withTransaction(pool, (client) =>
    applyPrintRows(
      client,
      [
        {
          id: String(record.id),
          marker: String(record.marker),
          name: record.name,
          status: record.status,
          effective_at: record.job_complete_time ?? ctx.now,
        },
      ],
      ctx,
    ),
  );
}

/** A stored scan (scanned_codes row) given to job-mapper, optionally already classified. */
export interface ScanRecordInput {
  scan_id: number;
  code_text: string;
  operations: unknown;
  scanned_at: Date;
  target?: ScanTarget;
}

export async function applyScanRecord(
  pool: Pool,
  scan: ScanRecordInput,
  ctx: ApplyContext,
): Promise<ApplyResult> {
  return withTransaction(pool, (client) =>
    applyScanRows(client, [{ ...scan, scan_id: String(scan.scan_id) }], ctx),
  );
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
      `DELETE FROM jobmanager.processed_source_records WHERE source_type = $1 AND outcome = 'skipped' AND marker >= $2`,
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
// Job status read (seed §7.3)
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

// ---------------------------------------------------------------------------------------
// Scan ingest
// ---------------------------------------------------------------------------------------

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

/**
 * Stores a scan once. With a msg_id the unique (machine_id, msg_id) index decides, and the scan
 * goes through the pool's ScanBatcher (store/scan-batcher.ts): group commit, one transaction for
 * every scan that arrived while the previous flush was in flight; the promise settles after that
 * transaction as before. Without one, the same code from the same machine received within
 * `windowMs` is a double-send. That check takes a per-machine transaction lock, so two copies
 * arriving together cannot both pass it; such a scan has a transaction of its own.
 */
export async function insertScan(
  pool: Pool,
  machineId: string,
  scan: IncomingScan,
  options: { now: Date; windowMs: number; metadata?: Record<string, unknown> },
): Promise<InsertScanResult> {
  if (scan.msg_id && groupCommitEnabled()) return scanBatcherFor(pool).insert(machineId, scan, options);
  return withTransaction(pool, async (client) => {
    if (!scan.msg_id) {
      await client.query(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, [LOCK_CLASS + 1, machineId]);
      const previous = await client.query(
        `SELECT 1 FROM jobmanager.scanned_codes
         WHERE machine_id = $1 AND code_text = $2 AND msg_id IS NULL AND received_at > $3 AND received_at <= $4 LIMIT 1`,
        [machineId, scan.code_text, doubleSendWindowStart(options.now, options.windowMs), options.now],
      );
      if (previous.rows.length > 0) return { stored: false, duplicate: 'double_send' };
    }
    const inserted = await client.query<{ scan_id: string; scanned_at: Date }>(
      `INSERT INTO jobmanager.scanned_codes (code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8)
       ON CONFLICT (machine_id, msg_id) WHERE msg_id IS NOT NULL DO NOTHING
       RETURNING scan_id, scanned_at`,
      [
        scan.code_text,
        scan.scanned_at ?? options.now,
        machineId,
        scan.user_id ?? null,
        JSON.stringify(scan.operations),
        options.metadata ? JSON.stringify(options.metadata) : null,
        scan.msg_id ?? null,
        options.now,
      ],
    );
    if (inserted.rows.length === 0) return { stored: false, duplicate: 'msg_id' };
    return {
      stored: true,
      scan: {
        scan_id: Number(inserted.rows[0].scan_id),
        machine_id: machineId,
        code_text: scan.code_text,
        operations: scan.operations,
        scanned_at: inserted.rows[0].scanned_at,
        user_id: scan.user_id ?? null,
        msg_id: scan.msg_id ?? null,
      },
    };
  });
}

/** Keeps a scan that can never be stored, with the reason (it is acknowledged all the same). */
export async function rejectScan(
  pool: Pool,
  machineId: string,
  payload: string,
  reason: string,
  now: Date,
): Promise<number> {
  const result = await pool.query<{ id: string }>(
    `INSERT INTO jobmanager.rejected_scans (machine_id, payload, reason, received_at) VALUES ($1, $2, $3, $4) RETURNING id`,
    [machineId, payload.slice(0, 4096), reason, now],
  );
  return Number(result.rows[0].id);
}
