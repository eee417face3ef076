// Applying "print OS" records (seed 001 §2.1, §3.3, §5.3, §8) a batch at a time inside PostgreSQL:
// each step is one set-based statement over the whole batch. The rules are those of
// core/job-status evaluatePrintRecords (the reference the property test holds this to): records
// are judged in marker order, each against the file states its predecessors left, and a job is
// printed only when every one of its files, across impositions, is printed.
import type { Pool } from 'pg';
import type { PrintStatus } from '../core/job-status';
import { withTransaction } from './db';
import {
  allSeen,
  batchResult,
  dropProcessed,
  indexNewFiles,
  lockJobs,
  recordBatch,
  resolveClaims,
  retryRaced,
  run,
  workingTables,
  writeClaims,
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
 * Loads the unprocessed "print OS" rows with markers in (floor, upper] into the batch table, in
 * marker order; returns how many and the highest marker.
 */
export async function loadPrintRows(
  client: Client,
  floor: number,
  upper: number,
): Promise<{ read: number; maxMarker: number | null; order: number[] }> {
  const result = await run<{ source_id: string; marker: string }>(
    client,
    'ff-print-load-rows',
    `INSERT INTO pg_temp.ff_print_batch (pos, source_id, marker, imposition_id, printed, effective_at)
     SELECT row_number() OVER (ORDER BY p.marker, p.id), p.id, p.marker, p.name, p.status = 'PRINTED',
            COALESCE(p.job_complete_time, p.created_at)
     FROM jobmanager."print OS" p
     WHERE p.marker > $1 AND p.marker <= $2
       AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                       WHERE r.source_type = 'print_os' AND r.source_id = p.id OFFSET 0)
     RETURNING source_id, marker`,
    [floor, upper],
  );
  const rows = result.rows.map((r) => ({ id: Number(r.source_id), marker: Number(r.marker) }));
  rows.sort((a, b) => a.marker - b.marker || a.id - b.id);
  return {
    read: rows.length,
    maxMarker: rows.length > 0 ? rows[rows.length - 1].marker : null,
    order: rows.map((r) => r.id),
  };
}

/** Loads records given as values (a repeated id keeps its first copy). */
export async function loadPrintRecords(
  client: Client,
  records: PrintOsRecordInput[],
  now: Date,
): Promise<number[]> {
  const seen = new Set<number>();
  const unique = records.filter((r) => !seen.has(r.id) && seen.add(r.id));
  await run(
    client,
    'ff-print-load-records',
    `INSERT INTO pg_temp.ff_print_batch (pos, source_id, marker, imposition_id, printed, effective_at)
     SELECT row_number() OVER (ORDER BY u.marker, u.id), u.id, u.marker, u.name, u.status = 'PRINTED', u.effective_at
     FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[])
          AS u(id, marker, name, status, effective_at)`,
    [
      unique.map((r) => r.id),
      unique.map((r) => r.marker),
      unique.map((r) => r.name),
      unique.map((r) => r.status),
      unique.map((r) => r.job_complete_time ?? now),
    ],
  );
  return unique.map((r) => r.id);
}

/** Step: the files of each record's imposition, with the jobs their ids name. */
const RECORD_FILES = `
  INSERT INTO pg_temp.ff_print_files (pos, file_id, job_id, parse_error)
  SELECT b.pos, jf.file_id, jf.job_id, jf.parse_error FROM pg_temp.ff_print_batch b
  JOIN jobmanager.job_files jf ON jf.imposition_id = b.imposition_id`;

/** Step: why a record is skipped, or the notes of an applied one (files and jobs left out). */
const JUDGE_RECORDS = `
  UPDATE pg_temp.ff_print_batch b
  SET outcome = CASE WHEN v.verdict IS NULL THEN 'applied' ELSE 'skipped' END,
      reason = v.verdict,
      notes = CASE WHEN v.verdict IS NULL THEN nullif(concat_ws('; ', v.file_notes,
                CASE WHEN cardinality(v.unknown) > 0
                     THEN 'unknown jobs skipped: ' || array_to_string(v.unknown, ', ') END), '') END,
      jobs = CASE WHEN v.verdict IS NULL THEN v.known ELSE 0 END
  FROM (
    SELECT b.pos,
      CASE
        WHEN f.pos IS NULL THEN 'unknown imposition ' || to_json(b.imposition_id)::text || ': no files in imposition_file_mapping'
        WHEN f.parsed = 0 THEN 'no parseable file id in imposition ' || b.imposition_id || ': ' || f.file_notes
        WHEN f.known = 0 THEN 'unknown job' || CASE WHEN cardinality(f.unknown) > 1 THEN 's' ELSE '' END || ' '
                              || array_to_string(f.unknown, ', ') || ': not in jobmanager.jobs'
      END AS verdict,
      f.file_notes, coalesce(f.unknown, '{}') AS unknown, coalesce(f.known, 0) AS known
    FROM pg_temp.ff_print_batch b
    LEFT JOIN (
      SELECT f.pos, count(f.job_id) AS parsed,
             string_agg('file ' || f.file_id || ' skipped: ' || coalesce(f.parse_error, 'not parsed'), '; '
                        ORDER BY f.file_id) FILTER (WHERE f.job_id IS NULL) AS file_notes,
             coalesce(array_agg(DISTINCT f.job_id ORDER BY f.job_id)
                        FILTER (WHERE f.job_id IS NOT NULL AND j.job_id IS NULL), '{}') AS unknown,
             count(DISTINCT j.job_id)::int AS known
      FROM pg_temp.ff_print_files f LEFT JOIN jobmanager.jobs j ON j.job_id = f.job_id
      GROUP BY f.pos) f ON f.pos = b.pos) v
  WHERE b.pos = v.pos`;

/**
 * Step: where in the batch each file is first printed and first aborted. Files change for every
 * record with parsed files (also one skipped for unknown jobs), as one record at a time would.
 */
const FILE_CHANGES = `
  INSERT INTO pg_temp.ff_file_change (file_id, printed_at, aborted_at)
  SELECT f.file_id, min(f.pos) FILTER (WHERE b.printed), min(f.pos) FILTER (WHERE NOT b.printed)
  FROM pg_temp.ff_print_files f JOIN pg_temp.ff_print_batch b ON b.pos = f.pos
  WHERE f.job_id IS NOT NULL GROUP BY f.file_id`;

/**
 * Step: each (applied record, known job) with the job's print verdict after the record (seed §3.3,
 * core/job-status judgeJobPrint). A file of the job is printed after record r when it was before
 * the batch or a record up to r printed it; aborted likewise.
 */
const JUDGE_JOBS = `
  WITH pairs AS MATERIALIZED (
    SELECT DISTINCT f.pos, f.job_id, j.version_tag FROM pg_temp.ff_print_files f
    JOIN pg_temp.ff_print_batch b ON b.pos = f.pos AND b.outcome = 'applied'
    JOIN jobmanager.jobs j ON j.job_id = f.job_id),
  job_files AS MATERIALIZED (
    SELECT DISTINCT jf.job_id, jf.file_id, coalesce(st.printed, false) AS printed, coalesce(st.aborted, false) AS aborted,
           fc.printed_at, fc.aborted_at
    FROM jobmanager.job_files jf
    LEFT JOIN jobmanager.print_file_states st ON st.file_id = jf.file_id
    LEFT JOIN pg_temp.ff_file_change fc ON fc.file_id = jf.file_id
    WHERE jf.job_id IN (SELECT job_id FROM pairs)),
  counts AS (
    SELECT p.pos, p.job_id, p.version_tag, count(*)::int AS total,
           count(*) FILTER (WHERE f.printed OR f.printed_at <= p.pos)::int AS printed,
           count(*) FILTER (WHERE NOT (f.printed OR coalesce(f.printed_at <= p.pos, false))
                              AND (f.aborted OR f.aborted_at <= p.pos))::int AS aborted
    FROM pairs p JOIN job_files f ON f.job_id = p.job_id
    GROUP BY p.pos, p.job_id, p.version_tag)
  INSERT INTO pg_temp.ff_print_jobs (pos, job_id, version_tag, status, print, note)
  SELECT c.pos, c.job_id, c.version_tag, v.status, v.print, v.note || coalesce('; ' || b.notes, '')
  FROM counts c JOIN pg_temp.ff_print_batch b ON b.pos = c.pos
  CROSS JOIN LATERAL (
    SELECT CASE WHEN c.total > 0 AND c.printed >= c.total THEN 'completed'
                WHEN c.printed > 0 THEN 'partial' ELSE 'aborted' END AS status,
           CASE WHEN c.total > 0 AND c.printed >= c.total THEN true
                WHEN c.printed > 0 OR (c.total > 0 AND c.aborted >= c.total) THEN false END AS print,
           CASE WHEN c.total > 0 AND c.printed >= c.total THEN 'all ' || c.total || ' files printed'
                WHEN c.printed > 0 THEN 'partially printed: ' || c.printed || ' of ' || c.total || ' files'
                                        || CASE WHEN c.aborted > 0 THEN ', ' || c.aborted || ' aborted' ELSE '' END
                WHEN c.total > 0 AND c.aborted >= c.total THEN 'all ' || c.total || ' files aborted'
                ELSE c.aborted || ' of ' || c.total || ' files aborted, none printed' END AS note) v`;

/** Step: the file states the batch leaves (printed and aborted only ever become true). */
const WRITE_FILE_STATES = `
  INSERT INTO jobmanager.print_file_states (file_id, printed, aborted, updated_at)
  SELECT file_id, printed_at IS NOT NULL, aborted_at IS NOT NULL, $1 FROM pg_temp.ff_file_change ORDER BY file_id
  ON CONFLICT (file_id) DO UPDATE
  SET printed = print_file_states.printed OR excluded.printed,
      aborted = print_file_states.aborted OR excluded.aborted,
      updated_at = excluded.updated_at
  WHERE (NOT print_file_states.printed AND excluded.printed) OR (NOT print_file_states.aborted AND excluded.aborted)`;

/** The print claims, in record order (a verdict that leaves print as it is claims nothing). */
const PRINT_CLAIMS = `
  SELECT j.pos, j.job_id, 'print'::text AS operation, j.print AS value, 'print_os'::text AS source_type,
         b.source_id, b.effective_at
  FROM pg_temp.ff_print_jobs j JOIN pg_temp.ff_print_batch b ON b.pos = j.pos
  WHERE j.print IS NOT NULL`;

/** The final note of a (record, job) status row: the verdict, and why it was not applied if it was not. */
const JOB_NOTE = `j.note || CASE WHEN c.applies = false
  THEN '; not applied: ' || c.against_type || ' record ' || coalesce(c.against_id::text, 'null') || ' is newer' ELSE '' END`;

/** Step: logs.imposition_operations of print, the last record per imposition (seed §2.1 step 5). */
const WRITE_IMPOSITION_LOGS = `
  UPDATE logs.imposition_operations t
  SET status = l.status, completed_at = $1, completed_by = 'print_os', source_id = l.source_id,
      notes = l.notes, flow_version = $2, updated_at = $1
  FROM (
    SELECT DISTINCT ON (b.imposition_id) b.imposition_id, b.source_id, b.notes,
           CASE WHEN b.printed THEN 'completed' ELSE 'aborted' END AS status
    FROM pg_temp.ff_print_batch b WHERE b.outcome = 'applied' ORDER BY b.imposition_id, b.pos DESC) l
  WHERE t.imposition_id = l.imposition_id
    AND t.operation_id = coalesce((SELECT operation_id FROM logs.operation_catalog WHERE operation_name = 'print'), 'print')`;

/**
 * Step: logs.job_operations of print, the last applied record per job; a partial print, or a
 * verdict that leaves print as it is, writes its note only (the operation is not completed).
 */
const WRITE_JOB_LOGS = `
  UPDATE logs.job_operations t
  SET status = COALESCE(l.status, t.status),
      completed_at = CASE WHEN l.status IS NULL THEN t.completed_at ELSE $1 END,
      completed_by = CASE WHEN l.status IS NULL THEN t.completed_by ELSE 'print_os' END,
      source_id = CASE WHEN l.status IS NULL THEN t.source_id ELSE l.source_id END,
      notes = l.note, flow_version = $2, updated_at = $1
  FROM (
    SELECT DISTINCT ON (j.job_id) j.job_id, j.version_tag, b.source_id, ${JOB_NOTE} AS note,
           CASE WHEN j.status = 'partial' OR j.print IS NULL THEN NULL ELSE j.status END AS status
    FROM pg_temp.ff_print_jobs j JOIN pg_temp.ff_print_batch b ON b.pos = j.pos
    LEFT JOIN pg_temp.ff_claims c ON c.job_id = j.job_id AND c.operation = 'print' AND c.pos = j.pos
    WHERE coalesce(c.applies, true) ORDER BY j.job_id, j.pos DESC) l
  WHERE t.job_id = l.job_id
    AND t.operation_id = coalesce((SELECT operation_id FROM logs.operation_catalog WHERE operation_name = 'print'), 'print')
    AND (t.version_tag IS NULL OR l.version_tag IS NULL OR t.version_tag = l.version_tag)`;

/** Step: a job_status_updates row per (record, job), applied or not (seed §5.2, §8.2). */
const WRITE_STATUS_ROWS = `
  INSERT INTO jobmanager.job_status_updates
    (job_id, operation_type, status, source_type, source_id, notes, flow_version, created_at, updated_at)
  SELECT j.job_id, 'print', j.status, 'print_os', b.source_id, ${JOB_NOTE}, $2, $1, $1
  FROM pg_temp.ff_print_jobs j JOIN pg_temp.ff_print_batch b ON b.pos = j.pos
  LEFT JOIN pg_temp.ff_claims c ON c.job_id = j.job_id AND c.operation = 'print' AND c.pos = j.pos
  ORDER BY j.pos, j.job_id
  ON CONFLICT ON CONSTRAINT job_status_updates_source_key DO NOTHING`;

/**
 * Applies the batch table's records: judges them, records them in the ledger and writes every
 * effect. The caller's transaction commits or rolls back all of it (BatchRaced: try again).
 */
export async function applyLoadedPrintRecords(
  client: Client,
  order: number[],
  ctx: ApplyContext,
): Promise<ApplyResult> {
  if (order.length === 0) return allSeen(order);
  await dropProcessed(client, 'ff_print_batch', 'print_os');
  await indexNewFiles(client, ctx.filePattern);
  await run(client, 'ff-print-files', RECORD_FILES);
  await lockJobs(client, 'ff-print-lock', 'SELECT f.job_id FROM pg_temp.ff_print_files f');
  await run(client, 'ff-print-judge-records', JUDGE_RECORDS);
  await run(client, 'ff-print-file-changes', FILE_CHANGES);
  await run(client, 'ff-print-judge-jobs', JUDGE_JOBS);
  await resolveClaims(client, 'ff-print-claims', PRINT_CLAIMS);
  await recordBatch(client, 'ff_print_batch', 'print_os', ctx);
  const params = [ctx.now, ctx.flowVersion ?? null];
  await run(client, 'ff-print-file-states', WRITE_FILE_STATES, [ctx.now]);
  await run(client, 'ff-print-imposition-logs', WRITE_IMPOSITION_LOGS, params);
  await run(client, 'ff-print-job-logs', WRITE_JOB_LOGS, params);
  await writeClaims(client, ctx);
  await run(client, 'ff-print-status-rows', WRITE_STATUS_ROWS, params);
  return batchResult(client, 'ff_print_batch', order);
}

/** Applies "print OS" records given as values, in one transaction. */
export async function applyPrintOsRecords(
  pool: Pool,
  records: PrintOsRecordInput[],
  ctx: ApplyContext,
): Promise<ApplyResult> {
  return retryRaced(async () => {
    let created = () => undefined as void;
    const result = await withTransaction(pool, async (client) => {
      created = await workingTables(client);
      const order = await loadPrintRecords(client, records, ctx.now);
      return applyLoadedPrintRecords(client, order, ctx);
    });
    created();
    return result;
  });
}

/** One "print OS" record in its own transaction. */
export async function applyPrintOsRecord(
  pool: Pool,
  record: PrintOsRecordInput,
  ctx: ApplyContext,
): Promise<ApplyResult> {
  return applyPrintOsRecords(pool, [record], ctx);
}
