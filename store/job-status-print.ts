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
  claimBatch,
  finishBatch,
  indexNewFiles,
  lockJobs,
  resolveClaims,
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
  const result = await client.query<{ source_id: string; marker: string }>(
    `INSERT INTO pg_temp.ff_print_batch (pos, source_id, marker, imposition_id, printed, effective_at)
     SELECT row_number() OVER (ORDER BY p.marker, p.id), p.id, p.marker, p.name, p.status = 'PRINTED',
            COALESCE(p.job_complete_time, p.created_at)
     FROM jobmanager."print OS" p
     WHERE p.marker > $1 AND p.marker <= $2
       AND NOT EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                       WHERE r.source_type = 'print_os' AND r.source_id = p.id)
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
  await client.query(
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

/** The parsed files of each record's imposition (a record's files, the jobs they name). */
const RECORD_FILES = `
  SELECT b.pos, jf.file_id, jf.job_id FROM pg_temp.ff_print_batch b
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
    SELECT f.pos,
      CASE
        WHEN f.files = 0 THEN 'unknown imposition ' || to_json(f.imposition_id)::text || ': no files in imposition_file_mapping'
        WHEN f.parsed = 0 THEN 'no parseable file id in imposition ' || f.imposition_id || ': ' || f.file_notes
        WHEN f.known = 0 THEN 'unknown job' || CASE WHEN cardinality(f.unknown) > 1 THEN 's' ELSE '' END || ' '
                              || array_to_string(f.unknown, ', ') || ': not in jobmanager.jobs'
      END AS verdict,
      f.file_notes, f.unknown, f.known
    FROM (
      SELECT b.pos, b.imposition_id, count(jf.file_id) AS files, count(jf.job_id) AS parsed,
             string_agg('file ' || jf.file_id || ' skipped: ' || coalesce(jf.parse_error, 'not parsed'), '; '
                        ORDER BY jf.file_id) FILTER (WHERE jf.file_id IS NOT NULL AND jf.job_id IS NULL) AS file_notes,
             coalesce(array_agg(DISTINCT jf.job_id ORDER BY jf.job_id)
                        FILTER (WHERE jf.job_id IS NOT NULL AND j.job_id IS NULL), '{}') AS unknown,
             count(DISTINCT j.job_id)::int AS known
      FROM pg_temp.ff_print_batch b
      LEFT JOIN jobmanager.job_files jf ON jf.imposition_id = b.imposition_id
      LEFT JOIN jobmanager.jobs j ON j.job_id = jf.job_id
      GROUP BY b.pos, b.imposition_id) f) v
  WHERE b.pos = v.pos`;

/**
 * Step: each (applied record, known job) with the job's print verdict after the record (seed §3.3,
 * core/job-status judgeJobPrint). A file's state after record r: printed when it was before the
 * batch or some record up to r printed it; aborted likewise. Files change for every record with
 * parsed files (also one skipped for unknown jobs), as one record at a time would.
 */
const JUDGE_JOBS = `
  WITH touched AS (${RECORD_FILES} WHERE jf.job_id IS NOT NULL),
  first_change AS (
    SELECT t.file_id, min(t.pos) FILTER (WHERE b.printed) AS printed_at, min(t.pos) FILTER (WHERE NOT b.printed) AS aborted_at
    FROM touched t JOIN pg_temp.ff_print_batch b ON b.pos = t.pos GROUP BY t.file_id),
  pairs AS (
    SELECT DISTINCT t.pos, t.job_id, j.version_tag FROM touched t
    JOIN pg_temp.ff_print_batch b ON b.pos = t.pos AND b.outcome = 'applied'
    JOIN jobmanager.jobs j ON j.job_id = t.job_id),
  job_files AS (
    SELECT DISTINCT jf.job_id, jf.file_id FROM jobmanager.job_files jf
    WHERE jf.job_id IN (SELECT job_id FROM pairs)),
  counts AS (
    SELECT p.pos, p.job_id, p.version_tag, count(*)::int AS total,
           count(*) FILTER (WHERE s.printed_now)::int AS printed,
           count(*) FILTER (WHERE NOT s.printed_now AND s.aborted_now)::int AS aborted
    FROM pairs p JOIN job_files f ON f.job_id = p.job_id
    CROSS JOIN LATERAL (
      SELECT coalesce(st.printed, false) OR coalesce(fc.printed_at <= p.pos, false) AS printed_now,
             coalesce(st.aborted, false) OR coalesce(fc.aborted_at <= p.pos, false) AS aborted_now
      FROM (SELECT 1) one
      LEFT JOIN jobmanager.print_file_states st ON st.file_id = f.file_id
      LEFT JOIN first_change fc ON fc.file_id = f.file_id) s
    GROUP BY p.pos, p.job_id, p.version_tag)
  INSERT INTO pg_temp.ff_print_jobs (pos, job_id, version_tag, status, print, note)
  SELECT c.pos, c.job_id, c.version_tag, v.status, v.print,
         v.note || coalesce('; ' || b.notes, '')
  FROM counts c JOIN pg_temp.ff_print_batch b ON b.pos = c.pos
  CROSS JOIN LATERAL (
    SELECT * FROM (VALUES
      (c.total > 0 AND c.printed >= c.total, 'completed', true, 'all ' || c.total || ' files printed'),
      (c.printed > 0, 'partial', false, 'partially printed: ' || c.printed || ' of ' || c.total || ' files'
                                        || CASE WHEN c.aborted > 0 THEN ', ' || c.aborted || ' aborted' ELSE '' END),
      (c.total > 0 AND c.aborted >= c.total, 'aborted', false, 'all ' || c.total || ' files aborted'),
      (true, 'aborted', NULL, c.aborted || ' of ' || c.total || ' files aborted, none printed')
    ) AS rule(holds, status, print, note)
    WHERE rule.holds LIMIT 1) v`;

/** Step: the file states the batch leaves (printed and aborted only ever become true). */
const WRITE_FILE_STATES = `
  INSERT INTO jobmanager.print_file_states (file_id, printed, aborted, updated_at)
  SELECT t.file_id, bool_or(b.printed), bool_or(NOT b.printed), $1
  FROM (${RECORD_FILES} WHERE jf.job_id IS NOT NULL) t JOIN pg_temp.ff_print_batch b ON b.pos = t.pos
  GROUP BY t.file_id ORDER BY t.file_id
  ON CONFLICT (file_id) DO UPDATE
  SET printed = print_file_states.printed OR excluded.printed,
      aborted = print_file_states.aborted OR excluded.aborted,
      updated_at = excluded.updated_at
  WHERE (NOT print_file_states.printed AND excluded.printed) OR (NOT print_file_states.aborted AND excluded.aborted)`;

/** Step: the print claims, in record order (a verdict that leaves print as it is claims nothing). */
const CLAIM_PRINT = `
  INSERT INTO pg_temp.ff_claims (pos, job_id, operation, value, source_type, source_id, effective_at)
  SELECT j.pos, j.job_id, 'print', j.print, 'print_os', b.source_id, b.effective_at
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
 * Applies the batch table's records: claims them in the ledger, judges them and writes every
 * effect and outcome. The caller's transaction commits or rolls back all of it.
 */
export async function applyLoadedPrintRecords(
  client: Client,
  order: number[],
  ctx: ApplyContext,
): Promise<ApplyResult> {
  if (order.length === 0) return allSeen(order);
  const claimed = await claimBatch(client, 'ff_print_batch', 'print_os', ctx);
  if (claimed.size === 0) return allSeen(order);
  await indexNewFiles(client, ctx.filePattern);
  await lockJobs(client, `SELECT jf.job_id FROM (${RECORD_FILES}) jf`);
  await client.query(JUDGE_RECORDS);
  await client.query(JUDGE_JOBS);
  await client.query(WRITE_FILE_STATES, [ctx.now]);
  await client.query(CLAIM_PRINT);
  await resolveClaims(client);
  const params = [ctx.now, ctx.flowVersion ?? null];
  await client.query(WRITE_IMPOSITION_LOGS, params);
  await client.query(WRITE_JOB_LOGS, params);
  await writeClaims(client, ctx);
  await client.query(WRITE_STATUS_ROWS, params);
  return finishBatch(client, 'ff_print_batch', 'print_os', 'ff_print_jobs', order);
}

/** Applies "print OS" records given as values, in one transaction. */
export async function applyPrintOsRecords(
  pool: Pool,
  records: PrintOsRecordInput[],
  ctx: ApplyContext,
): Promise<ApplyResult> {
  let created = () => undefined as void;
  const result = await withTransaction(pool, async (client) => {
    created = await workingTables(client);
    const order = await loadPrintRecords(client, records, ctx.now);
    return applyLoadedPrintRecords(client, order, ctx);
  });
  created();
  return result;
}

/** One "print OS" record in its own transaction. */
export async function applyPrintOsRecord(
  pool: Pool,
  record: PrintOsRecordInput,
  ctx: ApplyContext,
): Promise<ApplyResult> {
  return applyPrintOsRecords(pool, [record], ctx);
}
