// What the two job-status appliers share (store/job-status-print.ts for "print OS" records,
// store/job-status-scans.ts for scans). The batch itself is applied inside PostgreSQL by the
// functions of migration 012 (one set-based statement per step over the whole batch, one round
// trip per batch); here are the calls around them: parsing new file ids, trying a batch again that
// lost a race for its records, and reading the results back.
import type { Pool, PoolClient } from 'pg';
import { jobIdOfFile } from '../core/job-status';
import type { ScanPatterns } from '../core/scan-code';
import { withTransaction } from './db';

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

/** A row the apply functions return per record still in the batch. */
export interface AppliedRow {
  r_source_id: string;
  r_outcome: 'applied' | 'skipped';
  r_reason: string | null;
  r_jobs: number;
  r_touched: number;
}

/** SQLSTATE of a batch that lost a race: another transaction processed some of its records meanwhile. */
const RACED = 'FFR01';
/** SQLSTATE of a batch that found mapping rows whose file ids are not parsed yet. */
const FILES_TO_PARSE = 'FFP01';

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Runs `attempt` (one apply call, its own transaction) until it neither loses a race for its
 * records (then it is tried again without them) nor finds file ids to parse (then they are parsed,
 * in a transaction of their own, and it is tried again).
 */
export async function applyWithRetries<T>(
  pool: Pool,
  ctx: ApplyContext,
  attempt: (checkFiles: boolean) => Promise<T>,
  tries = 5,
): Promise<T> {
  let checkFiles = true;
  for (let i = 1; ; i += 1) {
    try {
      return await attempt(checkFiles);
    } catch (err) {
      const state = sqlState(err);
      if (i >= tries || (state !== RACED && state !== FILES_TO_PARSE)) throw err;
      if (state === FILES_TO_PARSE) {
        await withTransaction(pool, (client) => indexNewFiles(client, ctx.filePattern));
        // Rows another transaction is parsing right now would raise again: the batch goes on.
        checkFiles = false;
      }
    }
  }
}

/** The results of an apply call, per record in `order` (records left out were processed before). */
export function resultOf(rows: AppliedRow[], order: number[]): ApplyResult {
  const bySource = new Map(rows.map((r) => [Number(r.r_source_id), r]));
  const records = order.map((sourceId): RecordResult => {
    const row = bySource.get(sourceId);
    return row
      ? { source_id: sourceId, outcome: row.r_outcome, reason: row.r_reason, jobs: row.r_jobs }
      : { source_id: sourceId, outcome: 'seen', reason: null, jobs: 0 };
  });
  const skips = records.flatMap((r) =>
    r.outcome === 'skipped' ? [{ source_id: r.source_id, reason: r.reason ?? '' }] : [],
  );
  return {
    processed: rows.length,
    applied: rows.length - skips.length,
    skipped: skips.length,
    jobs_updated: rows[0]?.r_touched ?? 0,
    skips,
    records,
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
  const pending = await client.query<{ imposition_id: string; file_id: string }>({
    name: 'ff-unparsed-files',
    text: `SELECT imposition_id, file_id FROM jobmanager.job_files
           WHERE job_id IS NULL AND parse_error IS NULL ORDER BY imposition_id, file_id FOR UPDATE SKIP LOCKED`,
  });
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
  if (pending.rows.length >= ANALYZE_AFTER) await client.query('ANALYZE jobmanager.job_files');
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
 * Judges `claims` with the appliers' function (jobmanager.ff_resolve_claims) against the stored
 * claims, without writing anything: how the rule's SQL is held to core/claims resolveClaims.
 */
export async function judgeClaims(
  pool: Pool,
  claims: ClaimToJudge[],
): Promise<
  Array<ClaimToJudge & { applies: boolean; against_type: string | null; against_id: number | null }>
> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT jobmanager.ff_prepare_batch()');
    await client.query(
      `INSERT INTO pg_temp.ff_claim_input (pos, job_id, operation, value, source_type, source_id, effective_at)
       SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::bigint[], $7::timestamptz[])`,
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
    await client.query('SELECT jobmanager.ff_resolve_claims()');
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
    // Nothing of the judgement is kept.
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}
