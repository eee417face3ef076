// Scans over MQTT against the real runtime (`floorflow start` as a child process, job-status flow
// only): 50 scanner clients publish QoS 1 scans, each waiting for its PUBACK before the next (a
// scanner's natural pace). Reports sustained scans/s and p50/p99 latency from publish to the
// committed job_operations update (seen as the scan's processed_source_records row, written in the
// same transaction; observed by polling every 5 ms), and the PUBACK latency beside it.
// Usage: node dist/bench/scan-ingest.js [--quick] [--clients N] [--scans N per client]
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { MqttClient } from 'mqtt';
import { loadSecrets } from '../runtime/secrets';
import { MachineStore } from '../store/machines';
import { createTestDatabase } from '../tests/support/db';
import { addJobs } from '../tests/support/job-status-fixtures';
import { REPO_ROOT, startRuntimeProcess, tempDir } from '../tests/support/runtime-process';
import { argValue, percentile } from './support/stats';

const quick = process.argv.includes('--quick');
const clients = argValue('--clients', 50);
const scansPerClient = argValue('--scans', quick ? 20 : 200);

function flowsDir(dataDir: string): { flows: string; dashboards: string } {
  const flows = path.join(dataDir, 'flows-job-status');
  const dashboards = path.join(dataDir, 'dashboards-none');
  fs.mkdirSync(flows, { recursive: true });
  fs.mkdirSync(dashboards, { recursive: true });
  for (const file of ['config.json', 'job-status.json'])
    fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(flows, file));
  return { flows, dashboards };
}

async function main(): Promise<void> {
  const db = await createTestDatabase({ poolSize: 2 });
  const jobIds = Array.from({ length: clients * 10 }, (_, i) => `${9000 + Math.floor(i / 100)}_${i % 100}`);
  await addJobs(db.pool, jobIds);
  const dataDir = tempDir();
  const dirs = flowsDir(dataDir);
  const runtime = await startRuntimeProcess({
    dataDir,
    copyFlows: false,
    env: {
      DATABASE_URL: db.url,
      MQTT_PORT: '0',
      FLOORFLOW_FLOWS_DIR: dirs.flows,
      FLOORFLOW_DASHBOARDS_DIR: dirs.dashboards,
    },
  });
  const machines = new MachineStore(db.pool, loadSecrets(dataDir, {}).secrets.machineSealKey);
  const connections: MqttClient[] = [];
  const published = new Map<string, number>();
  const acked: number[] = [];
  const committed: number[] = [];
  let stopWatching = false;
  try {
    for (let c = 0; c < clients; c += 1) {
      const id = `bench-scanner-${c}`;
      const secret = await machines.add(id, 'scanner');
      connections.push(
        await mqtt.connectAsync(`mqtt://127.0.0.1:${runtime.mqttPort}`, {
          username: id,
          password: secret,
          clientId: id,
          reconnectPeriod: 0,
        }),
      );
    }
    console.log(
      `scan ingest: ${clients} scanners x ${scansPerClient} QoS 1 scans against the runtime (pid ${runtime.child.pid})`,
    );

    // Commit watcher: a scan's processed_source_records row commits with its job_operations update.
    // Commits arrive out of scan_id order, so the watcher re-reads a window below the highest
    // scan it saw and counts each scan once.
    let lastScan = 0;
    const seen = new Set<string>();
    const watcher = (async () => {
      while (!stopWatching) {
        const rows = await db.pool.query<{ scan_id: string; msg_id: string }>(
          `SELECT s.scan_id, s.msg_id FROM jobmanager.processed_source_records p
           JOIN jobmanager.scanned_codes s ON s.scan_id = p.source_id
           WHERE p.source_type = 'scanner' AND p.outcome = 'applied' AND p.source_id > $1 ORDER BY p.source_id`,
          [Math.max(0, lastScan - 2000)],
        );
        const now = performance.now();
        for (const row of rows.rows) {
          lastScan = Math.max(lastScan, Number(row.scan_id));
          if (seen.has(row.msg_id)) continue;
          seen.add(row.msg_id);
          const sent = published.get(row.msg_id);
          if (sent !== undefined) committed.push(now - sent);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const started = performance.now();
    await Promise.all(
      connections.map(async (client, c) => {
        for (let i = 0; i < scansPerClient; i += 1) {
          const msgId = `c${c}-${i}`;
          const job = jobIds[(c * scansPerClient + i) % jobIds.length];
          const sent = performance.now();
          published.set(msgId, sent);
          await client.publishAsync(
            `floorflow/machines/bench-scanner-${c}/scan`,
            JSON.stringify({ code: `${job}_1`, operations: ['coating'], msg_id: msgId }),
            {
              qos: 1,
            },
          );
          acked.push(performance.now() - sent);
        }
      }),
    );
    const deadline = Date.now() + 120000;
    while (committed.length < published.size && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    const seconds = (performance.now() - started) / 1000;
    stopWatching = true;
    await watcher;
    const total = clients * scansPerClient;
    console.log(
      `committed ${committed.length} of ${total} scans in ${seconds.toFixed(1)} s: ${(committed.length / seconds).toFixed(0)} scans/s`,
    );
    console.log(
      `publish -> PUBACK (scan row committed):         p50 ${percentile(acked, 50).toFixed(1)} ms  p99 ${percentile(acked, 99).toFixed(1)} ms`,
    );
    console.log(
      `publish -> job_operations update committed:    p50 ${percentile(committed, 50).toFixed(1)} ms  p99 ${percentile(committed, 99).toFixed(1)} ms`,
    );
    if (committed.length < total) {
      process.exitCode = 1;
      const outcomes = await db.pool.query(
        `SELECT outcome, reason, count(*)::int AS n FROM jobmanager.processed_source_records GROUP BY 1, 2`,
      );
      const stored = await db.pool.query('SELECT count(*)::int AS n FROM jobmanager.scanned_codes');
      console.log(`stored scans: ${stored.rows[0].n}; outcomes: ${JSON.stringify(outcomes.rows)}`);
      console.log(`runtime output (tail):\n${runtime.output().slice(-3000)}`);
    }
  } finally {
    stopWatching = true;
    for (const c of connections) c.end(true);
    await runtime.stop('SIGTERM');
    await db.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
