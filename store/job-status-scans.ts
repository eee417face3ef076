// Applying scans (seed 001 §2.2, §3.2, §5) a batch at a time inside PostgreSQL: which jobs each
// code stands for (a runlist: every job of its impositions; a job on a runlist: its runlist's jobs;
// otherwise the job alone), the operations it completes, the precedence of claims, the operation
// logs, status rows and ledger, each step one set-based statement over the whole batch. The rules
// are those of core/job-status planScan (the reference the property test holds this to); reading a
// code against the configured patterns and its operations list stays in TypeScript (core/scan-code).
import type { Pool } from 'pg';
import { scanTarget, type ScanTarget } from '../core/job-status';
import { normaliseOperations } from '../core/scan-code';
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

/** A stored scan (scanned_codes row) to apply, optionally already classified by scan-parser. */
export interface ScanRecordInput {
  scan_id: number;
  code_text: string;
  operations: unknown;
  scanned_at: Date;
  target?: ScanTarget;
}

/** Reads each scan's code and operations, and loads the batch table in scan order. */
export async function loadScans(
  client: Client,
  scans: ScanRecordInput[],
  ctx: ApplyContext,
): Promise<number[]> {
  const seen = new Set<number>();
  const unique = scans
    .filter((s) => !seen.has(s.scan_id) && seen.add(s.scan_id))
    .sort((a, b) => a.scan_id - b.scan_id);
  const rows = unique.map((scan) => {
    const target = scan.target ?? scanTarget(scan.code_text, ctx.scanPatterns);
    const ops = normaliseOperations(scan.operations);
    let invalid: string | null = null;
    if (target.kind === 'invalid') invalid = `unparseable code: ${target.reason}`;
    else if (!ops.ok) invalid = `invalid operations: ${ops.reason}`;
    else if (ops.operations.length === 0) invalid = 'the scan names no completed operation';
    const job = target.kind === 'job' ? target : target.kind === 'runlist' ? target.job : undefined;
    return {
      scan,
      kind: target.kind,
      runlist: target.kind === 'runlist' ? target.runlist_id : null,
      job: job?.job_id ?? null,
      tag: job?.version_tag ?? null,
      ops: ops.ok ? JSON.stringify(ops.operations) : null,
      invalid,
    };
  });
  await run(
    client,
    'ff-scan-load',
    `INSERT INTO pg_temp.ff_scan_batch
       (pos, source_id, effective_at, target_kind, runlist_id, job_id, version_tag, operations, invalid_reason)
     SELECT u.pos, u.id, u.at, u.kind, u.runlist, u.job, u.tag,
            CASE WHEN u.ops IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(u.ops::jsonb)) END, u.invalid
     FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
          WITH ORDINALITY AS u(id, at, kind, runlist, job, tag, ops, invalid, pos)`,
    [
      rows.map((r) => r.scan.scan_id),
      rows.map((r) => r.scan.scanned_at),
      rows.map((r) => r.kind),
      rows.map((r) => r.runlist),
      rows.map((r) => r.job),
      rows.map((r) => r.tag),
      rows.map((r) => r.ops),
      rows.map((r) => r.invalid),
    ],
  );
  return rows.map((r) => r.scan.scan_id);
}

/** Step: the operations of each readable scan, with their ids in logs.operation_catalog. */
const RESOLVE_OPERATIONS = `
  INSERT INTO pg_temp.ff_scan_ops (pos, ord, name, operation_id)
  SELECT b.pos, o.ord, o.name, c.operation_id
  FROM pg_temp.ff_scan_batch b
  CROSS JOIN LATERAL unnest(b.operations) WITH ORDINALITY AS o(name, ord)
  LEFT JOIN logs.operation_catalog c ON c.operation_name = o.name
  WHERE b.invalid_reason IS NULL`;

/**
 * Step: each scan's runlists (seed §2.2 case A: a code that is an existing runlist; case B: the
 * runlists holding the job's files, findRunlistByScan). A code that fits both a runlist and a job
 * pattern is a runlist only if that runlist exists.
 */
const RESOLVE_RUNLISTS = `
  INSERT INTO pg_temp.ff_scan_runlists (pos, runlist_id)
  SELECT b.pos, b.runlist_id FROM pg_temp.ff_scan_batch b
  WHERE b.invalid_reason IS NULL AND b.target_kind = 'runlist'
    AND EXISTS (SELECT 1 FROM logs.production_planner_paths p WHERE p.runlist_id = b.runlist_id)
  UNION
  SELECT b.pos, p.runlist_id FROM pg_temp.ff_scan_batch b
  JOIN jobmanager.job_files jf ON jf.job_id = b.job_id
  JOIN logs.production_planner_paths p ON p.imposition_id = jf.imposition_id
  WHERE b.invalid_reason IS NULL AND b.job_id IS NOT NULL
    AND NOT (b.target_kind = 'runlist'
             AND EXISTS (SELECT 1 FROM logs.production_planner_paths x WHERE x.runlist_id = b.runlist_id))`;

/** Step: each scan's jobs: every job of its runlists' impositions, or the job alone when it has none. */
const RESOLVE_JOBS = `
  INSERT INTO pg_temp.ff_scan_jobs (pos, job_id, known, version_tag)
  SELECT s.pos, s.job_id, j.job_id IS NOT NULL,
         CASE WHEN s.single AND s.tag IS NOT NULL THEN s.tag ELSE j.version_tag END
  FROM (
    SELECT DISTINCT r.pos, jf.job_id, false AS single, NULL::text AS tag
    FROM pg_temp.ff_scan_runlists r
    JOIN logs.production_planner_paths p ON p.runlist_id = r.runlist_id
    JOIN jobmanager.job_files jf ON jf.imposition_id = p.imposition_id AND jf.job_id IS NOT NULL
    UNION ALL
    SELECT b.pos, b.job_id, true, b.version_tag FROM pg_temp.ff_scan_batch b
    WHERE b.invalid_reason IS NULL AND b.job_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM pg_temp.ff_scan_runlists r WHERE r.pos = b.pos)) s
  LEFT JOIN jobmanager.jobs j ON j.job_id = s.job_id`;

/** Step: each scan's verdict: why it is skipped, or how it reached its jobs and what was left out. */
const JUDGE_SCANS = `
  UPDATE pg_temp.ff_scan_batch b
  SET outcome = CASE WHEN v.reason IS NULL THEN 'applied' ELSE 'skipped' END,
      reason = v.reason, via = v.via, note = v.note,
      jobs = CASE WHEN v.reason IS NULL THEN v.known ELSE 0 END
  FROM (
    SELECT b.pos,
      CASE
        WHEN b.invalid_reason IS NOT NULL THEN b.invalid_reason
        WHEN coalesce(o.known, 0) = 0
          THEN 'unknown operation' || CASE WHEN o.total > 1 THEN 's' ELSE '' END || ' ' || o.names
        WHEN r.runlists IS NULL AND b.job_id IS NULL
          THEN 'unknown runlist ' || b.runlist_id || ': not in production_planner_paths'
        WHEN coalesce(j.total, 0) = 0 THEN 'runlist ' || array_to_string(r.runlists, ', ') || ' has no jobs'
        WHEN j.known = 0 THEN 'unknown job ' || array_to_string(j.unknown, ', ')
      END AS reason,
      CASE WHEN r.runlists IS NULL THEN 'job' ELSE 'runlist' END AS via,
      concat_ws('; ',
        CASE WHEN r.runlists IS NULL THEN 'scanned job'
             ELSE 'scanned via runlist ' || array_to_string(r.runlists, ', ') END,
        o.unknown_notes,
        CASE WHEN cardinality(j.unknown) > 0 THEN 'unknown jobs skipped: ' || array_to_string(j.unknown, ', ') END
      ) AS note,
      coalesce(j.known, 0) AS known
    FROM pg_temp.ff_scan_batch b
    LEFT JOIN (
      SELECT o.pos, count(o.operation_id) AS known, count(*) AS total, string_agg(o.name, ', ' ORDER BY o.ord) AS names,
             string_agg('unknown operation ' || o.name || ' skipped', '; ' ORDER BY o.ord)
               FILTER (WHERE o.operation_id IS NULL) AS unknown_notes
      FROM pg_temp.ff_scan_ops o GROUP BY o.pos) o ON o.pos = b.pos
    LEFT JOIN (
      SELECT r.pos, array_agg(r.runlist_id ORDER BY r.runlist_id) AS runlists
      FROM pg_temp.ff_scan_runlists r GROUP BY r.pos) r ON r.pos = b.pos
    LEFT JOIN (
      SELECT j.pos, count(*) AS total, count(*) FILTER (WHERE j.known)::int AS known,
             coalesce(array_agg(j.job_id ORDER BY j.job_id) FILTER (WHERE NOT j.known), '{}') AS unknown
      FROM pg_temp.ff_scan_jobs j GROUP BY j.pos) j ON j.pos = b.pos) v
  WHERE b.pos = v.pos`;

/** Step: logs.imposition_operations of a runlist scan's impositions, the last scan per imposition and operation. */
const WRITE_IMPOSITION_LOGS = `
  UPDATE logs.imposition_operations t
  SET status = 'completed', completed_at = $1, completed_by = 'scanner', source_id = l.source_id,
      notes = l.note, flow_version = $2, updated_at = $1
  FROM (
    SELECT DISTINCT ON (p.imposition_id, o.operation_id) p.imposition_id, o.operation_id, b.source_id, b.note
    FROM pg_temp.ff_scan_batch b
    JOIN pg_temp.ff_scan_runlists r ON r.pos = b.pos
    JOIN logs.production_planner_paths p ON p.runlist_id = r.runlist_id
    JOIN pg_temp.ff_scan_ops o ON o.pos = b.pos AND o.operation_id IS NOT NULL
    WHERE b.outcome = 'applied'
    ORDER BY p.imposition_id, o.operation_id, b.pos DESC) l
  WHERE t.imposition_id = l.imposition_id AND t.operation_id = l.operation_id`;

/** A claim per (applied scan, known job, known operation), in scan order. */
const SCAN_CLAIMS = `
  SELECT b.pos, j.job_id, o.name AS operation, true AS value, 'scanner'::text AS source_type, b.source_id,
         b.effective_at
  FROM pg_temp.ff_scan_batch b
  JOIN pg_temp.ff_scan_jobs j ON j.pos = b.pos AND j.known
  JOIN pg_temp.ff_scan_ops o ON o.pos = b.pos AND o.operation_id IS NOT NULL
  WHERE b.outcome = 'applied'`;

/** Step: logs.job_operations, the last applied claim per job and operation. */
const WRITE_JOB_LOGS = `
  UPDATE logs.job_operations t
  SET status = 'completed', completed_at = $1, completed_by = 'scanner', source_id = l.source_id,
      notes = l.note, flow_version = $2, updated_at = $1
  FROM (
    SELECT DISTINCT ON (c.job_id, o.operation_id) c.job_id, o.operation_id, j.version_tag, b.source_id, b.note
    FROM pg_temp.ff_claims c
    JOIN pg_temp.ff_scan_batch b ON b.pos = c.pos
    JOIN pg_temp.ff_scan_ops o ON o.pos = c.pos AND o.name = c.operation
    JOIN pg_temp.ff_scan_jobs j ON j.pos = c.pos AND j.job_id = c.job_id
    WHERE c.applies
    ORDER BY c.job_id, o.operation_id, c.pos DESC) l
  WHERE t.job_id = l.job_id AND t.operation_id = l.operation_id
    AND (t.version_tag IS NULL OR l.version_tag IS NULL OR t.version_tag = l.version_tag)`;

/** Step: a job_status_updates row per claim, applied or not (with the reason when not). */
const WRITE_STATUS_ROWS = `
  INSERT INTO jobmanager.job_status_updates
    (job_id, operation_type, status, source_type, source_id, notes, flow_version, created_at, updated_at)
  SELECT c.job_id, c.operation, 'completed', 'scanner', c.source_id,
         b.note || CASE WHEN c.applies THEN ''
                        ELSE '; not applied: ' || c.against_type || ' has precedence for ' || c.operation END,
         $2, $1, $1
  FROM pg_temp.ff_claims c JOIN pg_temp.ff_scan_batch b ON b.pos = c.pos
  ORDER BY c.pos, c.job_id, c.operation
  ON CONFLICT ON CONSTRAINT job_status_updates_source_key DO NOTHING`;

/** Applies the batch table's scans: verdicts, ledger, effects (BatchRaced: try again). */
export async function applyLoadedScans(
  client: Client,
  order: number[],
  ctx: ApplyContext,
): Promise<ApplyResult> {
  if (order.length === 0) return allSeen(order);
  await dropProcessed(client, 'ff_scan_batch', 'scanner');
  await indexNewFiles(client, ctx.filePattern);
  await run(client, 'ff-scan-operations', RESOLVE_OPERATIONS);
  await run(client, 'ff-scan-runlists', RESOLVE_RUNLISTS);
  await run(client, 'ff-scan-jobs', RESOLVE_JOBS);
  await lockJobs(client, 'ff-scan-lock', 'SELECT job_id FROM pg_temp.ff_scan_jobs WHERE known');
  await run(client, 'ff-scan-judge', JUDGE_SCANS);
  await resolveClaims(client, 'ff-scan-claims', SCAN_CLAIMS);
  await recordBatch(client, 'ff_scan_batch', 'scanner', ctx);
  const params = [ctx.now, ctx.flowVersion ?? null];
  await run(client, 'ff-scan-imposition-logs', WRITE_IMPOSITION_LOGS, params);
  await run(client, 'ff-scan-job-logs', WRITE_JOB_LOGS, params);
  await writeClaims(client, ctx);
  await run(client, 'ff-scan-status-rows', WRITE_STATUS_ROWS, params);
  return batchResult(client, 'ff_scan_batch', order);
}

/** Applies stored scans (scanned_codes rows) in one transaction. */
export async function applyScanRecords(
  pool: Pool,
  scans: ScanRecordInput[],
  ctx: ApplyContext,
): Promise<ApplyResult> {
  return retryRaced(async () => {
    let created = () => undefined as void;
    const result = await withTransaction(pool, async (client) => {
      created = await workingTables(client);
      const order = await loadScans(client, scans, ctx);
      return applyLoadedScans(client, order, ctx);
    });
    created();
    return result;
  });
}

/** One stored scan in its own transaction. */
export async function applyScanRecord(
  pool: Pool,
  scan: ScanRecordInput,
  ctx: ApplyContext,
): Promise<ApplyResult> {
  return applyScanRecords(pool, [scan], ctx);
}
