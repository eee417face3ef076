// Applying scans (docs/job-status.md, "Rules as implemented") a batch at a time: reading each code
// against the configured patterns and its operations list stays here (core/scan-code); which jobs
// each code stands for (a runlist: every job of its impositions; a job on a runlist: its runlist's
// jobs; otherwise the job alone), the operations it completes, the precedence of claims, the logs,
// status rows and ledger are jobmanager.ff_apply_scan_records (migrations 012, 130: a batch of
// plain job-code scans by a short path, any other by the general one), inside PostgreSQL: the rules
// of core/job-status planScan, which the property tests hold it to.
import type { Pool } from 'pg';
import { scanTarget, type ScanTarget } from '../core/job-status';
import { normaliseOperations } from '../core/scan-code';
import {
  applyWithRetries,
  resultOf,
  type AppliedRow,
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

/** Each scan's code and operations as read with the configured patterns, in scan order. */
function readScans(scans: ScanRecordInput[], ctx: ApplyContext) {
  const seen = new Set<number>();
  return scans
    .filter((s) => !seen.has(s.scan_id) && seen.add(s.scan_id))
    .sort((a, b) => a.scan_id - b.scan_id)
    .map((scan) => {
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
}

/** Applies scans in one call (the caller's transaction, or its own). */
async function applyRead(
  db: Pick<Client, 'query'>,
  rows: ReturnType<typeof readScans>,
  ctx: ApplyContext,
  checkFiles: boolean,
): Promise<AppliedRow[]> {
  const result = await db.query<AppliedRow>({
    name: 'ff-apply-scan-records',
    text: 'SELECT * FROM jobmanager.ff_apply_scan_records($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
    values: [
      rows.map((r) => r.scan.scan_id),
      rows.map((r) => r.scan.scanned_at),
      rows.map((r) => r.kind),
      rows.map((r) => r.runlist),
      rows.map((r) => r.job),
      rows.map((r) => r.tag),
      rows.map((r) => r.ops),
      rows.map((r) => r.invalid),
      ctx.now,
      ctx.flowVersion ?? null,
      checkFiles,
    ],
  });
  return result.rows;
}

/** Applies scans in the caller's transaction (the poller's); file ids must be parsed already. */
export async function applyScansIn(
  client: Client,
  scans: ScanRecordInput[],
  ctx: ApplyContext,
): Promise<ApplyResult> {
  const rows = readScans(scans, ctx);
  return resultOf(
    await applyRead(client, rows, ctx, false),
    rows.map((r) => r.scan.scan_id),
  );
}

/** Applies stored scans (scanned_codes rows) in one transaction (one call). */
export async function applyScanRecords(
  pool: Pool,
  scans: ScanRecordInput[],
  ctx: ApplyContext,
): Promise<ApplyResult> {
  const rows = readScans(scans, ctx);
  const applied = await applyWithRetries(pool, ctx, (checkFiles) => applyRead(pool, rows, ctx, checkFiles));
  return resultOf(
    applied,
    rows.map((r) => r.scan.scan_id),
  );
}

/** One stored scan in its own transaction. */
export async function applyScanRecord(
  pool: Pool,
  scan: ScanRecordInput,
  ctx: ApplyContext,
): Promise<ApplyResult> {
  return applyScanRecords(pool, [scan], ctx);
}
