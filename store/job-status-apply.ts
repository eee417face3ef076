// What the two job-status appliers share (store/job-status-print.ts for "print OS" records,
// store/job-status-scans.ts for scans): the batch's working tables, the ledger, the file index,
// and the precedence of claims (core/claims) computed inside PostgreSQL.
//
// A batch is applied inside PostgreSQL: its records go into session-local working tables, and each
// step (resolve, judge, resolve claims, write) is one set-based statement over all of them, so a
// batch costs the same dozen round trips whether it holds one record or a thousand. The working
// tables are temporary, created once per connection and emptied by every COMMIT (ON COMMIT DELETE
// ROWS), so they leave no dead rows behind and never mix two sessions' batches. The statements are
// prepared once per connection.
//
// The order of the steps is what makes a batch exactly-once: records already in the ledger are
// left out first; the jobs are locked (in job order) before anything that depends on their state
// is read; the ledger rows, with each record's final outcome, are inserted before any effect is
// written. A record another transaction processed in the meantime makes that insert come up short:
// the batch then throws BatchRaced, rolls back, and is tried again without it.
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { jobIdOfFile } from '../core/job-status';
import type { ScanPatterns } from '../core/scan-code';

export type Client = Pick<PoolClient, 'query'>;

export interface ApplyContext {
  /** The clock's time: completed_at and updated_at of every row written. */
  now: Date;
  flowVersion?: string;
  /** File-id pattern (core/scan-code DEFAULT_SCAN_PATTERNS.file when absent). */
  filePattern?: string;
  /** Patterns for classifying scanned codes read back from scanned_codes. */
  scanPatterns?: ScanPatterns;
}

/** What became of one record of a batch. */
export interface RecordResult {
  source_id: number;
  /** seen: another transaction had processed it already, so it took no effect here. */
  outcome: 'applied' | 'skipped' | 'seen';
  reason: string | null;
  /** Jobs whose status rows the record wrote. */
  jobs: number;
}

export interface ApplyResult {
  /** Source records processed by this call (applied + skipped); records seen before are not counted. */
  processed: number;
  applied: number;
  skipped: number;
  /** Distinct jobs whose status rows were written. */
  jobs_updated: number;
  skips: Array<{ source_id: number; reason: string }>;
  /** Per record, in batch order (records seen before included). */
  records: RecordResult[];
}

export const EMPTY_RESULT: Readonly<ApplyResult> = Object.freeze({
  processed: 0,
  applied: 0,
  skipped: 0,
  jobs_updated: 0,
  skips: [],
  records: [],
});

/** Another transaction processed some of the batch's records while it was being judged. */
export class BatchRaced extends Error {
  constructor() {
    super('another transaction processed records of this batch meanwhile; the batch is tried again');
    this.name = 'BatchRaced';
  }
}

/** Runs `attempt` (one transaction) again while it loses a race for its records. */
export async function retryRaced<T>(attempt: () => Promise<T>, tries = 5): Promise<T> {
  for (let i = 1; ; i += 1) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof BatchRaced) || i >= tries) throw err;
    }
  }
}

/** A statement prepared once per connection under `name` (the text must never change for a name). */
export function run<R extends QueryResultRow = QueryResultRow>(
  client: Client,
  name: string,
  text: string,
  values: unknown[] = [],
): Promise<QueryResult<R>> {
  return client.query<R>({ name, text, values });
}

const WORKING_TABLES = `
  CREATE TEMP TABLE IF NOT EXISTS ff_print_batch (
    pos int PRIMARY KEY, source_id bigint NOT NULL, marker bigint NOT NULL, imposition_id text NOT NULL,
    printed boolean NOT NULL, effective_at timestamptz NOT NULL,
    outcome text, reason text, notes text, jobs int NOT NULL DEFAULT 0) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE IF NOT EXISTS ff_print_files (
    pos int NOT NULL, file_id text NOT NULL, job_id text, parse_error text) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE IF NOT EXISTS ff_file_change (
    file_id text PRIMARY KEY, printed_at int, aborted_at int) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE IF NOT EXISTS ff_print_jobs (
    pos int NOT NULL, job_id text NOT NULL, version_tag text, status text NOT NULL, print boolean,
    note text NOT NULL, PRIMARY KEY (pos, job_id)) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE IF NOT EXISTS ff_scan_batch (
    pos int PRIMARY KEY, source_id bigint NOT NULL, effective_at timestamptz NOT NULL,
    target_kind text NOT NULL, runlist_id text, job_id text, version_tag text, operations text[],
    invalid_reason text, via text, outcome text, reason text, note text, jobs int NOT NULL DEFAULT 0)
    ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE IF NOT EXISTS ff_scan_ops (
    pos int NOT NULL, ord int NOT NULL, name text NOT NULL, operation_id text) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE IF NOT EXISTS ff_scan_runlists (
    pos int NOT NULL, runlist_id text NOT NULL) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE IF NOT EXISTS ff_scan_jobs (
    pos int NOT NULL, job_id text NOT NULL, known boolean NOT NULL, version_tag text) ON COMMIT DELETE ROWS;
  CREATE TEMP TABLE IF NOT EXISTS ff_claims (
    pos int NOT NULL, job_id text NOT NULL, operation text NOT NULL, value boolean NOT NULL,
    source_type text NOT NULL, source_id bigint, effective_at timestamptz NOT NULL,
    applies boolean NOT NULL, against_type text, against_id bigint) ON COMMIT DELETE ROWS;`;

const prepared = new WeakSet<object>();

/**
 * Creates the working tables on this connection if it has none, and returns the call that marks
 * them created once the transaction committed (a rolled-back CREATE leaves nothing).
 */
export async function workingTables(client: Client): Promise<() => void> {
  if (prepared.has(client)) return () => undefined;
  await client.query(WORKING_TABLES);
  return () => prepared.add(client);
}

type BatchTable = 'ff_print_batch' | 'ff_scan_batch';

/** Leaves out of the batch the records another transaction has processed (committed) already. */
export async function dropProcessed(
  client: Client,
  table: BatchTable,
  source: 'print_os' | 'scanner',
): Promise<void> {
  await run(
    client,
    `ff-drop-processed-${table}`,
    `DELETE FROM pg_temp.${table} b
     WHERE EXISTS (SELECT 1 FROM jobmanager.processed_source_records r
                   WHERE r.source_type = $1 AND r.source_id = b.source_id OFFSET 0)`,
    [source],
  );
}

/**
 * Inserts the ledger rows of the batch's records with their final outcome (the batch table's
 * outcome, reason and jobs). Throws BatchRaced when another transaction processed some of them
 * meanwhile: then nothing of this batch may be written.
 */
export async function recordBatch(
  client: Client,
  table: BatchTable,
  source: 'print_os' | 'scanner',
  ctx: ApplyContext,
): Promise<void> {
  const marker = table === 'ff_print_batch' ? 'b.marker' : 'b.source_id';
  const result = await run<{ inserted: number; expected: number }>(
    client,
    `ff-record-${table}`,
    `WITH inserted AS (
       INSERT INTO jobmanager.processed_source_records
         (source_type, source_id, marker, outcome, reason, jobs_updated, flow_version, processed_at)
       SELECT $1, b.source_id, ${marker}, b.outcome, b.reason, b.jobs, $2, $3 FROM pg_temp.${table} b ORDER BY b.pos
       ON CONFLICT (source_type, source_id) DO NOTHING
       RETURNING 1)
     SELECT (SELECT count(*)::int FROM inserted) AS inserted, (SELECT count(*)::int FROM pg_temp.${table}) AS expected`,
    [source, ctx.flowVersion ?? null, ctx.now],
  );
  const { inserted, expected } = result.rows[0];
  if (inserted !== expected) throw new BatchRaced();
}

/** Reads the batch's results back: per record, and the distinct jobs the applied records wrote. */
export async function batchResult(client: Client, table: BatchTable, order: number[]): Promise<ApplyResult> {
  const jobs =
    table === 'ff_print_batch'
      ? 'SELECT count(DISTINCT job_id)::int FROM pg_temp.ff_print_jobs'
      : `SELECT count(DISTINCT j.job_id)::int FROM pg_temp.ff_scan_jobs j
         JOIN pg_temp.ff_scan_batch b ON b.pos = j.pos WHERE j.known AND b.outcome = 'applied'`;
  const result = await run<{
    source_id: string;
    outcome: 'applied' | 'skipped';
    reason: string | null;
    jobs: number;
    touched: number;
  }>(
    client,
    `ff-result-${table}`,
    `SELECT b.source_id, b.outcome, b.reason, b.jobs, (${jobs}) AS touched FROM pg_temp.${table} b`,
  );
  const bySource = new Map(result.rows.map((r) => [Number(r.source_id), r]));
  const records = order.map((sourceId): RecordResult => {
    const row = bySource.get(sourceId);
    return row
      ? { source_id: sourceId, outcome: row.outcome, reason: row.reason, jobs: row.jobs }
      : { source_id: sourceId, outcome: 'seen', reason: null, jobs: 0 };
  });
  const skips = records.flatMap((r) =>
    r.outcome === 'skipped' ? [{ source_id: r.source_id, reason: r.reason ?? '' }] : [],
  );
  const processed = result.rows.length;
  return {
    processed,
    applied: processed - skips.length,
    skipped: skips.length,
    jobs_updated: result.rows[0]?.touched ?? 0,
    skips,
    records,
  };
}

/** The result of a batch whose records were all processed before. */
export function allSeen(order: number[]): ApplyResult {
  return {
    ...EMPTY_RESULT,
    skips: [],
    records: order.map((source_id) => ({ source_id, outcome: 'seen', reason: null, jobs: 0 })),
  };
}

/** Mapping rows parsed at once above which the file index's statistics are refreshed. */
const ANALYZE_AFTER = 1000;

/**
 * Parses the job id of every mapping row not parsed yet (migration 010's trigger queues them).
 * After a large import the planner's picture of jobmanager.job_files is refreshed at once: the
 * batch's joins are planned on it, and with job ids it still believes NULL they go badly wrong.
 */
export async function indexNewFiles(client: Client, filePattern: string | undefined): Promise<void> {
  const pending = await run<{ imposition_id: string; file_id: string }>(
    client,
    'ff-unparsed-files',
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
  await run(
    client,
    'ff-parse-files',
    `UPDATE jobmanager.job_files j SET job_id = u.job_id, parse_error = u.parse_error
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(imposition_id, file_id, job_id, parse_error)
     WHERE j.imposition_id = u.imposition_id AND j.file_id = u.file_id AND j.imposition_id = ANY($1::text[])`,
    [pending.rows.map((r) => r.imposition_id), pending.rows.map((r) => r.file_id), jobIds, errors],
  );
  if (pending.rows.length >= ANALYZE_AFTER) await client.query('ANALYZE jobmanager.job_files');
}

/**
 * Locks the jobs a batch will write, in job order, so two transactions touching the same jobs
 * queue instead of deadlocking. `jobs` is a query yielding job_id; `name` prepares it.
 */
export async function lockJobs(client: Client, name: string, jobs: string): Promise<void> {
  await run(
    client,
    name,
    `SELECT count(*) FROM (SELECT 1 FROM jobmanager.jobs j WHERE j.job_id IN (${jobs})
                            ORDER BY j.job_id FOR UPDATE) AS locked`,
  );
}

/**
 * Judges the claims `incoming` yields (pos = record order; columns pos, job_id, operation, value,
 * source_type, source_id, effective_at) against the claim their predecessors left, as
 * core/claims resolveClaims does one at a time, and keeps them in ff_claims. An authoritative
 * claim (core/claims authorityFor) beats any other, so once one stands no other source wins again;
 * between claims of the same standing the later time wins, on a tie the later record. So a claim
 * applies when it is at least as late as the latest claim of its standing before it (and as the
 * stored claim, when that one has its standing), which a running max over the preceding rows gives
 * without a loop. `against` is the claim it was judged against: the last that applied before it,
 * or the stored one.
 */
export async function resolveClaims(
  client: Client,
  name: string,
  incoming: string,
  values: unknown[] = [],
): Promise<void> {
  await run(
    client,
    name,
    `WITH incoming AS MATERIALIZED (${incoming}),
     judged AS (
       SELECT i.*,
              i.source_type = CASE WHEN i.operation = 'print' THEN 'print_os' ELSE 'scanner' END AS auth,
              cur.source_type AS cur_type, cur.source_id AS cur_id, cur.effective_at AS cur_at,
              cur.source_type = CASE WHEN i.operation = 'print' THEN 'print_os' ELSE 'scanner' END AS cur_auth
       FROM incoming i
       LEFT JOIN jobmanager.job_operation_claims cur ON cur.job_id = i.job_id AND cur.operation_name = i.operation),
     windowed AS (
       SELECT j.*,
              min(j.pos) FILTER (WHERE j.auth) OVER (PARTITION BY j.job_id, j.operation) AS first_auth,
              max(j.effective_at) OVER (PARTITION BY j.job_id, j.operation, j.auth ORDER BY j.pos
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before_max
       FROM judged j),
     decided AS (
       SELECT w.*,
              CASE WHEN w.auth
                THEN w.effective_at >= GREATEST(CASE WHEN w.cur_auth THEN w.cur_at END, w.before_max)
                     OR GREATEST(CASE WHEN w.cur_auth THEN w.cur_at END, w.before_max) IS NULL
                ELSE NOT coalesce(w.cur_auth, false) AND (w.first_auth IS NULL OR w.first_auth > w.pos)
                     AND (w.effective_at >= GREATEST(w.cur_at, w.before_max)
                          OR GREATEST(w.cur_at, w.before_max) IS NULL)
              END AS applies
       FROM windowed w),
     placed AS (
       SELECT d.*, max(d.pos) FILTER (WHERE d.applies) OVER (PARTITION BY d.job_id, d.operation ORDER BY d.pos
                                                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last_win
       FROM decided d)
     INSERT INTO pg_temp.ff_claims
       (pos, job_id, operation, value, source_type, source_id, effective_at, applies, against_type, against_id)
     SELECT p.pos, p.job_id, p.operation, p.value, p.source_type, p.source_id, p.effective_at, p.applies,
            CASE WHEN p.last_win IS NULL THEN p.cur_type ELSE w.source_type END,
            CASE WHEN p.last_win IS NULL THEN p.cur_id ELSE w.source_id END
     FROM placed p
     LEFT JOIN incoming w ON w.job_id = p.job_id AND w.operation = p.operation AND w.pos = p.last_win`,
    values,
  );
}

/**
 * Writes the claim left standing per job and operation, and the jobs.operations flags they set
 * (a job whose flags would not change is not written).
 */
export async function writeClaims(client: Client, ctx: ApplyContext): Promise<void> {
  await run(
    client,
    'ff-write-claims',
    `WITH standing AS (
       SELECT DISTINCT ON (job_id, operation) job_id, operation, value, source_type, source_id, effective_at
       FROM pg_temp.ff_claims WHERE applies ORDER BY job_id, operation, pos DESC),
     claims AS (
       INSERT INTO jobmanager.job_operation_claims
         (job_id, operation_name, value, source_type, source_id, effective_at, updated_at)
       SELECT job_id, operation, value, source_type, source_id, effective_at, $1 FROM standing
       ORDER BY job_id, operation
       ON CONFLICT (job_id, operation_name) DO UPDATE
       SET value = excluded.value, source_type = excluded.source_type, source_id = excluded.source_id,
           effective_at = excluded.effective_at, updated_at = excluded.updated_at)
     UPDATE jobmanager.jobs j SET operations = j.operations || p.patch, updated_at = $1
     FROM (SELECT job_id, jsonb_object_agg(operation, value) AS patch FROM standing GROUP BY job_id) p
     WHERE j.job_id = p.job_id AND NOT j.operations @> p.patch`,
    [ctx.now],
  );
}

export interface ClaimToJudge {
  pos: number;
  job_id: string;
  operation: string;
  value: boolean;
  source_type: string;
  source_id: number | null;
  effective_at: Date;
}

/**
 * Judges `claims` with the appliers' statement against the stored claims, without writing
 * anything: how the rule's SQL is held to core/claims resolveClaims.
 */
export async function judgeClaims(
  pool: Pool,
  claims: ClaimToJudge[],
): Promise<Array<ClaimToJudge & { applies: boolean; against_type: string | null; against_id: number | null }>> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(WORKING_TABLES);
    await resolveClaims(
      client,
      'ff-judge-claims',
      `SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::bigint[], $7::timestamptz[])
         AS u(pos, job_id, operation, value, source_type, source_id, effective_at)`,
      [
        claims.map((c) => c.pos),
        claims.map((c) => c.job_id),
        claims.map((c) => c.operation),
        claims.map((c) => c.value),
        claims.map((c) => c.source_type),
        claims.map((c) => c.source_id),
        claims.map((c) => c.effective_at),
      ],
    );
    const result = await client.query<{
      pos: number;
      job_id: string;
      operation: string;
      applies: boolean;
      against_type: string | null;
      against_id: string | null;
    }>('SELECT pos, job_id, operation, applies, against_type, against_id FROM pg_temp.ff_claims');
    const byKey = new Map(result.rows.map((r) => [`${r.job_id}\u0000${r.operation}\u0000${r.pos}`, r]));
    return claims.map((c) => {
      const r = byKey.get(`${c.job_id}\u0000${c.operation}\u0000${c.pos}`)!;
      return {
        ...c,
        applies: r.applies,
        against_type: r.against_type,
        against_id: r.against_id === null ? null : Number(r.against_id),
      };
    });
  } finally {
    // Nothing of the judgement is kept: ROLLBACK also drops the working tables made here.
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}
