// Proof that a new print applier writes what the one before it wrote: loads a print OS backlog
// shaped like bench/print-os-backlog.ts's (plus what that bench never meets: unknown jobs, file
// ids that name no job, jobs and impositions without a planned print row, claims already stored
// by print OS, the scanner and the API, and record times out of marker order so some claims lose),
// catches it up on two copies of the same database, one with the applier as migration 015 (and
// 100's claims) left it, one with the applier as migrated now, at the same clock, and compares
// every table the apply writes by checksum (job_status_updates with and without its ids).
// Usage: node dist/bench/support/print-sameness.js [--rows N] [--impositions N] [--batch N]
//        [--backlog-batch N] [--old-sql path: the migration that defines the applier before]
//        [--bench-data: the bench's own backlog (bench/support/print-backlog-data.ts) instead]
import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import { catchUp } from '../../store/job-status';
import { createTestDatabase } from '../../tests/support/db';
import { cloneDatabase, loadPrintBacklog } from './print-backlog-data';
import { argValue } from './stats';
import { runBench } from './run-bench';

const rowCount = argValue('--rows', 20000);
const impositionCount = argValue('--impositions', 4000);
const batchSize = argValue('--batch', 1000);
const backlogBatch = argValue('--backlog-batch', batchSize * 10);
const benchData = process.argv.includes('--bench-data');
const oldSqlIndex = process.argv.indexOf('--old-sql');
const oldSql =
  oldSqlIndex === -1
    ? path.join(__dirname, '..', '..', 'store', 'migrations', '015_print_job_counts.sql')
    : process.argv[oldSqlIndex + 1];

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

async function load(pool: Pool): Promise<void> {
  const random = rng(7);
  const jobCount = impositionCount * 2;
  const jobId = (i: number): string => `${4000 + Math.floor(i / 1000)}_${i % 1000}`;
  // Jobs past jobCount are named by files but not in jobmanager.jobs (unknown jobs).
  const named = Math.round(jobCount * 1.02);
  const mapping: Array<[string, string]> = [];
  const fileCounter = new Map<number, number>();
  for (let i = 0; i < impositionCount; i += 1) {
    const files = 3 + Math.floor(random() * 6);
    for (let f = 0; f < files; f += 1) {
      if (random() < 0.005) {
        mapping.push([`IMP-${i}`, `SCAN_${i}_${f}.pdf`]); // names no job
        continue;
      }
      const job = Math.floor(random() * named);
      const n = (fileCounter.get(job) ?? 0) + 1;
      fileCounter.set(job, n);
      mapping.push([`IMP-${i}`, `FILE_1_Labex_${jobId(job)}_${n}`]);
    }
  }
  const jobs = Array.from({ length: jobCount }, (_, i) => jobId(i));
  await pool.query(
    `INSERT INTO jobmanager.jobs (job_id, version_tag, operations)
     SELECT j, '1', CASE WHEN n % 50 = 0 THEN '{"print": true}'::jsonb ELSE '{}'::jsonb END
     FROM unnest($1::text[]) WITH ORDINALITY AS u(j, n)`,
    [jobs],
  );
  // One job in 200 has no planned print row.
  await pool.query(
    `INSERT INTO logs.job_operations (job_operation_id, job_id, version_tag, operation_id)
     SELECT j || ':print', j, '1', 'print' FROM unnest($1::text[]) WITH ORDINALITY AS u(j, n) WHERE n % 200 <> 7`,
    [jobs],
  );
  // Claims already stored: print OS (some later than the backlog's records), the scanner, the API.
  await pool.query(
    `INSERT INTO jobmanager.job_operation_claims (job_id, operation_name, value, source_type, source_id, effective_at)
     SELECT j, 'print', n % 3 = 0, CASE n % 3 WHEN 0 THEN 'print_os' WHEN 1 THEN 'scanner' ELSE 'api' END,
            CASE WHEN n % 3 = 2 THEN NULL ELSE 900000000 + n END,
            timestamptz '2026-01-01 00:00:00+00' + (n % 97) * interval '1 hour'
     FROM unnest($1::text[]) WITH ORDINALITY AS u(j, n) WHERE n % 40 = 3`,
    [jobs],
  );
  const chunk = 20000;
  for (let i = 0; i < mapping.length; i += chunk) {
    const part = mapping.slice(i, i + chunk);
    await pool.query(
      `INSERT INTO logs.imposition_file_mapping (imposition_id, file_id) SELECT * FROM unnest($1::text[], $2::text[])`,
      [part.map((m) => m[0]), part.map((m) => m[1])],
    );
  }
  // One imposition in 100 has no planned print row.
  const imps = Array.from({ length: impositionCount }, (_, i) => `IMP-${i}`);
  await pool.query(
    `INSERT INTO logs.imposition_operations (imposition_operation_id, imposition_id, operation_id)
     SELECT i || ':print', i, 'print' FROM unnest($1::text[]) WITH ORDINALITY AS u(i, n) WHERE n % 100 <> 11`,
    [imps],
  );
  for (let i = 0; i < rowCount; i += chunk) {
    const n = Math.min(chunk, rowCount - i);
    // A few records of impositions nobody mapped; times mostly in marker order, some hours off.
    const names = Array.from({ length: n }, () =>
      random() < 0.002 ? `IMP-X${Math.floor(random() * 100)}` : imps[Math.floor(random() * impositionCount)],
    );
    const statuses = Array.from({ length: n }, () => (random() < 0.85 ? 'PRINTED' : 'ABORTED'));
    const offsets = Array.from({ length: n }, (_, k) => {
      const r = random();
      return (i + k) * 60 + (r < 0.1 ? -Math.floor(random() * 7200) * 60 : 0);
    });
    const markers = Array.from({ length: n }, (_, k) => i + k + 1);
    await pool.query(
      `INSERT INTO jobmanager."print OS" (name, status, marker, job_complete_time, created_at, updated_at)
       SELECT u.name, u.status, u.marker, timestamptz '2026-01-01 00:00:00+00' + u.off * interval '1 second',
              timestamptz '2026-01-01 00:00:00+00', timestamptz '2026-01-01 00:00:00+00'
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[]) AS u(name, status, marker, off)`,
      [names, statuses, markers, offsets],
    );
  }
  await pool.query('ANALYZE');
}

/** Every table the print applier writes, as rows of text in a fixed order. */
const TABLES: Record<string, string> = {
  'job_status_updates (with ids)': `SELECT update_id, job_id, operation_type, status, source_type, source_id, notes,
      flow_version, created_at, updated_at FROM jobmanager.job_status_updates`,
  'job_status_updates (without ids)': `SELECT job_id, operation_type, status, source_type, source_id, notes,
      flow_version, created_at, updated_at FROM jobmanager.job_status_updates`,
  processed_source_records: 'SELECT * FROM jobmanager.processed_source_records',
  job_operation_claims: 'SELECT * FROM jobmanager.job_operation_claims',
  'jobs (operations)': 'SELECT job_id, operations, updated_at FROM jobmanager.jobs',
  'logs.job_operations': 'SELECT * FROM logs.job_operations',
  'logs.imposition_operations': 'SELECT * FROM logs.imposition_operations',
  print_file_states: 'SELECT * FROM jobmanager.print_file_states',
  print_job_counts: 'SELECT * FROM jobmanager.print_job_counts',
  processing_markers: 'SELECT * FROM jobmanager.processing_markers',
};

async function checksums(pool: Pool): Promise<Map<string, string>> {
  const sums = new Map<string, string>();
  for (const [table, sql] of Object.entries(TABLES)) {
    const result = await pool.query<{ rows: string; sum: string }>(
      `SELECT count(*)::text AS rows, coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-') AS sum
       FROM (${sql}) t`,
    );
    sums.set(table, `${result.rows[0].rows} rows ${result.rows[0].sum}`);
  }
  return sums;
}

async function run(template: string, setup: string | null, now: Date): Promise<Map<string, string>> {
  const db = await cloneDatabase(template, 2);
  try {
    if (setup !== null) await db.pool.query(setup);
    const started = Date.now();
    const result = await catchUp(db.pool, 'print_os', {
      batchSize,
      backlogBatchSize: backlogBatch,
      lookBack: 1000,
      now,
      flowVersion: 'sameness',
      maxBatches: 1e6,
    });
    console.log(
      `  ${result.processed} records (${result.applied} applied, ${result.skipped} skipped) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    // What the backlog exercised, so a sameness that never met a rule says so.
    const cases = await db.pool.query<{ what: string; n: string }>(
      `SELECT what, count(*)::text AS n FROM (
         SELECT CASE WHEN notes LIKE '%not applied%' THEN 'claims not applied'
                     WHEN status = 'partial' THEN 'partial' WHEN status = 'aborted' THEN 'aborted'
                     ELSE 'completed' END
                || CASE WHEN notes LIKE '%skipped%' OR notes LIKE '%no planned print%' THEN ', with notes of parts left out' ELSE '' END AS what
         FROM jobmanager.job_status_updates
         UNION ALL
         SELECT 'skipped: ' || regexp_replace(reason, '^(\\D+?)[ :].*$', '\\1') FROM jobmanager.processed_source_records
         WHERE outcome = 'skipped') c GROUP BY what ORDER BY what`,
    );
    console.log(`  ${cases.rows.map((r) => `${r.what} ${r.n}`).join('; ')}`);
    return await checksums(db.pool);
  } finally {
    await db.drop();
  }
}

async function main(): Promise<void> {
  console.log(
    `print sameness: ${rowCount} rows over ${impositionCount} impositions${benchData ? " (the bench's data)" : ''}, batches of ${batchSize} growing to ${backlogBatch}`,
  );
  const template = await createTestDatabase({ poolSize: 2 });
  if (benchData) await loadPrintBacklog(template.pool, rowCount, impositionCount);
  else await load(template.pool);
  await template.pool.end();
  const now = new Date('2026-06-01T12:00:00Z');
  try {
    console.log(`before (${path.basename(oldSql)}):`);
    const before = await run(template.name, fs.readFileSync(oldSql, 'utf8'), now);
    console.log('after (as migrated):');
    const after = await run(template.name, null, now);
    let same = true;
    for (const table of Object.keys(TABLES)) {
      const ok = before.get(table) === after.get(table);
      same &&= ok;
      console.log(
        `${ok ? 'same     ' : 'DIFFERENT'} ${table}: ${before.get(table)}${ok ? '' : ` / ${after.get(table)}`}`,
      );
    }
    console.log(same ? 'every table the same' : 'TABLES DIFFER');
    if (!same) process.exitCode = 1;
  } finally {
    await template.drop();
  }
}

runBench(main);
