// Machine events with the real runtime (`floorflow start`, the shipped embossing flow): an event
// published while the embossing flow is being redeployed, and one acknowledged just before the
// runtime is killed with SIGKILL, are each applied exactly once when the flow (or the runtime) is
// back. The machine is a plain MQTT client, so the test controls every event it sends.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db';
import {
  REPO_ROOT,
  adminLogin,
  runCli,
  startRuntimeProcess,
  tempDir,
  type RuntimeProcess,
} from '../support/runtime-process';

const ADMIN_PASSWORD = 'durable-inbox-admin';
const API_TOKEN = 'durable-inbox-token-0123456789';

describe('machine events across a redeploy and a kill -9 (real runtime)', function () {
  this.timeout(240000);
  let db: TestDatabase;
  let dataDir: string;
  let flowsDir: string;
  let runtime: RuntimeProcess | undefined;
  let machine: MqttClient | undefined;
  let secret: string;
  const commands: Array<{ job_id?: unknown }> = [];

  async function start(): Promise<RuntimeProcess> {
    runtime = await startRuntimeProcess({
      dataDir,
      copyFlows: false,
      env: {
        DATABASE_URL: db.url,
        MQTT_PORT: '0',
        FLOORFLOW_FLOWS_DIR: flowsDir,
        FLOORFLOW_DASHBOARDS_DIR: path.join(dataDir, 'dashboards-none'),
        FLOORFLOW_ADMIN_PASSWORD: ADMIN_PASSWORD,
        FLOORFLOW_API_TOKEN: API_TOKEN,
      },
    });
    return runtime;
  }

  /** EMB-1, connected to the runtime as it is now, taking its commands. */
  async function connectMachine(): Promise<MqttClient> {
    await machine?.endAsync(true).catch(() => undefined);
    machine = await mqtt.connectAsync(`mqtt://127.0.0.1:${runtime!.mqttPort}`, {
      username: 'EMB-1',
      password: secret,
      clientId: 'EMB-1',
      reconnectPeriod: 0,
    });
    machine.on('error', () => undefined);
    machine.on('message', (_topic, payload) => commands.push(JSON.parse(payload.toString())));
    await machine.subscribeAsync('floorflow/machines/EMB-1/cmd', { qos: 1 });
    return machine;
  }

  async function api(route: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${runtime!.baseUrl}${route}`, {
      ...init,
      headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json', ...init.headers },
    });
  }

  /** Read from the database: while the embossing tab is down, so are its routes. */
  async function jobStatus(jobId: string): Promise<string> {
    const row = await db.pool.query<{ status: string }>(
      'SELECT status FROM embossing.embossing_jobs WHERE id = $1',
      [jobId],
    );
    return row.rows[0].status;
  }

  async function publishEvent(jobId: string, status: string): Promise<number> {
    await machine!.publishAsync(
      'floorflow/machines/EMB-1/event',
      JSON.stringify({ job_id: Number(jobId), status }),
      {
        qos: 1,
      },
    );
    // Acknowledged means stored: the event is in the inbox now.
    const row = await db.pool.query<{ event_id: string }>(
      `SELECT event_id FROM floorflow.machine_events WHERE payload->>'status' = $1 ORDER BY event_id DESC LIMIT 1`,
      [status],
    );
    assert.ok(row.rows[0], `the ${status} event is stored once its PUBACK arrived`);
    return Number(row.rows[0].event_id);
  }

  async function applied(eventId: number): Promise<Array<{ outcome: string }>> {
    const rows = await db.pool.query<{ outcome: string }>(
      `SELECT outcome FROM jobmanager.processed_source_records WHERE source_type = 'embossing_event' AND source_id = $1`,
      [eventId],
    );
    return rows.rows;
  }

  async function appliedLog(jobId: string): Promise<string[]> {
    const rows = await db.pool.query<{ result: string }>(
      `SELECT result FROM embossing.machine_messages WHERE job_id = $1 AND direction = 'in' ORDER BY id`,
      [jobId],
    );
    return rows.rows.map((r) => r.result);
  }

  async function deploy(
    transform: (flows: Array<Record<string, unknown>>) => Array<Record<string, unknown>>,
  ) {
    const login = await adminLogin(runtime!.baseUrl, ADMIN_PASSWORD);
    const { access_token } = (await login.json()) as { access_token: string };
    const headers = { authorization: `Bearer ${access_token}`, 'Node-RED-API-Version': 'v2' };
    const current = (await (await fetch(`${runtime!.baseUrl}/editor/flows`, { headers })).json()) as {
      flows: Array<Record<string, unknown>>;
      rev: string;
    };
    const res = await fetch(`${runtime!.baseUrl}/editor/flows`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify({ flows: transform(current.flows), rev: current.rev }),
    });
    assert.equal(res.status, 200, await res.text());
  }

  const withEmbossingTab = (disabled: boolean) => (flows: Array<Record<string, unknown>>) =>
    flows.map((n) => (n.id === 'embossing-tab' ? { ...n, disabled } : n));

  before(async () => {
    db = await createTestDatabase();
    dataDir = tempDir();
    flowsDir = path.join(dataDir, 'flows-embossing');
    fs.mkdirSync(flowsDir, { recursive: true });
    fs.mkdirSync(path.join(dataDir, 'dashboards-none'), { recursive: true });
    for (const file of ['config.json', 'embossing.json'])
      fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(flowsDir, file));
    await start();
    const added = runCli(['machine', 'add', 'EMB-1', '--kind', 'embosser'], runtime!.env);
    assert.equal(added.status, 0, added.stderr);
    secret = /MQTT password \(shown once, stored hashed\): (\S+)/.exec(added.stdout)![1];
    await connectMachine();
  });

  after(async () => {
    await machine?.endAsync(true).catch(() => undefined);
    await runtime?.stop('SIGKILL');
    await db.drop();
  });

  let jobId: string;

  it('an event published while the embossing flow is redeployed is applied once the flow is back, once', async () => {
    await waitFor(async () => {
      const row = await db.pool.query(`SELECT online FROM floorflow.machines WHERE machine_id = 'EMB-1'`);
      return row.rows[0]?.online;
    }, 'EMB-1 online');
    const plate = await db.pool.query<{ id: string }>(
      `INSERT INTO embossing.plates (plate_number, batch_code, status) VALUES ('AB-1', 'B-7', 'ready_for_embossing') RETURNING id::text AS id`,
    );
    const created = await api('/api/embossing-jobs', {
      method: 'POST',
      body: JSON.stringify({ plate_ids: [plate.rows[0].id], machine_id: 'EMB-1' }),
    });
    const body = await created.text();
    assert.equal(created.status, 202, body);
    jobId = String((JSON.parse(body) as { data: { id: string } }).data.id);
    await waitFor(() => commands.some((c) => String(c.job_id) === jobId), 'the command at the machine');
    await waitFor(async () => (await jobStatus(jobId)) === 'sent', 'the job sent');

    // The embossing flow is away (a deploy that takes the tab down), and the machine reports.
    await deploy(withEmbossingTab(true));
    const eventId = await publishEvent(jobId, 'accepted');
    assert.deepEqual(await applied(eventId), [], 'nothing applies it while the flow is away');
    assert.equal(await jobStatus(jobId), 'sent');

    await deploy(withEmbossingTab(false));
    await waitFor(
      async () => (await jobStatus(jobId)) === 'accepted',
      'the event applied after the redeploy',
    );
    assert.deepEqual(await applied(eventId), [{ outcome: 'applied' }]);
    await waitFor(async () => (await appliedLog(jobId)).length === 1, 'the accepted event logged');
    assert.deepEqual(await appliedLog(jobId), ['applied: accepted']);
  });

  it('an event acknowledged just before the runtime is killed with SIGKILL is applied once after the restart', async () => {
    // The flow cannot apply the event before the kill: the job row is held here until then.
    const holder = await db.pool.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM embossing.embossing_jobs WHERE id = $1 FOR UPDATE', [jobId]);
    let eventId: number;
    try {
      eventId = await publishEvent(jobId, 'completed');
      await runtime!.stop('SIGKILL');
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    await machine!.endAsync(true).catch(() => undefined);
    assert.deepEqual(await applied(eventId), []);

    await start();
    await connectMachine();
    await waitFor(
      async () => (await jobStatus(jobId)) === 'completed',
      'the event applied after the restart',
      60000,
    );
    assert.deepEqual(await applied(eventId), [{ outcome: 'applied' }]);
    // The machine message log is written right after the change commits.
    await waitFor(async () => (await appliedLog(jobId)).length === 2, 'the completed event logged');
    assert.deepEqual(await appliedLog(jobId), ['applied: accepted', 'applied: completed']);
  });
});
