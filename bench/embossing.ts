// Embossing jobs end to end against the real runtime (`floorflow start` as a child process,
// embossing flow only) with simulated embossers (cli/embosser-simulator) that answer at once:
// POST /api/embossing-jobs → worker → retry-backoff → embosser → MQTT → simulator → events →
// job completed. Reports jobs/s and p50/p99 from the POST to the committed `completed`
// (observed by polling every 5 ms). Baseline, same run, same simulators: the bare MQTT round
// trip, a command published straight to the machine until its `completed` event, so the
// ratio is what the flow, the database and the log cost on top of the machine's own answer.
// Usage: node dist/bench/embossing.js [--quick] [--machines N] [--jobs N]
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { EmbosserSimulator } from '../cli/embosser-simulator';
import { INTERNAL_MQTT_USER } from '../runtime/broker';
import { loadSecrets } from '../runtime/secrets';
import { MachineStore } from '../store/machines';
import { createTestDatabase, stopTestServer } from '../tests/support/db';
import { REPO_ROOT, startRuntimeProcess, tempDir } from '../tests/support/runtime-process';
import { argValue, percentile, ratio } from './support/stats';

const quick = process.argv.includes('--quick');
const machineCount = argValue('--machines', 4);
const jobCount = argValue('--jobs', quick ? 40 : 200);
const TOKEN = 'bench-embossing-token-0123456789';

function flowsDir(dataDir: string): { flows: string; dashboards: string } {
  const flows = path.join(dataDir, 'flows-embossing');
  const dashboards = path.join(dataDir, 'dashboards-none');
  fs.mkdirSync(flows, { recursive: true });
  fs.mkdirSync(dashboards, { recursive: true });
  for (const file of ['config.json', 'embossing.json'])
    fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(flows, file));
  return { flows, dashboards };
}

async function main(): Promise<void> {
  const db = await createTestDatabase({ poolSize: 4 });
  const dataDir = tempDir();
  const dirs = flowsDir(dataDir);
  const runtime = await startRuntimeProcess({
    dataDir,
    copyFlows: false,
    env: {
      DATABASE_URL: db.url,
      MQTT_PORT: '0',
      FLOORFLOW_API_TOKEN: TOKEN,
      FLOORFLOW_FLOWS_DIR: dirs.flows,
      FLOORFLOW_DASHBOARDS_DIR: dirs.dashboards,
    },
  });
  const { secrets } = loadSecrets(dataDir, {});
  const machines = new MachineStore(db.pool, secrets.machineSealKey);
  const url = `mqtt://127.0.0.1:${runtime.mqttPort}`;
  const simulators: EmbosserSimulator[] = [];
  try {
    for (let m = 0; m < machineCount; m += 1) {
      const id = `BENCH-EMB-${m}`;
      const simulator = new EmbosserSimulator({
        machineId: id,
        secret: await machines.add(id, 'embosser'),
        url,
        workMs: 0,
      });
      await simulator.start();
      simulators.push(simulator);
    }
    const online = async () =>
      Number((await db.pool.query('SELECT count(*) AS n FROM floorflow.machines WHERE online')).rows[0].n);
    while ((await online()) < machineCount) await new Promise((r) => setTimeout(r, 20));
    console.log(
      `embossing: ${jobCount} one-plate jobs over ${machineCount} simulated embossers (pid ${runtime.child.pid})`,
    );

    // Baseline: the machines' own round trip, with the runtime's internal MQTT user.
    const direct = await mqtt.connectAsync(url, {
      username: INTERNAL_MQTT_USER,
      password: secrets.internalMqttPassword,
      reconnectPeriod: 0,
    });
    await direct.subscribeAsync('floorflow/machines/+/event', { qos: 1 });
    const waiting = new Map<string, () => void>();
    direct.on('message', (_topic, payload) => {
      const event = JSON.parse(payload.toString()) as { job_id: string; status: string };
      if (event.status === 'completed') waiting.get(event.job_id)?.();
    });
    const baseline: number[] = [];
    const baselineStart = performance.now();
    await Promise.all(
      simulators.map(async (_s, m) => {
        for (let i = m; i < jobCount; i += machineCount) {
          const jobId = `900000${i}`;
          const started = performance.now();
          await new Promise<void>((resolve) => {
            waiting.set(jobId, resolve);
            void direct.publishAsync(
              `floorflow/machines/BENCH-EMB-${m}/cmd`,
              JSON.stringify({ type: 'emboss', job_id: jobId }),
              { qos: 1 },
            );
          });
          baseline.push(performance.now() - started);
        }
      }),
    );
    const baselineSeconds = (performance.now() - baselineStart) / 1000;
    await direct.endAsync(true);
    // The baseline's events reached the flow too; they name no job of its and are only logged.

    const plates = await db.pool.query<{ id: string }>(
      `INSERT INTO embossing.plates (plate_number, batch_code, status)
       SELECT 'B-' || g, 'BENCH', 'ready_for_embossing' FROM generate_series(1, $1) g RETURNING id::text AS id`,
      [jobCount],
    );
    const createdAt = new Map<string, number>();
    const latencies: number[] = [];
    const start = performance.now();
    // The watcher runs while jobs are still being created, so a job's latency is its own.
    let creating = true;
    const watcher = (async () => {
      while (creating || createdAt.size > 0) {
        const rows = await db.pool.query<{ id: string }>(
          `SELECT id::text AS id FROM embossing.embossing_jobs WHERE status = 'completed' AND id = ANY($1::bigint[])`,
          [[...createdAt.keys()]],
        );
        const now = performance.now();
        for (const row of rows.rows) {
          latencies.push(now - createdAt.get(row.id)!);
          createdAt.delete(row.id);
        }
        if (now - start > 120000)
          throw new Error(`only ${latencies.length} of ${jobCount} jobs completed in 120 s`);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    for (const [i, plate] of plates.rows.entries()) {
      const posted = performance.now();
      const res = await fetch(`http://127.0.0.1:${runtime.httpPort}/api/embossing-jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ plate_ids: [plate.id], machine_id: `BENCH-EMB-${i % machineCount}` }),
      });
      if (res.status !== 202)
        throw new Error(`POST /api/embossing-jobs answered ${res.status}: ${await res.text()}`);
      createdAt.set(((await res.json()) as { data: { id: string } }).data.id, posted);
    }
    creating = false;
    await watcher;
    const seconds = (performance.now() - start) / 1000;
    const p50 = percentile(latencies, 50);
    const base50 = percentile(baseline, 50);
    console.log(
      `  flow:     ${(jobCount / seconds).toFixed(1)} jobs/s, p50 ${p50.toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms (POST → completed)`,
    );
    console.log(
      `  baseline: ${(jobCount / baselineSeconds).toFixed(1)} jobs/s, p50 ${base50.toFixed(1)} ms, p99 ${percentile(baseline, 99).toFixed(1)} ms (cmd → completed event)`,
    );
    console.log(`  p50 ratio flow/baseline: ${ratio(p50, base50)}`);
  } finally {
    for (const s of simulators) await s.stop().catch(() => undefined);
    await runtime.stop();
    await db.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

// The embedded database a run without FLOORFLOW_TEST_DATABASE_URL started keeps the process alive.
main()
  .then(() => stopTestServer())
  .catch((err: Error) => {
    console.error(`bench failed: ${err.stack ?? err.message}`);
    void stopTestServer().finally(() => process.exit(1));
  });
