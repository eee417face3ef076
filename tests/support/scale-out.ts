// The scale-out scenario of docs/scale-out.md, for the fault test and its short form: Debian's
// mosquitto (persistence on, its own port), one PostgreSQL, three `floorflow start` runtimes
// with MQTT_URL; scanners publish QoS 1 scans; one runtime is killed with kill -9 mid-burst and
// not restarted, another is stopped with SIGTERM. Every scan the broker acknowledged must be
// stored and applied exactly once by the survivor, and the print-OS poller's work goes on there.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { liveLeases, liveRuntimes } from '../../store/leases';
import { createTestDatabase, waitFor, type TestDatabase } from './db';
import { addImposition, addJobs, addPrintOs, fileId } from './job-status-fixtures';
import { type Mosquitto, startMosquitto } from './mosquitto';
import { REPO_ROOT, type RuntimeProcess, startRuntimeProcess, tempDir } from './runtime-process';
import { type ScanStream, startScanStream } from './scan-stream';

export interface ScaleOutOptions {
  scanners: number;
  scans: number;
  ratePerSecond: number;
}

export interface ScaleOutResult {
  acked: number;
  stored: number;
  printOsRows: number;
  /** From the SIGTERM (the second stop) until every acknowledged scan was applied. */
  settledAfterStopMs: number;
}

const JOBS = 100;

export async function runScaleOut(options: ScaleOutOptions): Promise<ScaleOutResult> {
  let db: TestDatabase | undefined;
  let broker: Mosquitto | undefined;
  let stream: ScanStream | undefined;
  const runtimes: RuntimeProcess[] = [];
  try {
    db = await createTestDatabase();
    broker = await startMosquitto();
    const jobIds = Array.from({ length: JOBS }, (_, i) => `${8000 + i}`);
    await addJobs(db.pool, jobIds);
    for (let i = 0; i < 20; i++) await addImposition(db.pool, `IMP-S${i}`, [fileId(jobIds[i], 1)]);
    let marker = 0;
    const addBacklog = (rows: number) =>
      addPrintOs(
        db!.pool,
        Array.from({ length: rows }, () => ({
          name: `IMP-S${marker % 20}`,
          status: 'PRINTED' as const,
          marker: ++marker,
          job_complete_time: new Date(),
        })),
      );
    await addBacklog(200);

    // The job-status flow only, as a plant that only tracks job status; the same files on every runtime.
    const flowsDir = tempDir('floorflow-scale-flows-');
    for (const file of ['config.json', 'job-status.json'])
      fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(flowsDir, file));
    const dashboardsDir = tempDir('floorflow-scale-dashboards-');
    const env = {
      DATABASE_URL: db.url,
      MQTT_URL: broker.url,
      FLOORFLOW_FLOWS_DIR: flowsDir,
      FLOORFLOW_DASHBOARDS_DIR: dashboardsDir,
      FLOORFLOW_API_TOKEN: 'scale-out-test-token-0123456789',
      FLOORFLOW_ADMIN_PASSWORD: 'scale-out-admin-1',
    };
    // The runtimes share one secrets.json (machine secrets, flow credentials), as docs/scale-out.md says.
    const dirs = [tempDir(), tempDir(), tempDir()];
    runtimes.push(await startRuntimeProcess({ dataDir: dirs[0], copyFlows: false, env }));
    for (const dir of dirs.slice(1))
      fs.copyFileSync(path.join(dirs[0], 'secrets.json'), path.join(dir, 'secrets.json'));
    runtimes.push(
      ...(await Promise.all(
        dirs.slice(1).map((dataDir) => startRuntimeProcess({ dataDir, copyFlows: false, env })),
      )),
    );
    await waitFor(async () => (await liveRuntimes(db!.pool)).length === 3, 'three live runtimes', 30000);

    const scanners = Array.from({ length: options.scanners }, (_, i) => ({
      username: `scale-scanner-${i}`,
      password: 'unused-on-this-broker',
    }));
    stream = startScanStream({
      url: () => broker!.url,
      scanners,
      ratePerSecond: options.ratePerSecond,
      maxScans: options.scans,
      codeFor: (n) => `${jobIds[n % JOBS]}_1`,
    });
    const [killed, stopped, survivor] = runtimes;
    await waitFor(() => stream!.acked.size >= options.scans / 3, 'a third of the scans acknowledged', 120000);
    await killed.stop('SIGKILL');
    await addBacklog(200);
    await waitFor(() => stream!.acked.size >= (options.scans * 2) / 3, 'two thirds acknowledged', 120000);
    const stoppedAt = Date.now();
    await stopped.stop('SIGTERM');
    await addBacklog(200);
    assert.equal(
      await stream.settled(120000),
      true,
      `every scan acknowledged by the broker (${stream.acked.size})`,
    );
    assert.equal(survivor.child.exitCode, null, 'the survivor runs');

    const printOsRows = marker;
    await waitFor(
      async () => {
        const r = await db!.pool.query<{ p: string; s: string; scans: string }>(
          `SELECT (SELECT count(*) FROM jobmanager.processed_source_records WHERE source_type = 'print_os') AS p,
                  (SELECT count(*) FROM jobmanager.processed_source_records WHERE source_type = 'scanner') AS s,
                  (SELECT count(*) FROM jobmanager.scanned_codes) AS scans`,
        );
        const row = r.rows[0];
        return (
          Number(row.p) === printOsRows &&
          Number(row.scans) >= stream!.acked.size &&
          Number(row.s) === Number(row.scans)
        );
      },
      'every acknowledged scan stored and applied, and the print OS backlog processed',
      60000,
    );
    const settledAfterStopMs = Date.now() - stoppedAt;

    const stored = await db.pool.query<{ msg_id: string; n: number }>(
      `SELECT msg_id, count(*)::int AS n FROM jobmanager.scanned_codes GROUP BY msg_id`,
    );
    const counts = new Map(stored.rows.map((r) => [r.msg_id, r.n]));
    assert.deepEqual(
      [...stream.acked].filter((id) => !counts.has(id)),
      [],
      'acknowledged by the broker but not stored',
    );
    assert.deepEqual(
      stored.rows.filter((r) => r.n > 1),
      [],
      'a scan stored more than once',
    );
    const doubled = await db.pool.query(
      `SELECT source_type, source_id, job_id, operation_type, count(*) FROM jobmanager.job_status_updates
       GROUP BY 1, 2, 3, 4 HAVING count(*) > 1`,
    );
    assert.deepEqual(doubled.rows, [], 'a source record took effect twice');
    // The survivor is the one live runtime, and holds every ingest session and the poller.
    const live = await liveRuntimes(db.pool);
    assert.equal(live.length, 1, `one live runtime (${live.join(', ')})`);
    const held = await liveLeases(db.pool, '');
    const notSurvivors = held.filter((l) => l.holder !== live[0]);
    assert.deepEqual(notSurvivors, [], 'leases held by a runtime that is gone');
    assert.ok(
      held.some((l) => l.name === 'poller/print_os'),
      `the survivor holds the print OS poller (${held.map((l) => l.name).join(', ')})`,
    );
    assert.equal(
      held.filter((l) => l.name.startsWith('mqtt-ingest/')).length,
      6,
      'the survivor owns the 6 ingest sessions',
    );
    return { acked: stream.acked.size, stored: counts.size, printOsRows, settledAfterStopMs };
  } finally {
    await stream?.stop();
    for (const r of runtimes) await r.stop('SIGKILL').catch(() => undefined);
    await broker?.stop();
    await db?.drop();
  }
}
