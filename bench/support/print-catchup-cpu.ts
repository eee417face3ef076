// Database CPU of a whole print OS backlog, three ways interleaved in one run: (b) the hand-written
// pass of bench/print-os-backlog.ts, ours as before (the applier of --old-sql, migration 126's by
// default, with batches doubling from the batch size up to --old-backlog-batch, 10 times the batch
// size by default, as catchUp grew them before wave 5), and ours now (catchUp as the poller runs it,
// up to --backlog-batch). Each run starts from a fresh copy
// of the same backlog; rounds alternate, so load that comes and goes hits all three alike. On a
// machine shared with other work this compares better than two runs of the whole bench.
// Usage: node dist/bench/support/print-catchup-cpu.js [--rows N] [--impositions N] [--batch N]
//        [--backlog-batch N] [--old-backlog-batch N] [--rounds N] [--old-sql path]
import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import { BACKLOG_BATCH_FACTOR, catchUp, processBatch, type BatchOptions } from '../../store/job-status';
import { createTestDatabase, stopTestServer } from '../../tests/support/db';
import { cloneDatabase, loadPrintBacklog } from './print-backlog-data';
import { handWritten } from './print-hand-written';
import { argValue, cpuSecondsOf, median, ratio } from './stats';

const rowCount = argValue('--rows', 100000);
const impositionCount = argValue('--impositions', 20000);
const batchSize = argValue('--batch', 1000);
const backlogBatch = argValue('--backlog-batch', batchSize * BACKLOG_BATCH_FACTOR);
const oldBacklogBatch = argValue('--old-backlog-batch', batchSize * 10);
const rounds = argValue('--rounds', 3);
const oldSqlIndex = process.argv.indexOf('--old-sql');
const oldSql =
  oldSqlIndex === -1
    ? path.join(__dirname, '..', '..', 'store', 'migrations', '126_print_one_pass.sql')
    : process.argv[oldSqlIndex + 1];

type Version = 'hand-written' | 'before' | 'now';

/** Ours as before: batches double while they come back full, up to the backlog size. */
async function catchUpBefore(pool: Pool, options: BatchOptions): Promise<void> {
  let size = options.batchSize;
  for (;;) {
    const batch = await processBatch(pool, 'print_os', { ...options, batchSize: size });
    if (!batch.more) return;
    size = Math.min(oldBacklogBatch, size * 2);
  }
}

async function run(template: string, version: Version): Promise<{ cpu: number; seconds: number }> {
  // One connection, so its backend did all the work.
  const copy = await cloneDatabase(template, 1);
  try {
    const client = await copy.pool.connect();
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    if (version === 'before') await client.query(fs.readFileSync(oldSql, 'utf8'));
    client.release();
    const options = { batchSize, backlogBatchSize: backlogBatch, lookBack: 1000, now: new Date() };
    const cpu0 = cpuSecondsOf(pid);
    const start = Date.now();
    if (version === 'hand-written') await handWritten(copy.pool);
    else if (version === 'before') await catchUpBefore(copy.pool, options);
    else await catchUp(copy.pool, 'print_os', { ...options, maxBatches: 1e6 });
    return { cpu: cpuSecondsOf(pid) - cpu0, seconds: (Date.now() - start) / 1000 };
  } finally {
    await copy.drop();
  }
}

async function main(): Promise<void> {
  const template = await createTestDatabase({ poolSize: 2 });
  try {
    await loadPrintBacklog(template.pool, rowCount, impositionCount);
    await template.pool.end();
    console.log(
      `print OS backlog: ${rowCount} rows over ${impositionCount} impositions, batches of ${batchSize}; before: ${path.basename(oldSql)}, doubling up to ${oldBacklogBatch}; now: up to ${backlogBatch}`,
    );
    const cpu: Record<Version, number[]> = { 'hand-written': [], before: [], now: [] };
    const seconds: Record<Version, number[]> = { 'hand-written': [], before: [], now: [] };
    for (let round = 0; round < rounds; round += 1) {
      for (const version of ['hand-written', 'before', 'now'] as const) {
        const r = await run(template.name, version);
        cpu[version].push(r.cpu);
        seconds[version].push(r.seconds);
        const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
        console.log(
          `round ${round + 1} ${version.padEnd(12)} database CPU ${r.cpu.toFixed(2)} s, ${r.seconds.toFixed(1)} s (load ${load})`,
        );
      }
    }
    for (const version of ['hand-written', 'before', 'now'] as const) {
      console.log(
        `${version.padEnd(12)} database CPU median ${median(cpu[version]).toFixed(2)} s (${cpu[version].map((c) => c.toFixed(2)).join(', ')}), time median ${median(seconds[version]).toFixed(1)} s`,
      );
    }
    const per = (version: Version, i: number) => cpu[version][i] / cpu['hand-written'][i];
    const rows = Array.from({ length: rounds }, (_, i) => i);
    console.log(
      `ours / hand-written by database CPU, per round: before ${rows.map((i) => per('before', i).toFixed(2)).join(', ')}; now ${rows.map((i) => per('now', i).toFixed(2)).join(', ')}`,
    );
    console.log(
      `medians: before / hand-written ${ratio(median(cpu.before), median(cpu['hand-written']))}, now / hand-written ${ratio(median(cpu.now), median(cpu['hand-written']))}, now / before ${ratio(median(cpu.now), median(cpu.before))} (by time: ${ratio(median(seconds.now), median(seconds['hand-written']))} of hand-written)`,
    );
  } finally {
    await template.drop();
  }
}

// The embedded database a run without FLOORFLOW_TEST_DATABASE_URL started keeps the process alive.
main()
  .then(() => stopTestServer())
  .catch((err: unknown) => {
    console.error(err);
    void stopTestServer().finally(() => process.exit(1));
  });
