// Scans that did not change a job, for the floor: rejected ones (jobmanager.rejected_scans),
// skipped ones (the processed-record ledger, with the reason), and repeats left out as the same
// scan sent twice (jobmanager.ignored_scans, migration 094).
import { codeOfRawScan } from '../core/scan-notice';
import type { Queryable } from './db';

export interface ScanNotice {
  at: string;
  machine_id: string;
  /** The scanned code, or an excerpt of what arrived when there was no readable code. */
  code: string;
  reason: string;
  kind: 'rejected' | 'skipped' | 'failed' | 'ignored';
}

/** Keeps a repeat left out as a double-send. */
export async function recordIgnoredScan(
  db: Queryable,
  scan: { machineId: string; code: string; reason: string; receivedAt: Date },
): Promise<void> {
  await db.query(
    `INSERT INTO jobmanager.ignored_scans (machine_id, code_text, reason, received_at) VALUES ($1, $2, $3, $4)`,
    [scan.machineId, scan.code.slice(0, 512), scan.reason.slice(0, 500), scan.receivedAt],
  );
}

/** The latest scans that did not change a job, newest first. */
export async function recentScanNotices(db: Queryable, limit = 10): Promise<ScanNotice[]> {
  const result = await db.query<{
    at: Date;
    machine_id: string;
    code: string;
    reason: string;
    kind: ScanNotice['kind'];
  }>(
    `(SELECT received_at AS at, machine_id, left(payload, 600) AS code, reason, 'rejected' AS kind
      FROM jobmanager.rejected_scans ORDER BY received_at DESC LIMIT $1)
     UNION ALL
     (SELECT r.processed_at, coalesce(s.machine_id, ''), s.code_text, coalesce(r.reason, ''), r.outcome
      FROM jobmanager.processed_source_records r
      JOIN jobmanager.scanned_codes s ON s.scan_id = r.source_id
      WHERE r.source_type = 'scanner' AND r.outcome <> 'applied'
      ORDER BY r.processed_at DESC LIMIT $1)
     UNION ALL
     (SELECT received_at, machine_id, code_text, reason, 'ignored'
      FROM jobmanager.ignored_scans ORDER BY received_at DESC LIMIT $1)
     ORDER BY at DESC LIMIT $1`,
    [limit],
  );
  return result.rows.map((r) => ({
    ...r,
    at: r.at.toISOString(),
    code: (r.kind === 'rejected' ? codeOfRawScan(r.code) : r.code).slice(0, 80),
  }));
}

/** Machine and code of stored scans, by scan id (for log lines of scans skipped by a poller). */
export async function scansByIds(
  db: Queryable,
  scanIds: number[],
): Promise<Map<number, { machine_id: string; code_text: string }>> {
  if (scanIds.length === 0) return new Map();
  const result = await db.query<{ scan_id: string; machine_id: string | null; code_text: string }>(
    'SELECT scan_id, machine_id, code_text FROM jobmanager.scanned_codes WHERE scan_id = ANY($1::bigint[])',
    [scanIds],
  );
  return new Map(
    result.rows.map((r) => [Number(r.scan_id), { machine_id: r.machine_id ?? '', code_text: r.code_text }]),
  );
}
