// The database's cost of applying a batch of scans (docs/benchmarks.md, "Scan ingest", wave 4):
// batches of job-code scans of the scanner's own operation (every job known and planned, every
// claim the scanner's), as the scan-ingest bench sends them, through store/job-status-scans
// applyScanRecords, on two databases built alike: "before" runs the apply function as migrations
// 012 and 014 left it (their text, re-run over the current one), "after" the current one. Both get
// the same scans at the same clock, round after round in turn, so the machine's load falls on both;
// reported are the CPU of each database's backend per scan (/proc, as print-os-backlog does) and
// the time per batch. At the end every table the appliers write is compared between the two.
// `--before 130` runs migration 130's function on the "before" side instead (wave 4's plain path).
// `--flush`: the inbox's flush statement instead (docs/benchmarks.md, wave 5): flushes of N scans
// with a msg_id from N of 50 registered scanners, as the inbox writer sends them, through
// store/machine-inbox; "before" runs the statement for every part (as every flush did before wave
// 5) with migration 093's "last seen" trigger, "after" the current ones; then the stored scans and
// the machines' rows are compared.
// `--steps`: where a call's time goes, on one database: the backend CPU a call of the apply function
// with an empty body, cut short after the plain check, after the lock (with the commit), and whole
// (the cut versions made from the current function's text; they write nothing after the cut).
// Usage: node dist/bench/scan-apply.js [--quick] [--batches 50,150,500] [--scans N (per side and
//        size)] [--rounds N] [--repeat N (scans of one job in a row, 10 as in scan-ingest)]
//        [--jobs N] [--before 012|130] [--profile: time per statement of each side (auto_explain),
//        nested included] [--flush (--batches: scans a flush, 1,5,20 by default)]
//        [--steps (--batches: 1,10,150 by default)]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from 'pg';
import { createPool } from '../store/db';
import { applyScanRecords, type ScanRecordInput } from '../store/job-status-scans';
import { EVERY_PART, flushQuery, storeMessages, type ScanToStore } from '../store/machine-inbox';
import { createTestDatabase, type TestDatabase } from '../tests/support/db';
import { addImposition, addJobs, addRunlist, fileId } from '../tests/support/job-status-fixtures';
import { profileStatements, type StatementProfile } from './support/statement-profile';
import { runBench } from './support/run-bench';
import { argValue, cpuSecondsOf } from './support/stats';

const quick = process.argv.includes('--quick');
const profile = process.argv.includes('--profile');
const flush = process.argv.includes('--flush');
const steps = process.argv.includes('--steps');
const batchIndex = process.argv.indexOf('--batches');
const batchSizes =
  batchIndex === -1
    ? flush
      ? [1, 5, 20]
      : steps
        ? [1, 10, 150]
        : [50, 150, 500]
    : process.argv[batchIndex + 1].split(',').map((s) => Number(s));
const scansPerSize = argValue('--scans', quick ? 1500 : 6000);
const rounds = argValue('--rounds', quick ? 2 : 4);
const repeat = argValue('--repeat', 10);
const jobCount = argValue('--jobs', 500);
const beforeIndex = process.argv.indexOf('--before');
const beforeWhich = beforeIndex === -1 ? '012' : process.argv[beforeIndex + 1];

const MIGRATIONS = path.join(__dirname, '..', 'store', 'migrations');

/**
 * The apply functions "before": as migrations 012 (ff_apply_scan_records) and 014 (ff_apply_scans)
 * defined them (the default), or as migration 130 left them (`--before 130`, wave 4's plain path).
 */
/** A function's text as a migration defined it. */
function functionIn(file: string, name: string): string {
  const text = fs.readFileSync(path.join(MIGRATIONS, file), 'utf8');
  const match = new RegExp(
    `CREATE OR REPLACE FUNCTION ${name.replace('.', '\\.')}\\([\\s\\S]*?\\nEND \\$\\$;`,
  ).exec(text);
  if (!match) throw new Error(`no ${name} in ${file}`);
  return match[0];
}

function functionsBefore(which: string): string[] {
  const read = (file: string, name: string): string => functionIn(file, `jobmanager.${name}`);
  if (which === '130') return [read('130_scan_batch_plain_path.sql', 'ff_apply_scan_records')];
  if (which === '012')
    return [
      read('014_missing_operation_rows.sql', 'ff_apply_scans'),
      read('012_job_status_apply.sql', 'ff_apply_scan_records'),
    ];
  throw new Error(`--before ${which}: 130 or 012`);
}

interface Side {
  name: string;
  db: TestDatabase;
  /** The one connection the batches use (made after the plant, so a profile sees only them). */
  pool?: Pool;
  cpu: number;
  ms: number[];
  scans: number;
  statements?: StatementProfile;
}

async function backendCpu(pool: Pool): Promise<number> {
  const pids = await pool.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database()',
  );
  return pids.rows.reduce((sum, r) => sum + cpuSecondsOf(r.pid), 0);
}

/** A plant: jobs with planned operations, their files in impositions, and runlists of other jobs. */
async function plant(pool: Pool, jobIds: string[]): Promise<void> {
  await addJobs(pool, jobIds);
  for (let i = 0; i < jobIds.length; i += 5)
    await addImposition(
      pool,
      `IMP-${i}`,
      jobIds.slice(i, i + 5).map((j) => fileId(j, 1)),
    );
  // Jobs on runlists, never scanned here: the lookup of a scanned job's runlists finds none.
  const others = Array.from({ length: 200 }, (_, i) => `7000_${i}`);
  await addJobs(pool, others);
  for (let r = 0; r < 20; r += 1) {
    const imps: string[] = [];
    for (let k = 0; k < 2; k += 1) {
      const imp = `IMP-RL-${r}-${k}`;
      await addImposition(
        pool,
        imp,
        others.slice(r * 10 + k * 5, r * 10 + k * 5 + 5).map((j) => fileId(j, 1)),
      );
      imps.push(imp);
    }
    await addRunlist(pool, `RL-${r}`, imps);
  }
  // The mapping's file ids are parsed as a running plant's are.
  await pool.query(
    `UPDATE jobmanager.job_files SET job_id = substring(file_id from '^FILE_[^_]+_Labex_(.*)_[^_]+$')
     WHERE job_id IS NULL`,
  );
  // The plant's tables, not the ledger and status rows: a plant's are large and analyzed as they
  // grow, and statistics taken while they were empty would have every plan think them empty.
  await pool.query(
    `ANALYZE jobmanager.jobs, logs.job_operations, jobmanager.job_files, logs.imposition_file_mapping,
             logs.production_planner_paths, logs.imposition_operations, logs.operation_catalog`,
  );
}

/**
 * Makes batches of job-code scans (`coating`) with increasing ids, 3 ms apart, `repeat` scans of a
 * job in a row, and the clock each batch is applied at (50 ms after its last scan).
 */
function scanBatches(jobIds: string[]): (size: number) => { scans: ScanRecordInput[]; now: Date } {
  let nextId = 1;
  let clock = Date.UTC(2026, 11, 2, 6);
  return (size) => {
    const scans: ScanRecordInput[] = [];
    for (let k = 0; k < size; k += 1) {
      const n = nextId;
      nextId += 1;
      clock += 3;
      scans.push({
        scan_id: n,
        code_text: `${jobIds[Math.floor(n / repeat) % jobIds.length]}_1`,
        operations: ['coating'],
        scanned_at: new Date(clock),
      });
    }
    return { scans, now: new Date(clock + 50) };
  };
}

async function main(): Promise<void> {
  const jobIds = Array.from({ length: jobCount }, (_, i) => `${9000 + Math.floor(i / 100)}_${i % 100}`);
  const before: Side = {
    name: 'before',
    db: await createTestDatabase({ poolSize: 1 }),
    cpu: 0,
    ms: [],
    scans: 0,
  };
  const after: Side = {
    name: 'after',
    db: await createTestDatabase({ poolSize: 1 }),
    cpu: 0,
    ms: [],
    scans: 0,
  };
  try {
    for (const sql of functionsBefore(beforeWhich)) await before.db.pool.query(sql);
    for (const side of [before, after]) {
      await plant(side.db.pool, jobIds);
      side.pool = createPool(side.db.url, { max: 1 });
      if (profile) side.statements = profileStatements(side.pool);
    }
    const batch = scanBatches(jobIds);
    const run = async (side: Side, scans: ScanRecordInput[], now: Date): Promise<void> => {
      const started = performance.now();
      const result = await applyScanRecords(side.pool!, scans, { now, flowVersion: 'bench' });
      side.ms.push(performance.now() - started);
      if (result.applied !== scans.length) throw new Error(`${side.name}: ${result.skipped} skipped`);
    };
    // Warm-up: the plans of a session are made at its first batches.
    for (let i = 0; i < 3; i += 1) {
      const b = batch(50);
      await run(before, b.scans, b.now);
      await run(after, b.scans, b.now);
    }

    console.log(
      `scan-apply: before = migration ${beforeWhich}'s apply function; ${jobCount} jobs, scans of one job ${repeat} in a row, ${scansPerSize} scans per side and batch size in ${rounds} rounds; load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    for (const size of batchSizes) {
      for (const side of [before, after]) {
        side.cpu = 0;
        side.ms = [];
        side.scans = 0;
      }
      const perRound = Math.max(1, Math.round(scansPerSize / rounds / size));
      for (let r = 0; r < rounds; r += 1) {
        const batches = Array.from({ length: perRound }, () => batch(size));
        // Alternate which side goes first, so a change of load falls on both alike.
        for (const side of r % 2 === 0 ? [before, after] : [after, before]) {
          const cpu0 = await backendCpu(side.pool!);
          for (const b of batches) await run(side, b.scans, b.now);
          side.cpu += (await backendCpu(side.pool!)) - cpu0;
          side.scans += perRound * size;
        }
      }
      const line = (side: Side): string => {
        const sorted = [...side.ms].sort((a, b) => a - b);
        const p50 = sorted[Math.floor(sorted.length / 2)];
        return `${side.name.padEnd(6)} ${((side.cpu * 1e6) / side.scans).toFixed(0).padStart(5)} µs CPU a scan  batch p50 ${p50.toFixed(1).padStart(6)} ms  (${side.scans} scans, backend CPU ${side.cpu.toFixed(2)} s)`;
      };
      console.log(`batches of ${size}:`);
      console.log(`  ${line(before)}`);
      console.log(`  ${line(after)}`);
      console.log(
        `  after / before: CPU a scan ${(after.cpu / after.scans / (before.cpu / before.scans)).toFixed(2)}x; load average ${os.loadavg()[0].toFixed(2)}`,
      );
    }

    // Sameness: every table the scan appliers write, row for row.
    const tables: Array<[string, string]> = [
      [
        'job_status_updates',
        `SELECT update_id, job_id, operation_type, status, source_type, source_id, notes, flow_version, created_at, updated_at
         FROM jobmanager.job_status_updates ORDER BY update_id`,
      ],
      [
        'processed_source_records',
        'SELECT * FROM jobmanager.processed_source_records ORDER BY source_type, source_id',
      ],
      [
        'job_operations',
        `SELECT job_operation_id, job_id, version_tag, operation_id, status, completed_at, completed_by, source_id,
                notes, flow_version, CASE WHEN completed_at IS NOT NULL THEN updated_at END AS updated_at
         FROM logs.job_operations ORDER BY job_operation_id`,
      ],
      [
        'imposition_operations',
        `SELECT imposition_operation_id, status, completed_at, completed_by, source_id, notes, flow_version,
                CASE WHEN completed_at IS NOT NULL THEN updated_at END AS updated_at
         FROM logs.imposition_operations ORDER BY imposition_operation_id`,
      ],
      [
        'job_operation_claims',
        'SELECT * FROM jobmanager.job_operation_claims ORDER BY job_id, operation_name',
      ],
      [
        'jobs',
        `SELECT job_id, version_tag, operations, CASE WHEN operations <> '{}' THEN updated_at END AS updated_at
         FROM jobmanager.jobs ORDER BY job_id`,
      ],
    ];
    let same = true;
    for (const [name, sql] of tables) {
      const a = JSON.stringify((await before.db.pool.query(sql)).rows);
      const b = JSON.stringify((await after.db.pool.query(sql)).rows);
      if (a !== b) {
        same = false;
        console.log(`DIFFERENT: ${name}`);
      }
    }
    console.log(same ? 'every table written is the same on both sides' : 'the sides differ');
    if (!same) process.exitCode = 1;
    if (profile)
      for (const side of [before, after]) {
        console.log(`\nstatements, ${side.name}:`);
        console.log(side.statements!.report(25));
      }
  } finally {
    await before.pool?.end();
    await after.pool?.end();
    await before.db.drop();
    await after.db.drop();
  }
}

/**
 * The flush statement: flushes of N scans from N scanners (by machine, as the inbox writer sends
 * them), each its own transaction as the writer's are, on two databases: "before" runs the one
 * statement for every part and migration 093's "last seen" trigger, "after" the current ones.
 */
async function flushMain(): Promise<void> {
  const scanners = Array.from({ length: 50 }, (_, i) => `scanner-${String(i).padStart(2, '0')}`);
  const sides = [] as Array<{ name: string; db: TestDatabase; pool?: Pool; cpu: number; ms: number[] }>;
  try {
    for (const name of ['before', 'after']) {
      const db = await createTestDatabase({ poolSize: 1 });
      sides.push({ name, db, cpu: 0, ms: [] });
      await db.pool.query(
        `INSERT INTO floorflow.machines (machine_id, kind, secret_hash, secret_sealed)
         SELECT m, 'scanner', 'bench', 'bench' FROM unnest($1::text[]) AS m`,
        [scanners],
      );
      if (name === 'before')
        await db.pool.query(functionIn('093_machine_last_seen.sql', 'floorflow.machines_seen_in_rows'));
    }
    const [before, after] = sides;
    const store: Record<string, (pool: Pool, scans: ScanToStore[]) => Promise<unknown>> = {
      before: (pool, scans) => pool.query(flushQuery({ scans }, EVERY_PART)),
      after: (pool, scans) => storeMessages(pool, { scans }),
    };
    for (const side of sides) side.pool = createPool(side.db.url, { max: 1 });
    let msg = 0;
    let clock = Date.UTC(2026, 11, 2, 6);
    const flushOf = (size: number): ScanToStore[] => {
      // 3 ms apart, as scanners at 1,000 scans/s: "last seen" is due about once a second a machine.
      clock += 3;
      const scans: ScanToStore[] = [];
      for (let k = 0; k < size; k += 1) {
        msg += 1;
        scans.push({
          machineId: scanners[msg % scanners.length],
          scan: { code_text: `9000_${msg % 100}_1`, operations: ['coating'], msg_id: `m${msg}` },
          receivedAt: new Date(clock),
        });
      }
      return scans.sort((a, b) => (a.machineId < b.machineId ? -1 : a.machineId > b.machineId ? 1 : 0));
    };
    for (let i = 0; i < 20; i += 1) {
      const scans = flushOf(5);
      for (const side of sides) await store[side.name](side.pool!, scans);
    }
    console.log(
      `scan-apply --flush: before = one statement for every part and migration 093's trigger; 50 scanners, ${scansPerSize} scans per side and flush size in ${rounds} rounds; load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    for (const size of batchSizes) {
      for (const side of sides) {
        side.cpu = 0;
        side.ms = [];
      }
      const perRound = Math.max(1, Math.round(scansPerSize / rounds / size));
      for (let r = 0; r < rounds; r += 1) {
        const flushes = Array.from({ length: perRound }, () => flushOf(size));
        for (const side of r % 2 === 0 ? [before, after] : [after, before]) {
          const cpu0 = await backendCpu(side.pool!);
          for (const scans of flushes) {
            const started = performance.now();
            await store[side.name](side.pool!, scans);
            side.ms.push(performance.now() - started);
          }
          side.cpu += (await backendCpu(side.pool!)) - cpu0;
        }
      }
      const flushes = perRound * rounds;
      const line = (side: (typeof sides)[number]): string => {
        const sorted = [...side.ms].sort((a, b) => a - b);
        return `${side.name.padEnd(6)} ${((side.cpu * 1e6) / flushes).toFixed(0).padStart(5)} µs CPU a flush, ${((side.cpu * 1e6) / flushes / size).toFixed(0).padStart(4)} a scan  flush p50 ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} ms  (${flushes} flushes, backend CPU ${side.cpu.toFixed(2)} s)`;
      };
      console.log(`flushes of ${size}:`);
      console.log(`  ${line(before)}`);
      console.log(`  ${line(after)}`);
      console.log(
        `  after / before: CPU a flush ${(after.cpu / before.cpu).toFixed(2)}x; load average ${os.loadavg()[0].toFixed(2)}`,
      );
    }
    let same = true;
    for (const sql of [
      `SELECT scan_id, code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at
       FROM jobmanager.scanned_codes ORDER BY scan_id`,
      'SELECT machine_id, last_seen_at, last_status, last_status_at FROM floorflow.machines ORDER BY machine_id',
    ]) {
      const a = JSON.stringify((await before.db.pool.query(sql)).rows);
      const b = JSON.stringify((await after.db.pool.query(sql)).rows);
      if (a !== b) {
        same = false;
        console.log(`DIFFERENT: ${sql.slice(0, 60)}`);
      }
    }
    console.log(same ? 'the stored scans and the machines are the same on both sides' : 'the sides differ');
    if (!same) process.exitCode = 1;
  } finally {
    for (const side of sides) {
      await side.pool?.end();
      await side.db.drop();
    }
  }
}

/**
 * The apply function's cost a call, step by step: versions of it cut short (a RETURN placed before
 * a step, found by the comment or statement that starts it) take turns on one database with the
 * whole function, round by round, so the machine's load falls on all alike.
 */
async function stepsMain(): Promise<void> {
  const jobIds = Array.from({ length: jobCount }, (_, i) => `${9000 + Math.floor(i / 100)}_${i % 100}`);
  const db = await createTestDatabase({ poolSize: 1 });
  let pool: Pool | undefined;
  try {
    await plant(db.pool, jobIds);
    const whole = (
      await db.pool.query<{ def: string }>(
        `SELECT pg_get_functiondef('jobmanager.ff_apply_scan_records'::regproc) AS def`,
      )
    ).rows[0].def;
    const cutBefore = (marker: string): string | undefined => {
      const at = whole.indexOf(marker);
      return at === -1 ? undefined : `${whole.slice(0, at)}RETURN;\n    ${whole.slice(at)}`;
    };
    const body = whole.indexOf('BEGIN');
    const variants: Array<{ name: string; text: string | undefined }> = [
      { name: 'the call itself (empty body)', text: `${whole.slice(0, body)}BEGIN RETURN; END $function$` },
      { name: '+ the plain check', text: cutBefore('IF NOT v_plain THEN') },
      { name: '+ the lock and the commit', text: cutBefore('-- The ledger rows before any effect') },
      { name: '+ the writes (whole)', text: whole },
    ];
    pool = createPool(db.url, { max: 1 });
    const batch = scanBatches(jobIds);
    console.log(
      `scan-apply --steps: ${jobCount} jobs, scans of one job ${repeat} in a row, ${scansPerSize} scans per step and batch size in ${rounds} rounds; load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    for (const size of batchSizes) {
      const cpu = variants.map(() => 0);
      const calls = variants.map(() => 0);
      const perRound = Math.max(1, Math.round(scansPerSize / rounds / size));
      for (let r = 0; r < rounds; r += 1)
        for (const [i, variant] of variants.entries()) {
          if (!variant.text) continue;
          await pool.query(variant.text);
          // The first calls after a new text plan its statements again.
          for (let w = 0; w < 3; w += 1) {
            const b = batch(size);
            await applyScanRecords(pool, b.scans, { now: b.now, flowVersion: 'bench' });
          }
          const cpu0 = await backendCpu(pool);
          for (let k = 0; k < perRound; k += 1) {
            const b = batch(size);
            await applyScanRecords(pool, b.scans, { now: b.now, flowVersion: 'bench' });
          }
          cpu[i] += (await backendCpu(pool)) - cpu0;
          calls[i] += perRound;
        }
      console.log(`batches of ${size}: backend CPU a call (a scan)`);
      for (const [i, variant] of variants.entries())
        console.log(
          `  ${variant.name.padEnd(30)} ${
            variant.text
              ? `${((cpu[i] * 1e6) / calls[i]).toFixed(0).padStart(6)} µs (${((cpu[i] * 1e6) / calls[i] / size).toFixed(0)})`
              : 'not found in the current function'
          }`,
        );
    }
    await pool.query(whole);
  } finally {
    await pool?.end();
    await db.drop();
  }
}

runBench(flush ? flushMain : steps ? stepsMain : main);
