// The launcher as a plant runs it: a child process with the embedded database and again
// with DATABASE_URL, secured editor, API and broker, clean stop, clear start-up errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { createTestDatabase, TestDatabase, waitFor } from '../support/db';
import {
  adminLogin,
  RuntimeProcess,
  freePort,
  runCli,
  runtimeEnv,
  startRuntimeProcess,
  tempDir,
  REPO_ROOT,
} from '../support/runtime-process';

async function connect(url: string, options: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
  // A machine's client id is its id (docs/machines.md).
  const clientId = typeof options.username === 'string' ? options.username : undefined;
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, clientId, ...options });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
  });
}

function postgresRunningOn(dataDir: string): boolean {
  const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return ps.stdout.split('\n').some((line) => line.includes(path.join(dataDir, 'postgres')));
}

function securedRuntimeSuite(label: string, databaseFor: () => Promise<TestDatabase | undefined>) {
  describe(`runtime with ${label}`, function () {
    this.timeout(120000);
    let runtime: RuntimeProcess;
    let db: TestDatabase | undefined;
    let dataDir: string;
    let token: string;
    let machineSecret: string;

    before(async () => {
      db = await databaseFor();
      dataDir = tempDir();
      runtime = await startRuntimeProcess({ dataDir, env: { DATABASE_URL: db?.url } });
      assert.ok(runtime.apiToken, 'the first start prints the API token');
      assert.ok(runtime.adminPassword, 'the first start prints the admin password');
      token = runtime.apiToken!;
      assert.match(runtime.output(), /editor\s+http:\/\/127\.0\.0\.1:\d+\/editor/);
    });

    after(async () => {
      // SIGINT, not SIGKILL: the runtime then stops its embedded PostgreSQL too.
      await runtime?.stop('SIGINT');
      await db?.drop();
    });

    it('answers /healthz with 200 when the database, the broker and the flows are up', async () => {
      const res = await fetch(`${runtime.baseUrl}/healthz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ok', database: 'up', broker: 'up', flows: 'up' });
    });

    it('refuses /api and /v1 without the bearer token, in the API error shape', async () => {
      for (const url of ['/api/job-status/1', '/v1/processing/queue']) {
        const res = await fetch(runtime.baseUrl + url);
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), {
          success: false,
          error: 'log in or send a bearer token (Authorization: Bearer <token>)',
        });
      }
      const wrong = await fetch(`${runtime.baseUrl}/api/anything`, {
        headers: { authorization: 'Bearer nope' },
      });
      assert.equal(wrong.status, 401);
      const right = await fetch(`${runtime.baseUrl}/api/no-such-route`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(right.status, 404);
      assert.equal(((await right.json()) as { success: boolean }).success, false);
    });

    it('keeps the editor behind the admin login', async () => {
      const anonymous = await fetch(`${runtime.baseUrl}/editor/flows`);
      assert.equal(anonymous.status, 401);
      const bad = await adminLogin(runtime.baseUrl, 'wrong');
      assert.equal(bad.status, 403);
      const login = await adminLogin(runtime.baseUrl, runtime.adminPassword);
      assert.equal(login.status, 200);
      const { access_token } = (await login.json()) as { access_token: string };
      const flows = await fetch(`${runtime.baseUrl}/editor/flows`, {
        headers: { authorization: `Bearer ${access_token}` },
      });
      assert.equal(flows.status, 200);
      const nodes = await fetch(`${runtime.baseUrl}/editor/nodes`, {
        headers: { authorization: `Bearer ${access_token}`, accept: 'application/json' },
      });
      const list = (await nodes.json()) as Array<{ types: string[] }>;
      const types = list.flatMap((set) => set.types);
      assert.ok(types.includes('floorflow-scan-parser'), 'the floorflow palette is loaded');
      assert.ok(types.includes('floorflow-db'));
    });

    it('registers a machine while running; it connects at once and its status is accepted', async () => {
      const added = runCli(['machine', 'add', 'embosser-7', '--kind', 'embosser'], runtime.env);
      assert.equal(added.status, 0, added.stderr);
      const secret = added.stdout.match(/MQTT password \(shown once, stored hashed\): (\S+)/)?.[1];
      assert.ok(secret);
      machineSecret = secret!;
      const client = await connect(`mqtt://127.0.0.1:${runtime.mqttPort}`, {
        username: 'embosser-7',
        password: machineSecret,
      });
      await client.publishAsync('floorflow/machines/embosser-7/status', JSON.stringify({ state: 'idle' }), {
        qos: 1,
        retain: true,
      });
      await client.endAsync();
      const listed = await waitFor(() => {
        const out = runCli(['machine', 'list'], runtime.env).stdout;
        return /embosser-7\tembosser\t.*status idle/.test(out) && out;
      }, 'machine list to show the status');
      assert.match(listed, /embosser-7/);
    });

    it('refuses wrong passwords and anonymous MQTT clients', async () => {
      await assert.rejects(
        connect(`mqtt://127.0.0.1:${runtime.mqttPort}`, { username: 'embosser-7', password: 'wrong' }),
        /Bad username or password|Not authorized/i,
      );
      await assert.rejects(
        connect(`mqtt://127.0.0.1:${runtime.mqttPort}`, {}),
        /Not authorized|Bad username/i,
      );
      await assert.rejects(
        connect(`mqtt://127.0.0.1:${runtime.mqttPort}`, { username: 'nobody', password: 'x' }),
        /Bad username or password/i,
      );
    });

    it('keeps a machine inside its own topics', async () => {
      const client = await connect(`mqtt://127.0.0.1:${runtime.mqttPort}`, {
        username: 'embosser-7',
        password: machineSecret,
      });
      const granted = await client.subscribeAsync('floorflow/machines/embosser-7/cmd');
      assert.deepEqual(
        granted.map((g) => g.qos),
        [0],
      );
      for (const filter of [
        'floorflow/machines/other/cmd',
        'floorflow/#',
        'floorflow/machines/embosser-7/status',
      ]) {
        await assert.rejects(client.subscribeAsync(filter), /Subscribe error/, `${filter} is refused`);
      }
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.publish('floorflow/machines/other/status', '{"state":"idle"}', { qos: 1 });
      await closed; // MQTT 3.1.1 has no negative PUBACK: the broker drops the connection
      client.end(true);
    });

    it('serves MQTT over WebSocket on /mqtt with the same authentication', async () => {
      const client = await connect(`ws://127.0.0.1:${runtime.httpPort}/mqtt`, {
        username: 'embosser-7',
        password: machineSecret,
        wsOptions: {},
      });
      await client.publishAsync('floorflow/machines/embosser-7/status', '{"state":"busy"}', { qos: 1 });
      await client.endAsync();
      assert.ok(WebSocket);
    });

    it('publishes broker and process metrics on /metrics', async () => {
      const text = await (await fetch(`${runtime.baseUrl}/metrics`)).text();
      assert.match(text, /floorflow_mqtt_connections/);
      assert.match(text, /floorflow_mqtt_refused_total\{reason="bad_credentials"\} [1-9]/);
      assert.match(text, /floorflow_process_resident_memory_bytes/);
    });

    it('drains and stops on SIGINT, leaving no database process; a second start reuses the data', async () => {
      const code = await runtime.stop('SIGINT');
      assert.equal(code, 0, runtime.output());
      assert.match(runtime.output(), /floorflow stopped/);
      assert.equal(postgresRunningOn(dataDir), false, 'no postgres process is left behind');
      runtime = await startRuntimeProcess({ dataDir, env: { DATABASE_URL: db?.url } });
      assert.equal(runtime.apiToken, undefined, 'secrets are printed only once');
      assert.equal(runtime.adminPassword, undefined);
      const res = await fetch(`${runtime.baseUrl}/api/x`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 404, 'the token from the first start still works');
      const client = await connect(`mqtt://127.0.0.1:${runtime.mqttPort}`, {
        username: 'embosser-7',
        password: machineSecret,
      });
      await client.endAsync();
    });
  });
}

securedRuntimeSuite('the embedded database', async () => undefined);
securedRuntimeSuite('DATABASE_URL', () => createTestDatabase({ migrate: false }));

describe('runtime start-up errors', function () {
  this.timeout(60000);

  function startFails(env: Record<string, string | undefined>): { status: number | null; stderr: string } {
    const dataDir = tempDir();
    const result = runCli(['start'], runtimeEnv(dataDir, 0, env, false));
    return { status: result.status, stderr: result.stderr.trim() };
  }

  it('stops with one clear line for an invalid setting', () => {
    const { status, stderr } = startFails({ PORT: 'eighty' });
    assert.equal(status, 1);
    assert.equal(stderr, 'floorflow: PORT=eighty is not a port: use a whole number from 0 to 65535');
  });

  it('stops with one clear line when the database is unreachable', async () => {
    const port = await freePort();
    const { status, stderr } = startFails({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/none` });
    assert.equal(status, 1);
    assert.equal(stderr.split('\n').length, 1, stderr);
    assert.match(
      stderr,
      /^floorflow: cannot reach the database at 127\.0\.0\.1:\d+\/none .*check DATABASE_URL/,
    );
  });

  it('stops with one clear line when the HTTP port is taken', async () => {
    const db = await createTestDatabase({ migrate: false });
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const { status, stderr } = startFails({ DATABASE_URL: db.url, PORT: String(port) });
      assert.equal(status, 1);
      assert.equal(
        stderr,
        `floorflow: port ${port} is already in use: stop what holds it or set PORT to a free port`,
      );
    } finally {
      blocker.close();
      await db.drop();
    }
  });

  it('names the flow file that does not parse', async () => {
    const db = await createTestDatabase({ migrate: false });
    const flowsDir = tempDir();
    fs.writeFileSync(path.join(flowsDir, 'broken.json'), '[{"id": "a",');
    try {
      const { status, stderr } = startFails({ DATABASE_URL: db.url, FLOORFLOW_FLOWS_DIR: flowsDir });
      assert.equal(status, 1);
      assert.match(stderr, new RegExp(`^floorflow: ${path.join(flowsDir, 'broken.json')}: `));
    } finally {
      await db.drop();
    }
  });

  it('prints ready only after the flows have started, so their routes answer at once', async () => {
    const db = await createTestDatabase({ migrate: false });
    const runtime = await startRuntimeProcess({ env: { DATABASE_URL: db.url, FLOORFLOW_LOG_LEVEL: 'info' } });
    try {
      const out = runtime.output();
      assert.ok(out.indexOf('Started flows') !== -1, out);
      assert.ok(
        out.indexOf('Started flows') < out.indexOf('floorflow ready'),
        'flows start before the ready line',
      );
    } finally {
      await runtime.stop('SIGKILL');
      await db.drop();
    }
  });

  it('runs from the repository root', () => {
    assert.ok(fs.existsSync(path.join(REPO_ROOT, 'package.json')));
  });
});
