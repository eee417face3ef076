// (b) of bench/print-os-backlog.ts, the best single hand-written SQL pass over a print OS backlog:
// the whole backlog in one transaction, final states only (no per-record outcomes, no ledger, no
// precedence claims). Shared with bench/support/print-catchup-cpu.ts, which interleaves it with ours.
import type { Pool } from 'pg';

/** (b) The whole backlog in one transaction of set-based statements: final states only. */
export async function handWritten(pool: Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `UPDATE jobmanager.job_files SET job_id = substring(file_id from '^FILE_[^_]+_Labex_(\\d+_\\d+)')
       WHERE job_id IS NULL AND parse_error IS NULL`,
    );
    await client.query(`CREATE TEMP TABLE batch ON COMMIT DROP AS
       SELECT id, marker, name, status FROM jobmanager."print OS"
       WHERE marker > (SELECT last_processed_id FROM jobmanager.processing_markers WHERE marker_type = 'print_os')`);
    await client.query(`INSERT INTO jobmanager.print_file_states (file_id, printed, aborted)
       SELECT jf.file_id, bool_or(b.status = 'PRINTED'), bool_or(b.status = 'ABORTED')
       FROM batch b JOIN jobmanager.job_files jf ON jf.imposition_id = b.name GROUP BY jf.file_id
       ON CONFLICT (file_id) DO UPDATE SET printed = print_file_states.printed OR excluded.printed,
         aborted = print_file_states.aborted OR excluded.aborted`);
    await client.query(`CREATE TEMP TABLE verdicts ON COMMIT DROP AS
       WITH jobs AS (SELECT DISTINCT jf.job_id FROM batch b JOIN jobmanager.job_files jf ON jf.imposition_id = b.name
                     JOIN jobmanager.jobs j ON j.job_id = jf.job_id)
       SELECT jf.job_id, count(*) AS total, count(*) FILTER (WHERE s.printed) AS printed,
              count(*) FILTER (WHERE NOT coalesce(s.printed, false) AND s.aborted) AS aborted
       FROM jobs JOIN jobmanager.job_files jf ON jf.job_id = jobs.job_id
       LEFT JOIN jobmanager.print_file_states s ON s.file_id = jf.file_id GROUP BY jf.job_id`);
    await client.query(`UPDATE jobmanager.jobs j SET operations = j.operations || jsonb_build_object('print', v.printed = v.total)
       FROM verdicts v WHERE j.job_id = v.job_id AND (v.printed > 0 OR v.aborted = v.total)`);
    await client.query(`UPDATE logs.job_operations o SET status = CASE WHEN v.printed = v.total THEN 'completed'
         WHEN v.printed = 0 THEN 'aborted' END, completed_by = 'print_os', completed_at = now()
       FROM verdicts v WHERE o.job_id = v.job_id AND o.operation_id = 'print'`);
    await client.query(`UPDATE logs.imposition_operations o SET status = CASE WHEN l.status = 'PRINTED' THEN 'completed' ELSE 'aborted' END,
         completed_by = 'print_os', source_id = l.id, completed_at = now()
       FROM (SELECT DISTINCT ON (name) name, status, id FROM batch ORDER BY name, marker DESC) l
       WHERE o.imposition_id = l.name AND o.operation_id = 'print'`);
    await client.query(`INSERT INTO jobmanager.job_status_updates (job_id, operation_type, status, source_type, source_id)
       SELECT DISTINCT jf.job_id, 'print', CASE WHEN v.printed = v.total THEN 'completed' WHEN v.printed > 0 THEN 'partial' ELSE 'aborted' END,
              'print_os', b.id
       FROM batch b JOIN jobmanager.job_files jf ON jf.imposition_id = b.name JOIN verdicts v ON v.job_id = jf.job_id
       ON CONFLICT DO NOTHING`);
    await client.query(`UPDATE jobmanager.processing_markers SET last_processed_id = (SELECT coalesce(max(marker), 0) FROM batch)
       WHERE marker_type = 'print_os'`);
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}
