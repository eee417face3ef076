// CPU of one print batch, applier before against applier now, on the same database state: loads
// bench/print-os-backlog.ts's backlog, catches up its first batches (to a mid-backlog state), then
// applies the next batch again and again, each time on a fresh copy of that state, alternating the
// applier of --old-sql (migration 015's by default) and the one as migrated, and reads the
// backend's CPU (/proc) around the call. On a machine shared with
// other work, alternating calls on one state compare better than two runs of the whole bench.
// Usage: node dist/bench/support/print-batch-cpu.js [--rows N] [--impositions N] [--done N]
//        [--batch N] [--rounds N] [--old-sql path]
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { catchUp } from '../../store/job-status';
import { applyPrintRows } from '../../store/job-status-print';
import { createTestDatabase, testServerUrl } from '../../tests/support/db';
import { cloneDatabase, loadPrintBacklog } from './print-backlog-data';
import { argValue, cpuSecondsOf, median } from './stats';
import { runBench } from './run-bench';

const rowCount = argValue('--rows', 100000);
const impositionCount = argValue('--impositions', 20000);
const done = argValue('--done', 25000);
const batch = argValue('--batch', 10000);
const rounds = argValue('--rounds', 4);
/** --profile: the applier as migrated only, with its statements' times (pg_stat_statements, nested
 * statements tracked, must be loaded by the server and installed in template1). */
const profile = process.argv.includes('--profile');
const oldSqlIndex = process.argv.indexOf('--old-sql');
const migrations = path.join(__dirname, '..', '..', 'store', 'migrations');
const oldSql =
  oldSqlIndex === -1 ? path.join(migrations, '015_print_job_counts.sql') : process.argv[oldSqlIndex + 1];
const newSql = fs
  .readdirSync(migrations)
  .filter((f) => /^\d{3}_.*\.sql$/.test(f))
  .sort()
  .map((f) => path.join(migrations, f))
  .filter((f) => fs.readFileSync(f, 'utf8').includes('FUNCTION jobmanager.ff_apply_print('))
  .pop()!;

async function statements(what: 'reset' | 'report'): Promise<void> {
  const client = new Client({ connectionString: await testServerUrl() });
  await client.connect();
  try {
    if (what === 'reset') {
      await client.query('SELECT pg_stat_statements_reset()');
      return;
    }
    const rows = await client.query<{ ms: number; calls: string; rows: string; query: string }>(
      `SELECT round(total_exec_time / $1)::int AS ms, (calls / $1)::text AS calls, (rows / $1)::text AS rows,
              left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS query
       FROM pg_stat_statements WHERE query NOT LIKE '%DATABASE%' ORDER BY total_exec_time DESC LIMIT 30`,
      [rounds],
    );
    console.log('per call of the applier, as migrated (ms, calls, rows, statement):');
    for (const r of rows.rows)
      console.log(`${String(r.ms).padStart(7)} ${r.calls.padStart(7)} ${r.rows.padStart(7)}  ${r.query}`);
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const template = await createTestDatabase({ poolSize: 2 });
  try {
    await loadPrintBacklog(template.pool, rowCount, impositionCount);
    const now = new Date();
    // One batch of `done` rows: the state after them is the same whatever the batch sizes.
    await catchUp(template.pool, 'print_os', {
      batchSize: done,
      backlogBatchSize: done,
      lookBack: 0,
      now,
      maxBatches: 1,
    });
    await template.pool.query('VACUUM ANALYZE');
    await template.pool.end();
    const cpu: Record<string, number[]> = { before: [], after: [] };
    if (profile) await statements('reset');
    for (let round = 0; round < rounds; round += 1) {
      for (const [name, sql] of [
        ['before', oldSql],
        ['after', newSql],
      ] as const) {
        if (profile && name === 'before') continue;
        // A copy of the state per call: rolled-back rows would slow the next call.
        const copy = await cloneDatabase(template.name, 1);
        const db = { client: await copy.pool.connect() };
        try {
          await db.client.query(fs.readFileSync(sql, 'utf8'));
          const pid = (await db.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
          await db.client.query('BEGIN');
          const start = cpuSecondsOf(pid);
          const applied = await applyPrintRows(db.client, done, done + batch, { now });
          cpu[name].push(cpuSecondsOf(pid) - start);
          await db.client.query('COMMIT');
          if (round === 0) {
            console.log(`${name}: ${applied.result.processed} records, ${applied.result.jobs_updated} jobs`);
          }
        } finally {
          db.client.release();
          await copy.drop();
        }
      }
    }
    if (profile) await statements('report');
    for (const name of ['before', 'after']) {
      console.log(
        `${name.padEnd(7)} CPU per batch of ${batch}: median ${median(cpu[name]).toFixed(2)} s (${cpu[name].map((c) => c.toFixed(2)).join(', ')})`,
      );
    }
  } finally {
    await template.drop();
  }
}

runBench(main);
