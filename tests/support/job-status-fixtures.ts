// Plant data for job-status tests and benches: jobs with their planned operations, impositions
// with their files, runlists, and "print OS" rows as the printer app writes them.
import type { Pool, PoolClient } from 'pg';

type Queryable = Pick<Pool | PoolClient, 'query'>;

/** `FILE_1_Labex_<job>_<n>`, the print OS's file-id pattern. */
export function fileId(jobId: string, n: number, version = '1'): string {
  return `FILE_${version}_Labex_${jobId}_${n}`;
}

/** A job in jobmanager.jobs with planned print, coating and kiss_cut operations in logs.job_operations. */
export async function addJobs(db: Queryable, jobIds: string[], versionTag = '1'): Promise<void> {
  await db.query(
    `INSERT INTO jobmanager.jobs (job_id, version_tag) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING`,
    [jobIds, versionTag],
  );
  await db.query(
    `INSERT INTO logs.job_operations (job_operation_id, job_id, version_tag, operation_id, sequence_order)
     SELECT j || ':' || op, j, $2, op, ord FROM unnest($1::text[]) AS j,
       unnest(ARRAY['print', 'op003', 'op006']) WITH ORDINALITY AS o(op, ord)
     ON CONFLICT DO NOTHING`,
    [jobIds, versionTag],
  );
}

/** An imposition holding `files`, with its planned print and coating operations. */
export async function addImposition(db: Queryable, impositionId: string, files: string[]): Promise<void> {
  await db.query(
    `INSERT INTO logs.imposition_file_mapping (imposition_id, file_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
    [impositionId, files],
  );
  await db.query(
    `INSERT INTO logs.imposition_operations (imposition_operation_id, imposition_id, operation_id, sequence_order)
     SELECT $1 || ':' || op, $1, op, ord FROM unnest(ARRAY['print', 'op003']) WITH ORDINALITY AS o(op, ord)
     ON CONFLICT DO NOTHING`,
    [impositionId],
  );
}

export async function addRunlist(db: Queryable, runlistId: string, impositionIds: string[]): Promise<void> {
  await db.query(
    `INSERT INTO logs.production_planner_paths (runlist_id, imposition_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
    [runlistId, impositionIds],
  );
}

export interface PrintOsRow {
  name: string;
  status: 'PRINTED' | 'ABORTED';
  marker: number;
  job_complete_time?: Date;
}

/** Inserts "print OS" rows as the printer app does; returns their ids in order. */
export async function addPrintOs(db: Queryable, rows: PrintOsRow[]): Promise<number[]> {
  const result = await db.query<{ id: string }>(
    `INSERT INTO jobmanager."print OS" (name, status, marker, job_complete_time, job_name)
     SELECT u.name, u.status, u.marker, u.t, u.name FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[])
       WITH ORDINALITY AS u(name, status, marker, t, ord) ORDER BY u.ord
     RETURNING id`,
    [
      rows.map((r) => r.name),
      rows.map((r) => r.status),
      rows.map((r) => r.marker),
      rows.map((r) => r.job_complete_time ?? null),
    ],
  );
  return result.rows.map((r) => Number(r.id));
}

export async function addScanRow(
  db: Queryable,
  scan: { code: string; operations: unknown; machine_id?: string; scanned_at?: Date },
): Promise<number> {
  const result = await db.query<{ scan_id: string }>(
    `INSERT INTO jobmanager.scanned_codes (code_text, operations, machine_id, scanned_at)
     VALUES ($1, $2::jsonb, $3, COALESCE($4, now())) RETURNING scan_id`,
    [scan.code, JSON.stringify(scan.operations), scan.machine_id ?? 'scanner-1', scan.scanned_at ?? null],
  );
  return Number(result.rows[0].scan_id);
}

export async function jobOperations(db: Queryable, jobId: string): Promise<Record<string, unknown>> {
  const result = await db.query<{ operations: Record<string, unknown> }>(
    'SELECT operations FROM jobmanager.jobs WHERE job_id = $1',
    [jobId],
  );
  return result.rows[0]?.operations ?? {};
}

export async function jobOperationRow(
  db: Queryable,
  jobId: string,
  operationId: string,
): Promise<{
  status: string | null;
  completed_by: string | null;
  source_id: string | null;
  notes: string | null;
  completed_at: Date | null;
}> {
  const result = await db.query(
    `SELECT status, completed_by, source_id, notes, completed_at FROM logs.job_operations WHERE job_id = $1 AND operation_id = $2`,
    [jobId, operationId],
  );
  return result.rows[0];
}

export async function statusUpdates(
  db: Queryable,
  jobId?: string,
): Promise<
  Array<{
    job_id: string;
    operation_type: string;
    status: string;
    source_type: string;
    source_id: string;
    notes: string | null;
  }>
> {
  const result = await db.query(
    `SELECT job_id, operation_type, status, source_type, source_id, notes FROM jobmanager.job_status_updates
     WHERE $1::text IS NULL OR job_id = $1 ORDER BY update_id`,
    [jobId ?? null],
  );
  return result.rows;
}

export async function markerOf(db: Queryable, markerType: 'print_os' | 'scanned_codes'): Promise<number> {
  const result = await db.query<{ v: string }>(
    'SELECT last_processed_id AS v FROM jobmanager.processing_markers WHERE marker_type = $1',
    [markerType],
  );
  return Number(result.rows[0].v);
}

export async function processedRecords(
  db: Queryable,
  source: 'print_os' | 'scanner',
): Promise<Array<{ source_id: number; outcome: string; reason: string | null }>> {
  const result = await db.query<{ source_id: string; outcome: string; reason: string | null }>(
    `SELECT source_id, outcome, reason FROM jobmanager.processed_source_records WHERE source_type = $1 ORDER BY source_id`,
    [source],
  );
  return result.rows.map((r) => ({ source_id: Number(r.source_id), outcome: r.outcome, reason: r.reason }));
}
