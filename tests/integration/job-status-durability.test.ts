import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db';
import {
  REPO_ROOT,
  runCli,
  startRuntimeProcess,
  tempDir,
  type RuntimeProcess,
} from '../support/runtime-process';

/** A flows directory holding only the shared config and the job-status flow, as a plant would deploy it. */
function jobStatusFlowsDir(dataDir: string): { flows: string; dashboards: string } {
  const flows = path.join(dataDir, 'flows-job-status');
  const dashboards = path.join(dataDir, 'dashboards-none');
  fs.mkdirSync(flows, { recursive: true });
  fs.mkdirSync(dashboards, { recursive: true });
  for (const file of ['config.json', 'job-status.json'])
    fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(flows, file));
  return { flows, dashboards };
}

describe('job-status scan ingest with the real runtime', function () {
  let db: TestDatabase;
  let runtime: RuntimeProcess | undefined;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await runtime?.stop('SIGKILL');
    await db.drop();
  });

  it('every QoS 1 scan acknowledged to the scanner is in scanned_codes after the runtime is killed with SIGKILL', async () => {
    const dataDir = tempDir();
    const dirs = jobStatusFlowsDir(dataDir);
    runtime = await startRuntimeProcess({
      dataDir,
      copyFlows: false,
      env: {
        DATABASE_URL: db.url,
        MQTT_PORT: '0',
        FLOORFLOW_FLOWS_DIR: dirs.flows,
        FLOORFLOW_DASHBOARDS_DIR: dirs.dashboards,
      },
    });
    assert.ok(runtime.mqttPort > 0, `no mqtt:// line in:\n${runtime.output()}`);
    const added = runCli(['machine', 'add', 'scanner-1', '--kind', 'scanner'], runtime.env);
    assert.equal(added.status, 0, added.stderr);
    const secret = /MQTT password \(shown once, stored hashed\): (\S+)/.exec(added.stdout)?.[1];
    assert.ok(secret, added.stdout);

    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${runtime.mqttPort}`, {
      username: 'scanner-1',
      password: secret,
      clientId: 'scanner-1/durability',
      reconnectPeriod: 0,
    });
    client.on('error', () => undefined);
    const acknowledged: string[] = [];
    const total = 400;
    for (let i = 0; i < total; i += 1) {
      const msgId = `scan-${i}`;
      const payload = JSON.stringify({ code: `RL-${i % 7}`, operations: ['coating'], msg_id: msgId });
      client.publish('floorflow/machines/scanner-1/scan', payload, { qos: 1 }, (err) => {
        if (!err) acknowledged.push(msgId);
      });
    }
    // Kill in the middle of the stream: some scans acknowledged, others in flight.
    await waitFor(() => acknowledged.length >= 50, 'the first 50 PUBACKs');
    await runtime.stop('SIGKILL');
    const ackedAtKill = [...acknowledged];
    client.end(true);

    const stored = await db.pool.query<{ msg_id: string }>(
      `SELECT msg_id FROM jobmanager.scanned_codes WHERE machine_id = 'scanner-1' AND msg_id = ANY($1::text[])`,
      [ackedAtKill],
    );
    const missing = ackedAtKill.filter((id) => !stored.rows.some((r) => r.msg_id === id));
    assert.deepEqual(missing, [], 'acknowledged but not stored');
    assert.ok(ackedAtKill.length >= 50);
  });
});
