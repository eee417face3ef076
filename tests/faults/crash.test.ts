// kill -9 of the runtime, again and again at random moments, while the print-OS poller
// works through a growing backlog and scanners send a stream of QoS 1 scans. After the final
// start every source record has taken effect exactly once (the processed-record ledger holds
// each "print OS" row and each scan once) and every scan a scanner saw acknowledged is stored.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createTestDatabase, TestDatabase, waitFor } from '../support/db';
import { addImposition, addJobs, addPrintOs, fileId } from '../support/job-status-fixtures';
import { registerMachines } from '../support/machines';
import {
  REPO_ROOT,
  RuntimeProcess,
  freePort,
  startRuntimeProcess,
  tempDir,
} from '../support/runtime-process';
import { ScanStream, startScanStream } from '../support/scan-stream';

const KILLS = 10;
const JOBS = 200;
const IMPOSITIONS = 100;

/** A small deterministic generator, so a failing run can be repeated with the same moments. */
function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

describe('fault: kill -9 under load', function () {
  this.timeout(900000);
  let db: TestDatabase;
  let runtime: RuntimeProcess | undefined;
  let stream: ScanStream | undefined;

  before(async () => {
    db = await createTestDatabase();
  });

  after(async () => {
    await stream?.stop();
    await runtime?.stop('SIGKILL');
    await db.drop();
  });

  it(`every source record takes effect exactly once and every acknowledged scan is stored across ${KILLS} kills`, async () => {
    const seed = Number(process.env.FLOORFLOW_CRASH_SEED ?? Date.now() % 100000);
    console.log(`      seed ${seed} (FLOORFLOW_CRASH_SEED to repeat)`);
    const random = rng(seed);
    const jobIds = Array.from({ length: JOBS }, (_, i) => `${7000 + i}`);
    await addJobs(db.pool, jobIds);
    for (let i = 0; i < IMPOSITIONS; i++) {
      const job = jobIds[i % JOBS];
      await addImposition(db.pool, `IMP-${i}`, [fileId(job, 1), fileId(job, 2)]);
    }
    let marker = 0;
    const addBacklog = async (rows: number) => {
      await addPrintOs(
        db.pool,
        Array.from({ length: rows }, () => ({
          name: `IMP-${Math.floor(random() * IMPOSITIONS)}`,
          status: random() < 0.9 ? ('PRINTED' as const) : ('ABORTED' as const),
          marker: ++marker,
          job_complete_time: new Date(),
        })),
      );
    };
    await addBacklog(2000);

    // Only the shared config and the job-status flow, as a plant that only tracks job status would.
    const dataDir = tempDir();
    const flowsDir = path.join(dataDir, 'flows-job-status');
    fs.mkdirSync(flowsDir);
    for (const file of ['config.json', 'job-status.json'])
      fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(flowsDir, file));
    const mqttPort = await freePort();
    const env = {
      DATABASE_URL: db.url,
      MQTT_PORT: String(mqttPort),
      FLOORFLOW_FLOWS_DIR: flowsDir,
      FLOORFLOW_DASHBOARDS_DIR: fs.mkdtempSync(path.join(dataDir, 'dashboards-')),
    };
    const start = () => startRuntimeProcess({ dataDir, copyFlows: false, env });
    runtime = await start();
    const scanners = await registerMachines(
      runtime.env,
      ['crash-scanner-1', 'crash-scanner-2', 'crash-scanner-3'],
      'scanner',
    );
    const total = 600;
    stream = startScanStream({
      url: () => `mqtt://127.0.0.1:${mqttPort}`,
      scanners,
      ratePerSecond: 40,
      maxScans: total,
      codeFor: (n) => `${jobIds[n % JOBS]}_1`,
    });

    for (let kill = 0; kill < KILLS; kill++) {
      // A random moment: after a random number of further acknowledgements in this run.
      const target = Math.min(total, stream.acked.size + 1 + Math.floor(random() * 25));
      await waitFor(
        () => stream!.acked.size >= target || stream!.acked.size >= total,
        `${target} scans acknowledged`,
        120000,
      );
      await addBacklog(100 + Math.floor(random() * 300));
      await runtime.stop('SIGKILL');
      runtime = await start();
    }

    assert.equal(
      await stream.settled(300000),
      true,
      `every scan acknowledged in the end (${stream.acked.size}/${total})`,
    );
    const printOsRows = Number(
      (await db.pool.query('SELECT count(*) AS n FROM jobmanager."print OS"')).rows[0].n,
    );
    await waitFor(
      async () => {
        const r = await db.pool.query<{ p: string; s: string; scans: string }>(
          `SELECT (SELECT count(*) FROM jobmanager.processed_source_records WHERE source_type = 'print_os') AS p,
                  (SELECT count(*) FROM jobmanager.processed_source_records WHERE source_type = 'scanner') AS s,
                  (SELECT count(*) FROM jobmanager.scanned_codes) AS scans`,
        );
        const row = r.rows[0];
        return Number(row.p) === printOsRows && Number(row.s) === Number(row.scans);
      },
      'the backlog and every stored scan processed',
      300000,
    );

    const stored = await db.pool.query<{ msg_id: string; n: number }>(
      `SELECT msg_id, count(*)::int AS n FROM jobmanager.scanned_codes WHERE msg_id IS NOT NULL GROUP BY msg_id`,
    );
    const counts = new Map(stored.rows.map((r) => [r.msg_id, r.n]));
    assert.deepEqual(
      [...stream.acked].filter((id) => !counts.has(id)),
      [],
      'acknowledged but not stored',
    );
    assert.deepEqual(
      stored.rows.filter((r) => r.n > 1),
      [],
      'a scan stored more than once',
    );
    const duplicates = await db.pool.query(
      `SELECT source_type, source_id, job_id, operation_type, count(*) FROM jobmanager.job_status_updates
       GROUP BY 1, 2, 3, 4 HAVING count(*) > 1`,
    );
    assert.deepEqual(duplicates.rows, [], 'a source record took effect twice');
    console.log(
      `      ${KILLS} kills; ${printOsRows} print OS rows and ${stored.rows.length} scans, each processed once; ` +
        `${stream.acked.size} scans acknowledged, all stored`,
    );
  });
});
