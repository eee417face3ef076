// Catching up a "print OS" backlog: 100,000 rows over 20,000 impositions of 3-8 files,
// processed three ways in the same run, each from an identical copy of the database:
//   (a) naive: the documented algorithm one row at a time, one transaction per row and a query per
//       file and per job (with the same indexes as ours, so the difference is the shape);
//   (b) hand-written SQL: the whole backlog in one transaction of a few set-based statements
//       (final states only: no per-record outcomes, no processed-record ledger);
//   (c) ours: store/job-status catchUp, batches of 1000 (growing on the backlog, as the poller's do)
//       with every exactly-once guarantee.
// The naive path is measured on the first rows for --naive-seconds and reported as rows/s.
// Besides the time, (b) and (c) report the CPU seconds of the database backends that did the work
// (read from /proc when the server runs on this machine): on a machine shared with other work the
// time follows the load, the CPU far less.
// Usage: node dist/bench/print-os-backlog.js [--quick] [--rows N] [--impositions N] [--batch N] [--backlog-batch N]
//        [--profile: time per statement of (c), nested ones included (auto_explain)] [--ours-only]
import type { Pool } from 'pg';
import { jobIdOfFile, judgeJobPrint } from '../core/job-status';
import { BACKLOG_BATCH_FACTOR, catchUp } from '../store/job-status';
import { createTestDatabase, stopTestServer } from '../tests/support/db';
import { cloneDatabase, loadPrintBacklog } from './support/print-backlog-data';
import { handWritten } from './support/print-hand-written';
import { profileStatements, type StatementProfile } from './support/statement-profile';
import { argValue, cpuSecondsOf, ratio } from './support/stats';

const quick = process.argv.includes('--quick');
const rowCount = argValue('--rows', quick ? 10000 : 100000);
const impositionCount = argValue('--impositions', quick ? 2000 : 20000);
const batchSize = argValue('--batch', 1000);
/** --backlog-batch N: how large catchUp's batches grow on the backlog (BatchOptions.backlogBatchSize). */
const backlogBatch = argValue('--backlog-batch', batchSize * BACKLOG_BATCH_FACTOR);
const naiveSeconds = argValue('--naive-seconds', quick ? 5 : 20);
const profile = process.argv.includes('--profile');
const oursOnly = process.argv.includes('--ours-only');

/**
 * CPU seconds the server's backends connected to `pool`'s database have used, NaN when the server
 * is not on this machine (or its processes are not readable). The clone's backends are all made for
 * one phase, so this is that phase's database CPU.
 */
async function databaseCpuSeconds(pool: Pool): Promise<number> {
  const pids = await pool.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database()',
  );
  try {
    return pids.rows.reduce((sum, r) => sum + cpuSecondsOf(r.pid), 0);
  } catch {
    return NaN;
  }
}

/** (a) The documented algorithm as written: per row, per file, per job. Returns rows processed. */
async function naive(pool: Pool, deadline: number): Promise<number> {
  const client = await pool.connect();
  let processed = 0;
  try {
    let last = 0;
    for (;;) {
      const rows = await client.query<{ id: string; marker: string; name: string; status: string }>(
        `SELECT id, marker, name, status FROM jobmanager."print OS" WHERE marker > $1 ORDER BY marker LIMIT 100`,
        [last],
      );
      if (rows.rows.length === 0) return processed;
      for (const row of rows.rows) {
        if (Date.now() > deadline) return processed;
        await client.query('BEGIN');
        const files = await client.query<{ file_id: string }>(
          'SELECT file_id FROM logs.imposition_file_mapping WHERE imposition_id = $1',
          [row.name],
        );
        const jobs = new Set<string>();
        for (const f of files.rows) {
          const parsed = jobIdOfFile(f.file_id);
          if (!parsed.ok) continue;
          jobs.add(parsed.job_id);
          await client.query(
            `INSERT INTO jobmanager.print_file_states (file_id, printed, aborted) VALUES ($1, $2, $3)
             ON CONFLICT (file_id) DO UPDATE SET printed = print_file_states.printed OR excluded.printed,
               aborted = print_file_states.aborted OR excluded.aborted`,
            [f.file_id, row.status === 'PRINTED', row.status === 'ABORTED'],
          );
        }
        await client.query(
          `UPDATE logs.imposition_operations SET status = $2, completed_by = 'print_os', source_id = $3, completed_at = now()
           WHERE imposition_id = $1 AND operation_id = 'print'`,
          [row.name, row.status === 'PRINTED' ? 'completed' : 'aborted', row.id],
        );
        for (const job of jobs) {
          const exists = await client.query('SELECT 1 FROM jobmanager.jobs WHERE job_id = $1', [job]);
          if (exists.rows.length === 0) continue;
          const jobFiles = await client.query<{ file_id: string }>(
            'SELECT file_id FROM jobmanager.job_files WHERE job_id = $1',
            [job],
          );
          let printed = 0;
          let aborted = 0;
          for (const jf of jobFiles.rows) {
            const state = await client.query<{ printed: boolean; aborted: boolean }>(
              'SELECT printed, aborted FROM jobmanager.print_file_states WHERE file_id = $1',
              [jf.file_id],
            );
            if (state.rows[0]?.printed) printed += 1;
            else if (state.rows[0]?.aborted) aborted += 1;
          }
          const verdict = judgeJobPrint(jobFiles.rows.length, printed, aborted);
          if (verdict.print !== undefined) {
            await client.query(
              `UPDATE jobmanager.jobs SET operations = operations || jsonb_build_object('print', $2::boolean) WHERE job_id = $1`,
              [job, verdict.print],
            );
          }
          await client.query(
            `UPDATE logs.job_operations SET notes = $2, status = $3, completed_by = 'print_os', source_id = $4, completed_at = now()
             WHERE job_id = $1 AND operation_id = 'print'`,
            [job, verdict.note, verdict.status === 'partial' ? null : verdict.status, row.id],
          );
          await client.query(
            `INSERT INTO jobmanager.job_status_updates (job_id, operation_type, status, source_type, source_id, notes)
             VALUES ($1, 'print', $2, 'print_os', $3, $4) ON CONFLICT DO NOTHING`,
            [job, verdict.status, row.id, verdict.note],
          );
        }
        await client.query(
          `UPDATE jobmanager.processing_markers SET last_processed_id = $1 WHERE marker_type = 'print_os'`,
          [row.marker],
        );
        await client.query('COMMIT');
        processed += 1;
        last = Number(row.marker);
      }
    }
  } finally {
    client.release();
  }
}

async function printedJobs(pool: Pool): Promise<Set<string>> {
  const rows = await pool.query<{ job_id: string }>(
    `SELECT job_id FROM jobmanager.jobs WHERE operations->>'print' = 'true'`,
  );
  return new Set(rows.rows.map((r) => r.job_id));
}

async function main(): Promise<void> {
  console.log(
    `print OS backlog: ${rowCount} rows over ${impositionCount} impositions (3-8 files each), batch ${batchSize}`,
  );
  const template = await createTestDatabase({ poolSize: 4 });
  const started = Date.now();
  const shape = await loadPrintBacklog(template.pool, rowCount, impositionCount);
  console.log(
    `loaded ${shape.files} files of ${shape.jobs} jobs in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  await template.pool.end();

  let aRows = 0;
  let aRate = NaN;
  let bRate = NaN;
  let bCpu = NaN;
  let bPrinted = new Set<string>();
  if (!oursOnly) {
    const a = await cloneDatabase(template.name);
    const aStart = Date.now();
    aRows = await naive(a.pool, aStart + naiveSeconds * 1000);
    aRate = aRows / ((Date.now() - aStart) / 1000);
    await a.drop();

    const b = await cloneDatabase(template.name);
    const bStart = Date.now();
    await handWritten(b.pool);
    bRate = rowCount / ((Date.now() - bStart) / 1000);
    bCpu = await databaseCpuSeconds(b.pool);
    bPrinted = await printedJobs(b.pool);
    await b.drop();
  }

  const c = await cloneDatabase(template.name);
  const statements: StatementProfile | undefined = profile ? profileStatements(c.pool) : undefined;
  const cStart = Date.now();
  const result = await catchUp(c.pool, 'print_os', {
    batchSize,
    backlogBatchSize: backlogBatch,
    lookBack: 1000,
    now: new Date(),
    maxBatches: 1e6,
  });
  const cRate = result.processed / ((Date.now() - cStart) / 1000);
  const cCpu = await databaseCpuSeconds(c.pool);
  const cPrinted = await printedJobs(c.pool);
  await c.drop();
  await template.drop();

  if (statements) console.log(`(c) time per statement (nested included):\n${statements.report()}`);
  const agree = oursOnly || (bPrinted.size === cPrinted.size && [...bPrinted].every((j) => cPrinted.has(j)));
  console.log(
    `(a) naive, one row at a time      ${aRate.toFixed(0).padStart(8)} rows/s  (${aRows} rows in ${naiveSeconds} s)`,
  );
  console.log(
    `(b) hand-written SQL, one pass    ${bRate.toFixed(0).padStart(8)} rows/s  (database CPU ${bCpu.toFixed(1)} s)`,
  );
  console.log(
    `(c) ours, batches of ${batchSize} growing to ${backlogBatch}  ${cRate.toFixed(0).padStart(8)} rows/s  (${result.processed} rows, ${result.jobs_updated} job updates, database CPU ${cCpu.toFixed(1)} s)`,
  );
  console.log(
    `ours / naive: ${ratio(cRate, aRate)}   hand-written / ours: ${ratio(bRate, cRate)} (database CPU: ${ratio(cCpu, bCpu)})`,
  );
  console.log(
    `printed jobs: ours ${cPrinted.size}, hand-written ${bPrinted.size} (${agree ? 'same jobs' : 'DIFFERENT'})`,
  );
  if (!agree) process.exitCode = 1;
}

// The embedded database a run without FLOORFLOW_TEST_DATABASE_URL started keeps the process alive.
main()
  .then(() => stopTestServer())
  .catch((err: unknown) => {
    console.error(err);
    void stopTestServer().finally(() => process.exit(1));
  });
