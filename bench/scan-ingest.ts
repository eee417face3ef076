// Scans over MQTT against the real runtime (`floorflow start` as a child process, job-status flow
// only): 50 scanners (plain sockets, bench/support/raw-scanners.ts) publish QoS 1 scans, each waiting for its PUBACK before the next (a
// scanner's natural pace). Reports sustained scans/s and p50/p99 latency from publish to the
// committed job_operations update (seen as the scan's processed_source_records row, written in the
// same transaction; observed by polling every 10 ms), and the PUBACK latency beside it.
//
// In the same run, the baseline (bench/support/node-red-baseline.ts): a plain Node-RED 4.1 with
// the stock flow `mqtt in` (the machine's Mosquitto, 127.0.0.1:1883, QoS 1) → `function` doing a
// per-message SQL update with pg, the same 50 scanners publishing to Mosquitto the same way;
// latency to its committed row is observed the same way. Prints floorflow / baseline.
// With --rate N the scanners together publish N scans/s for --seconds S (default 30) without waiting
// for PUBACKs: the latency to the applied scan at a steady load.
// Usage: node dist/bench/scan-ingest.js [--quick] [--clients N] [--scans N per client] [--rate N --seconds S]
//        [--no-baseline] [--flush-spacing MS] [--batch-spacing MS]
// --flush-spacing: the runtime's FLOORFLOW_INBOX_FLUSH_SPACING_MS; --batch-spacing: the job mapper's
// batchSpacingMs in the bench's copy of the job-status flow (leave them out for 0, as shipped).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from 'pg';
import { loadSecrets } from '../runtime/secrets';
import { MachineStore } from '../store/machines';
import { createTestDatabase, stopTestServer } from '../tests/support/db';
import { addJobs } from '../tests/support/job-status-fixtures';
import { REPO_ROOT, startRuntimeProcess, tempDir } from '../tests/support/runtime-process';
import { createBaselineTables, startNodeRedBaseline, SYSTEM_MOSQUITTO } from './support/node-red-baseline';
import { publishPacket, RawScanner } from './support/raw-scanners';
import { argValue, cpuSecondsOf, percentile } from './support/stats';

const quick = process.argv.includes('--quick');
const withBaseline = !process.argv.includes('--no-baseline');
const clients = argValue('--clients', 50);
/** --rate N: scans per second at a fixed rate (all scanners together) for --seconds S, instead of as fast as acknowledged. */
const rate = process.argv.includes('--rate') ? argValue('--rate', 1000) : undefined;
const scansPerClient =
  rate === undefined
    ? argValue('--scans', quick ? 20 : 200)
    : Math.ceil((rate * argValue('--seconds', quick ? 5 : 30)) / clients);
const flushSpacingMs = argValue('--flush-spacing', 0);
const batchSpacingMs = argValue('--batch-spacing', 0);
const POOL_SIZE = 20; // the runtime's pool; the baseline's pg pool gets the same
// A scan's packet id is its index + 1 on its scanner's connection.
if (scansPerClient > 65535) throw new Error('at most 65535 scans per scanner');
/**
 * How often the watcher polls for commits. A poll costs ~0.3 ms of CPU in PostgreSQL and as much
 * here on this machine: every 5 ms that was ~13 % of a core taken from the side under test, for
 * a resolution the latencies (hundreds of ms) do not need; every 10 ms adds 2.5 ms on average to
 * both sides' publish -> committed figures.
 */
const WATCH_MS = 10;
/** After the last PUBACK, how long the watcher waits for a commit before counting the rest lost. */
const QUIET_MS = 10000;

interface Result {
  total: number;
  committed: number[];
  acked: number[];
  seconds: number;
  /** CPU seconds the system under test (runtime or Node-RED process) used during the run. */
  cpuSeconds?: number;
  /** CPU seconds this process (the scanners and the watcher) used during the run. */
  driverCpuSeconds?: number;
  /** CPU seconds the PostgreSQL backends serving the run's database used during the run. */
  databaseCpuSeconds?: number;
  /**
   * CPU seconds of the system under test from the commit of half the scans to the last commit, and
   * the scans committed in that time: the process warmed up (its first second is mostly the JIT).
   */
  secondHalf?: { cpuSeconds: number; scans: number };
}

function flowsDir(dataDir: string): { flows: string; dashboards: string } {
  const flows = path.join(dataDir, 'flows-job-status');
  const dashboards = path.join(dataDir, 'dashboards-none');
  fs.mkdirSync(flows, { recursive: true });
  fs.mkdirSync(dashboards, { recursive: true });
  for (const file of ['config.json', 'job-status.json'])
    fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(flows, file));
  if (batchSpacingMs > 0) {
    const file = path.join(flows, 'job-status.json');
    const nodes = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<Record<string, unknown>>;
    for (const node of nodes) if (node.type === 'floorflow-job-mapper') node.batchSpacingMs = batchSpacingMs;
    fs.writeFileSync(file, JSON.stringify(nodes, null, 2));
  }
  return { flows, dashboards };
}

/** CPU seconds so far of each PostgreSQL backend connected to the pool's database, by pid. */
async function backendCpu(pool: Pool): Promise<Map<number, number>> {
  const rows = await pool.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database()',
  );
  const out = new Map<number, number>();
  for (const { pid } of rows.rows) {
    try {
      out.set(pid, cpuSecondsOf(pid));
    } catch {
      // Gone since, or on another host: not counted.
    }
  }
  return out;
}

/**
 * Has every client publish its scans (QoS 1, one in flight) while a watcher polls `committedSql`
 * (rows `{ id, msg_id }` with id > $1) every WATCH_MS. Commits arrive out of id order, so the watcher
 * reads from the highest id below which it has seen every id (ids are gapless in these runs) and
 * counts each msg_id once: each poll reads only rows it may not have seen, so the observer costs
 * the database little on either side.
 */
async function drive(
  pool: Pool,
  connections: RawScanner[],
  topicOf: (c: number) => string,
  jobIds: string[],
  committedSql: string,
  pid: number,
): Promise<Result> {
  const cpuBefore = cpuSecondsOf(pid);
  const driverBefore = process.cpuUsage();
  const backendsBefore = await backendCpu(pool);
  const published = new Map<string, number>();
  const acked: number[] = [];
  const committed: number[] = [];
  let stopWatching = false;
  let lastCommitAt = 0;
  const seen = new Set<string>();
  // Every id up to `complete` has been seen; ids above it that were seen wait in `above`.
  let complete = 0;
  const above = new Set<number>();
  const total = connections.length * scansPerClient;
  let half: { cpu: number; scans: number } | undefined;
  let secondHalf: Result['secondHalf'];
  const watcher = (async () => {
    while (!stopWatching) {
      // Prepared once per connection: each poll is then only a bind and an index range scan.
      const rows = await pool.query<{ id: string; msg_id: string }>({
        name: 'bench-watch',
        text: committedSql,
        values: [complete],
      });
      const now = performance.now();
      for (const row of rows.rows) above.add(Number(row.id));
      while (above.delete(complete + 1)) complete += 1;
      for (const row of rows.rows) {
        if (seen.has(row.msg_id)) continue;
        seen.add(row.msg_id);
        const sent = published.get(row.msg_id);
        if (sent !== undefined) {
          committed.push(now - sent);
          lastCommitAt = now;
        }
      }
      if (!half && committed.length >= total / 2) half = { cpu: cpuSecondsOf(pid), scans: committed.length };
      else if (half && !secondHalf && committed.length === total)
        secondHalf = { cpuSeconds: cpuSecondsOf(pid) - half.cpu, scans: total - half.scans };
      await new Promise((r) => setTimeout(r, WATCH_MS));
    }
  })();
  // Every scan's PUBLISH is encoded before the clock starts: the scanners cost both sides the same.
  const packets = connections.map((_client, c) =>
    Array.from({ length: scansPerClient }, (_, i) => {
      const job = jobIds[(c * scansPerClient + i) % jobIds.length];
      const payload = JSON.stringify({ code: `${job}_1`, operations: ['coating'], msg_id: `c${c}-${i}` });
      return publishPacket(topicOf(c), payload, i + 1);
    }),
  );
  let lastAckAt = 0;
  const started = performance.now();
  const publish = async (c: number, i: number): Promise<void> => {
    const sent = performance.now();
    published.set(`c${c}-${i}`, sent);
    await connections[c].publish(packets[c][i], i + 1);
    lastAckAt = performance.now();
    acked.push(lastAckAt - sent);
  };
  if (rate === undefined) {
    // Each scanner waits for its PUBACK before its next scan, as fast as the system answers.
    await Promise.all(
      connections.map(async (_client, c) => {
        for (let i = 0; i < scansPerClient; i += 1) await publish(c, i);
      }),
    );
  } else {
    // Fixed rate: the n-th scan (scanner n % clients) leaves at n / rate seconds, whether or not
    // earlier ones are acknowledged yet.
    const inFlight: Array<Promise<void>> = [];
    let n = 0;
    while (n < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
      for (; n < due; n += 1)
        inFlight.push(publish(n % connections.length, Math.floor(n / connections.length)));
      await new Promise((r) => setTimeout(r, 2));
    }
    await Promise.all(inFlight);
  }
  // Until every scan is seen committed, or none has been for QUIET_MS since the last PUBACK (the
  // rest are lost: waiting on would only spend this process's CPU polling an idle table).
  while (
    committed.length < published.size &&
    performance.now() - Math.max(lastCommitAt, lastAckAt) < QUIET_MS
  )
    await new Promise((r) => setTimeout(r, 5));
  // Up to the last commit seen, so scans that never commit do not count their wait as time.
  const seconds = ((committed.length > 0 ? lastCommitAt : performance.now()) - started) / 1000;
  stopWatching = true;
  await watcher;
  const driver = process.cpuUsage(driverBefore);
  // Backends opened during the run count in full; one closed during it is missed (pools keep theirs).
  let databaseCpuSeconds = 0;
  for (const [backend, seconds] of await backendCpu(pool))
    databaseCpuSeconds += seconds - (backendsBefore.get(backend) ?? 0);
  return {
    total,
    committed,
    acked,
    seconds,
    cpuSeconds: cpuSecondsOf(pid) - cpuBefore,
    driverCpuSeconds: (driver.user + driver.system) / 1e6,
    databaseCpuSeconds,
    secondHalf,
  };
}

function report(name: string, r: Result, ackMeaning: string, commitMeaning: string): void {
  console.log(
    `${name}: committed ${r.committed.length} of ${r.total} scans in ${r.seconds.toFixed(1)} s: ${(r.committed.length / r.seconds).toFixed(0)} scans/s`,
  );
  console.log(
    `  publish -> PUBACK (${ackMeaning}):  p50 ${percentile(r.acked, 50).toFixed(1)} ms  p99 ${percentile(r.acked, 99).toFixed(1)} ms`,
  );
  console.log(
    `  publish -> ${commitMeaning} committed:  p50 ${percentile(r.committed, 50).toFixed(1)} ms  p99 ${percentile(r.committed, 99).toFixed(1)} ms`,
  );
  if (r.cpuSeconds !== undefined)
    console.log(
      `  CPU: ${name} process ${r.cpuSeconds.toFixed(1)} s (${((r.cpuSeconds / r.seconds) * 100).toFixed(0)} % of a core, ${((r.cpuSeconds * 1e6) / Math.max(1, r.committed.length)).toFixed(0)} µs per scan); scanners and watcher ${r.driverCpuSeconds?.toFixed(1)} s; load average ${os.loadavg()[0].toFixed(2)}`,
    );
  if (r.secondHalf && r.secondHalf.scans > 0)
    console.log(
      `  CPU: ${name} process in the second half (warmed up) ${((r.secondHalf.cpuSeconds * 1e6) / r.secondHalf.scans).toFixed(0)} µs per scan`,
    );
  if (r.databaseCpuSeconds !== undefined)
    console.log(
      `  CPU: database backends ${r.databaseCpuSeconds.toFixed(1)} s (${((r.databaseCpuSeconds * 1e6) / Math.max(1, r.committed.length)).toFixed(0)} µs per scan)`,
    );
}

async function runFloorflow(jobIds: string[]): Promise<Result> {
  const db = await createTestDatabase({ poolSize: 2 });
  await addJobs(db.pool, jobIds);
  const dataDir = tempDir();
  const dirs = flowsDir(dataDir);
  const runtime = await startRuntimeProcess({
    dataDir,
    copyFlows: false,
    // e.g. BENCH_RUNTIME_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" for a CPU profile of the runtime.
    nodeArgs: process.env.BENCH_RUNTIME_NODE_ARGS?.split(' ').filter(Boolean),
    env: {
      DATABASE_URL: db.url,
      MQTT_PORT: '0',
      FLOORFLOW_FLOWS_DIR: dirs.flows,
      FLOORFLOW_DASHBOARDS_DIR: dirs.dashboards,
      FLOORFLOW_INBOX_FLUSH_SPACING_MS: String(flushSpacingMs),
    },
  });
  const machines = new MachineStore(db.pool, loadSecrets(dataDir, {}).secrets.machineSealKey);
  const connections: RawScanner[] = [];
  try {
    for (let c = 0; c < clients; c += 1) {
      const id = `bench-scanner-${c}`;
      const secret = await machines.add(id, 'scanner');
      connections.push(
        await RawScanner.connect('127.0.0.1', runtime.mqttPort, {
          clientId: id,
          username: id,
          password: secret,
        }),
      );
    }
    console.log(
      `floorflow: ${clients} scanners x ${scansPerClient} QoS 1 scans against the runtime (pid ${runtime.child.pid}); ` +
        `inbox flush spacing ${flushSpacingMs} ms, job mapper batch spacing ${batchSpacingMs} ms`,
    );
    // A scan's processed_source_records row commits with its job_operations update.
    const result = await drive(
      db.pool,
      connections,
      (c) => `floorflow/machines/bench-scanner-${c}/scan`,
      jobIds,
      `SELECT s.scan_id AS id, s.msg_id FROM jobmanager.processed_source_records p
       JOIN jobmanager.scanned_codes s ON s.scan_id = p.source_id
       WHERE p.source_type = 'scanner' AND p.outcome = 'applied' AND p.source_id > $1 ORDER BY p.source_id`,
      runtime.child.pid!,
    );
    report('floorflow', result, 'scan row committed', 'job_operations update');
    if (result.committed.length < result.total) {
      process.exitCode = 1;
      const outcomes = await db.pool.query(
        `SELECT outcome, reason, count(*)::int AS n FROM jobmanager.processed_source_records GROUP BY 1, 2`,
      );
      const stored = await db.pool.query('SELECT count(*)::int AS n FROM jobmanager.scanned_codes');
      console.log(`stored scans: ${stored.rows[0].n}; outcomes: ${JSON.stringify(outcomes.rows)}`);
      console.log(`runtime output (tail):\n${runtime.output().slice(-3000)}`);
    }
    return result;
  } finally {
    for (const c of connections) c.end();
    await runtime.stop('SIGTERM');
    await db.drop();
  }
}

async function runBaseline(jobIds: string[]): Promise<Result> {
  const db = await createTestDatabase({ migrate: false, poolSize: 2 });
  await createBaselineTables(
    db.pool,
    jobIds.map((j) => `${j}_1`),
  );
  const nodeRed = await startNodeRedBaseline(db.url, POOL_SIZE);
  const connections: RawScanner[] = [];
  const url = `mqtt://${SYSTEM_MOSQUITTO.host}:${SYSTEM_MOSQUITTO.port}`;
  try {
    for (let c = 0; c < clients; c += 1) {
      connections.push(
        await RawScanner.connect(SYSTEM_MOSQUITTO.host, SYSTEM_MOSQUITTO.port, {
          clientId: `${nodeRed.prefix}-scanner-${c}`,
        }),
      );
    }
    // Warm-up: one scan through the whole path, so the subscription is in place before timing.
    const warmDeadline = Date.now() + 60000;
    let warm = false;
    while (!warm && Date.now() < warmDeadline) {
      await connections[0].publish(
        publishPacket(
          `${nodeRed.prefix}/warmup/scan`,
          JSON.stringify({ code: `${jobIds[0]}_1`, msg_id: 'warmup' }),
          1,
        ),
        1,
      );
      await new Promise((r) => setTimeout(r, 200));
      const rows = await db.pool.query(`SELECT 1 FROM baseline.scan_log WHERE msg_id = 'warmup'`);
      warm = (rows.rowCount ?? 0) > 0;
    }
    if (!warm) throw new Error('baseline Node-RED never stored the warm-up scan');
    console.log(
      `baseline: ${clients} scanners x ${scansPerClient} QoS 1 scans to Mosquitto ${url} -> Node-RED (pid ${nodeRed.pid}) mqtt in -> function (pg)`,
    );
    const result = await drive(
      db.pool,
      connections,
      (c) => `${nodeRed.prefix}/scanner-${c}/scan`,
      jobIds,
      `SELECT id, msg_id FROM baseline.scan_log WHERE id > $1 ORDER BY id`,
      nodeRed.pid,
    );
    report('baseline', result, 'Mosquitto received it', 'job row update');
    if (result.committed.length < result.total) {
      // Acknowledged by Mosquitto but never stored; most likely Mosquitto dropping QoS 1 messages
      // beyond max_queued_messages (default 1000) for the subscriber that fell behind.
      console.log(`baseline lost ${result.total - result.committed.length} acknowledged scans`);
    }
    return result;
  } finally {
    for (const c of connections) c.end();
    await nodeRed.stop();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const jobIds = Array.from({ length: clients * 10 }, (_, i) => `${9000 + Math.floor(i / 100)}_${i % 100}`);
  console.log(
    rate === undefined
      ? `mode: ${clients} scanners, each waiting for its PUBACK before its next scan`
      : `mode: fixed rate, ${rate} scans/s from ${clients} scanners for ${((clients * scansPerClient) / rate).toFixed(0)} s`,
  );
  const ours = await runFloorflow(jobIds);
  const oursLost = ours.acked.length - ours.committed.length;
  console.log(`floorflow: acknowledged but not applied: ${oursLost}`);
  if (rate !== undefined) {
    const p99 = percentile(ours.committed, 99);
    console.log(
      `aim p99 publish -> applied under 100 ms at ${rate} scans/s: ${p99 < 100 ? 'met' : 'not met'} (${p99.toFixed(0)} ms)`,
    );
  }
  if (!withBaseline) return;
  const base = await runBaseline(jobIds);
  const oursRate = ours.committed.length / ours.seconds;
  const baseRate = base.committed.length / base.seconds;
  const oursP99 = percentile(ours.committed, 99);
  const baseP99 = percentile(base.committed, 99);
  const oursAckP99 = percentile(ours.acked, 99);
  console.log(
    `floorflow / baseline: throughput ${(oursRate / baseRate).toFixed(2)}x (${oursRate.toFixed(0)} / ${baseRate.toFixed(0)} scans/s); ` +
      `p50 to committed ${(percentile(ours.committed, 50) / percentile(base.committed, 50)).toFixed(2)}x; ` +
      `p99 to committed ${(oursP99 / baseP99).toFixed(2)}x (${oursP99.toFixed(0)} / ${baseP99.toFixed(0)} ms); ` +
      `acknowledged but not stored: ${oursLost} / ${base.acked.length - base.committed.length}`,
  );
  const met = (ok: boolean) => (ok ? 'met' : 'not met');
  // At a fixed rate both keep up with the offered load: throughput is no measure there.
  if (rate !== undefined) return;
  console.log(
    `aims: >= 3x the baseline's committed scans/s: ${met(oursRate >= 3 * baseRate)}; ` +
      `0 acknowledged but lost: ${met(oursLost === 0)}; ` +
      `PUBACK p99 below the baseline's committed p99: ${met(oursAckP99 < baseP99)} (${oursAckP99.toFixed(0)} / ${baseP99.toFixed(0)} ms)`,
  );
}

// The embedded database a run without FLOORFLOW_TEST_DATABASE_URL started keeps the process alive.
main()
  .then(() => stopTestServer())
  .catch((err: unknown) => {
    console.error(err);
    void stopTestServer().finally(() => process.exit(1));
  });
