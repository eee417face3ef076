// Scans applied per second with 1 and with 3 floorflow runtimes behind Debian's mosquitto, the same
// load in one run (docs/scale-out.md). Each configuration gets a fresh database and a fresh
// mosquitto (persistence on); the runtimes run the job-status flow and share the ingest sessions.
// The load: 50 scanners publish QoS 1 scans (unique msg_id) as fast as mosquitto acknowledges
// them. Reported: scans/s from the first publish until every scan is applied (its
// processed_source_records row), the time until every scan is stored, and the CPU seconds of the
// runtimes and of mosquitto over the run (where the time goes). Prints 3 runtimes / 1 runtime.
// Usage: node dist/bench/scale-out.js [--quick] [--scans N] [--sessions N]
import fs from 'node:fs';
import path from 'node:path';
import { liveLeases } from '../store/leases';
import { createTestDatabase, waitFor } from '../tests/support/db';
import { addJobs } from '../tests/support/job-status-fixtures';
import { startMosquitto } from '../tests/support/mosquitto';
import {
  REPO_ROOT,
  type RuntimeProcess,
  startRuntimeProcess,
  tempDir,
} from '../tests/support/runtime-process';
import { startScanStream } from '../tests/support/scan-stream';
import { argValue, cpuSecondsOf } from './support/stats';

const quick = process.argv.includes('--quick');
const SCANS = argValue('--scans', quick ? 1500 : 12000);
const SCANNERS = 50;
/** --sessions N: FLOORFLOW_INGEST_SESSIONS for the runtimes (default 6, the setting's default). */
const SESSIONS = argValue('--sessions', 6);

interface Outcome {
  runtimes: number;
  storedMs: number;
  appliedMs: number;
  perSecond: number;
  runtimeCpu: number;
  brokerCpu: number;
}

async function measure(runtimeCount: number): Promise<Outcome> {
  const db = await createTestDatabase();
  const broker = await startMosquitto();
  const runtimes: RuntimeProcess[] = [];
  try {
    const jobIds = Array.from({ length: 500 }, (_, i) => `${60000 + i}`);
    await addJobs(db.pool, jobIds);
    const flowsDir = tempDir('floorflow-bench-flows-');
    for (const file of ['config.json', 'job-status.json'])
      fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(flowsDir, file));
    const env = {
      DATABASE_URL: db.url,
      MQTT_URL: broker.url,
      FLOORFLOW_FLOWS_DIR: flowsDir,
      FLOORFLOW_DASHBOARDS_DIR: tempDir('floorflow-bench-dashboards-'),
      FLOORFLOW_API_TOKEN: 'scale-bench-token-0123456789',
      FLOORFLOW_ADMIN_PASSWORD: 'scale-bench-admin-1',
      FLOORFLOW_INGEST_SESSIONS: String(SESSIONS),
    };
    const dirs = Array.from({ length: runtimeCount }, () => tempDir());
    runtimes.push(await startRuntimeProcess({ dataDir: dirs[0], copyFlows: false, env }));
    for (const dir of dirs.slice(1)) {
      fs.copyFileSync(path.join(dirs[0], 'secrets.json'), path.join(dir, 'secrets.json'));
      runtimes.push(await startRuntimeProcess({ dataDir: dir, copyFlows: false, env }));
    }
    // Every runtime holds its share of the 6 sessions before the load starts.
    await waitFor(
      async () => {
        const sessions = await liveLeases(db.pool, 'mqtt-ingest/');
        return sessions.length === SESSIONS && new Set(sessions.map((s) => s.holder)).size === runtimeCount;
      },
      `the ${SESSIONS} ingest sessions spread over ${runtimeCount} runtime(s)`,
      60000,
    );
    const cpuBefore = runtimes.map((r) => cpuSecondsOf(r.child.pid!));
    const brokerBefore = cpuSecondsOf(broker.child.pid!);
    const started = Date.now();
    const stream = startScanStream({
      url: () => broker.url,
      scanners: Array.from({ length: SCANNERS }, (_, i) => ({
        username: `bench-scanner-${i}`,
        password: 'x',
      })),
      ratePerSecond: 100000,
      maxScans: SCANS,
      codeFor: (n) => `${jobIds[n % jobIds.length]}_1`,
    });
    const count = async (sql: string) => Number((await db.pool.query<{ n: string }>(sql)).rows[0].n);
    await waitFor(
      async () => (await count('SELECT count(*) AS n FROM jobmanager.scanned_codes')) >= SCANS,
      'every scan stored',
      600000,
    );
    const storedMs = Date.now() - started;
    await waitFor(
      async () =>
        (await count(
          `SELECT count(*) AS n FROM jobmanager.processed_source_records WHERE source_type = 'scanner'`,
        )) >= SCANS,
      'every scan applied',
      600000,
    );
    const appliedMs = Date.now() - started;
    const runtimeCpu = runtimes.reduce((sum, r, i) => sum + cpuSecondsOf(r.child.pid!) - cpuBefore[i], 0);
    const brokerCpu = cpuSecondsOf(broker.child.pid!) - brokerBefore;
    await stream.stop();
    return {
      runtimes: runtimeCount,
      storedMs,
      appliedMs,
      perSecond: SCANS / (appliedMs / 1000),
      runtimeCpu,
      brokerCpu,
    };
  } finally {
    for (const r of runtimes) await r.stop('SIGTERM').catch(() => undefined);
    await broker.stop();
    await db.drop();
  }
}

async function main(): Promise<void> {
  console.log(
    `${SCANS} scans from ${SCANNERS} scanners, QoS 1, through mosquitto; ${SESSIONS} ingest sessions`,
  );
  const one = await measure(1);
  const three = await measure(3);
  for (const o of [one, three]) {
    console.log(
      `  ${o.runtimes} runtime(s): ${o.perSecond.toFixed(0)} scans/s applied (stored in ${o.storedMs} ms, applied in ${o.appliedMs} ms); CPU s: runtimes ${o.runtimeCpu.toFixed(1)}, mosquitto ${o.brokerCpu.toFixed(1)}`,
    );
  }
  console.log(`  3 runtimes / 1 runtime: ${(three.perSecond / one.perSecond).toFixed(2)}x`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
