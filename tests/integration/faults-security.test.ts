// Security as a plant relies on it: the editor, the admin API, the HTTP API and the broker
// each refuse anonymous and wrong-credential access; a machine stays inside its topics; and
// no secret shows up in the runtime's output after the first-start banner, in the flow
// files or in what the editor serves, also after a deploy.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { waitFor } from '../support/db';
import { fillParams, shippedHttpRoutes } from '../support/faults';
import { MachineCredentials, registerMachines } from '../support/machines';
import { RuntimeProcess, startRuntimeProcess, tempDir } from '../support/runtime-process';

async function connectMqtt(url: string, options: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
  // A machine's client id is its id (docs/machines.md).
  const clientId = typeof options.username === 'string' ? options.username : undefined;
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10000, clientId, ...options });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(full) : [full];
  });
}

describe('fault: security', function () {
  this.timeout(180000);
  let runtime: RuntimeProcess;
  let dataDir: string;
  let token: string;
  let adminPassword: string;
  let press: MachineCredentials;
  let scanner: MachineCredentials;
  let internalPassword: string;
  let databasePassword: string;
  const clients: mqtt.MqttClient[] = [];
  const mqttUrl = () => `mqtt://127.0.0.1:${runtime.mqttPort}`;

  before(async () => {
    dataDir = tempDir();
    // The embedded database, so its generated password is one of the secrets checked.
    runtime = await startRuntimeProcess({ dataDir, env: { DATABASE_URL: undefined } });
    token = runtime.apiToken!;
    adminPassword = runtime.adminPassword!;
    [press, scanner] = await registerMachines(runtime.env, ['sec-press-1', 'sec-scanner-1'], 'press');
    const stored = JSON.parse(fs.readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')) as {
      internalMqttPassword: string;
      databasePassword: string;
    };
    internalPassword = stored.internalMqttPassword;
    databasePassword = stored.databasePassword;
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.end(true);
  });

  after(async () => {
    // SIGINT, not SIGKILL: the runtime then stops its embedded PostgreSQL instead of leaving it running.
    await runtime?.stop('SIGINT');
  });

  async function login(password: string): Promise<Response> {
    return fetch(`${runtime.baseUrl}/editor/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_id: 'node-red-editor',
        grant_type: 'password',
        scope: '*',
        username: 'admin',
        password,
      }),
    });
  }

  it('refuses the editor and admin API without a login, with a wrong password or a made-up token', async () => {
    assert.equal((await fetch(`${runtime.baseUrl}/editor/flows`)).status, 401);
    assert.equal(
      (await fetch(`${runtime.baseUrl}/editor/flows`, { headers: { authorization: 'Bearer not-a-token' } }))
        .status,
      401,
    );
    assert.equal(
      (
        await fetch(`${runtime.baseUrl}/editor/flows`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '[]',
        })
      ).status,
      401,
    );
    assert.equal((await fetch(`${runtime.baseUrl}/editor/nodes`)).status, 401);
    assert.equal((await fetch(`${runtime.baseUrl}/editor/flow/any`, { method: 'DELETE' })).status, 401);
    assert.equal((await login('wrong-password')).status, 403);
    assert.equal((await login(token)).status, 403, 'the API token is not the admin password');
  });

  it('refuses every shipped /api and /v1 route without the bearer token or with a wrong one', async () => {
    const routes = shippedHttpRoutes([
      runtime.env.FLOORFLOW_FLOWS_DIR!,
      runtime.env.FLOORFLOW_DASHBOARDS_DIR!,
    ]);
    assert.ok(routes.length > 0, 'the shipped flows serve routes');
    for (const route of routes) {
      const url = runtime.baseUrl + fillParams(route.url, '1');
      const signed = /callback/.test(route.url);
      const attempts: Array<Record<string, string>> = [
        {},
        { authorization: 'Bearer wrong-token-0123456789' },
        { authorization: token }, // the token without the Bearer scheme
        { authorization: `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}` },
      ];
      for (const headers of attempts) {
        const res = await fetch(url, {
          method: route.method,
          headers: { 'content-type': 'application/json', ...headers },
          body: route.method === 'GET' ? undefined : '{}',
        });
        const expected = signed ? [401, 403] : [401];
        assert.ok(expected.includes(res.status), `${route.method} ${route.url} gave ${res.status}`);
        const body = (await res.json()) as { success: boolean };
        assert.equal(body.success, false);
      }
    }
  });

  it('refuses anonymous, wrong-password and borrowed-identity MQTT clients, on TCP and WebSocket', async () => {
    const refusals: Array<[string, mqtt.IClientOptions]> = [
      ['anonymous', {}],
      ['wrong password', { username: press.username, password: 'wrong' }],
      ["another machine's secret", { username: press.username, password: scanner.password }],
      ['unknown machine', { username: 'no-such-machine', password: press.password }],
      ['internal user, wrong password', { username: 'floorflow-runtime', password: press.password }],
    ];
    for (const [what, options] of refusals) {
      await assert.rejects(connectMqtt(mqttUrl(), options), /Not authorized|Bad username|closed/i, what);
      await assert.rejects(
        connectMqtt(`ws://127.0.0.1:${runtime.httpPort}/mqtt`, options),
        /Not authorized|Bad username|closed/i,
        `${what} over WebSocket`,
      );
    }
  });

  it('keeps a machine inside its own topics: foreign publishes are not delivered, foreign subscriptions fail', async () => {
    const observer = await connectMqtt(mqttUrl(), {
      username: 'floorflow-runtime',
      password: internalPassword,
    });
    clients.push(observer);
    const seen: string[] = [];
    observer.on('message', (topic) => seen.push(topic));
    await observer.subscribeAsync('floorflow/#', { qos: 1 });

    const machine = await connectMqtt(mqttUrl(), { ...press });
    clients.push(machine);
    for (const filter of [
      `floorflow/machines/${scanner.username}/cmd`,
      'floorflow/#',
      '#',
      `floorflow/machines/${press.username}/status`,
      `floorflow/machines/+/cmd`,
    ]) {
      await assert.rejects(machine.subscribeAsync(filter), /Subscribe error/, `${filter} is refused`);
    }
    let probes = 0;
    for (const topic of [
      `floorflow/machines/${scanner.username}/scan`,
      `floorflow/machines/${press.username}/cmd`,
      'floorflow/alerts',
      '$SYS/anything',
    ]) {
      // Its own client id suffix, so it does not replace the connection that publishes the marker.
      const m = await connectMqtt(mqttUrl(), { ...press, clientId: `${press.username}/probe-${probes++}` });
      clients.push(m);
      const closed = new Promise<void>((resolve) => m.once('close', () => resolve()));
      m.publish(topic, '{"state":"idle","code":"X"}', { qos: 1 });
      await closed; // MQTT 3.1.1 has no negative PUBACK: the broker drops the connection
    }
    // A marker on an allowed topic: once it arrives, anything refused earlier would have too.
    await machine.publishAsync(`floorflow/machines/${press.username}/event`, '{"marker":true}', { qos: 1 });
    await waitFor(() => seen.includes(`floorflow/machines/${press.username}/event`), 'the allowed publish');
    assert.deepEqual(
      seen.filter((t) => t !== `floorflow/machines/${press.username}/event` && !t.endsWith('/status')),
      [],
    );
  });

  it('shows no secret in the output after the banner, the flow files or the editor, also after a deploy', async () => {
    const res = await login(adminPassword);
    assert.equal(res.status, 200);
    const { access_token } = (await res.json()) as { access_token: string };
    const auth = { authorization: `Bearer ${access_token}` };
    const current = await fetch(`${runtime.baseUrl}/editor/flows`, {
      headers: { ...auth, 'Node-RED-API-Version': 'v2' },
    });
    const served = await current.text();
    const { flows, rev } = JSON.parse(served) as { flows: unknown[]; rev: string };
    const deploy = await fetch(`${runtime.baseUrl}/editor/flows`, {
      method: 'POST',
      headers: {
        ...auth,
        'content-type': 'application/json',
        'Node-RED-API-Version': 'v2',
        'Node-RED-Deployment-Type': 'full',
      },
      body: JSON.stringify({ flows, rev }),
    });
    assert.equal(deploy.status, 200, await deploy.text());
    // Failed logins and refused clients are logged; make sure some were.
    await assert.rejects(connectMqtt(mqttUrl(), { username: press.username, password: scanner.password }));
    const after = await fetch(`${runtime.baseUrl}/editor/flows`, { headers: auth });
    const servedAfter = await after.text();

    const secrets: Record<string, string> = {
      'admin password': adminPassword,
      'API token': token,
      'machine secret (press)': press.password,
      'machine secret (scanner)': scanner.password,
      'internal MQTT password': internalPassword,
      'database password': databasePassword,
    };
    const banner = /stop\s+Ctrl-C \(drains work in flight first\)\n/;
    const output = runtime.output();
    const afterBanner = output.slice((banner.exec(output)?.index ?? 0) + 50);
    const places: Record<string, string> = {
      'runtime output after the banner': afterBanner,
      'GET /editor/flows before the deploy': served,
      'GET /editor/flows after the deploy': servedAfter,
    };
    for (const dir of [runtime.env.FLOORFLOW_FLOWS_DIR!, runtime.env.FLOORFLOW_DASHBOARDS_DIR!]) {
      for (const file of filesUnder(dir)) places[file] = fs.readFileSync(file, 'utf8');
    }
    for (const [where, text] of Object.entries(places)) {
      for (const [what, secret] of Object.entries(secrets)) {
        assert.ok(secret && secret.length >= 8, `${what} is known to the test`);
        assert.equal(text.includes(secret), false, `${what} appears in ${where}`);
      }
    }
  });

  it("lets no machine take another's session: queued commands stay with their machine, and no one is kicked offline", async () => {
    // Finding 4 of issue 20: EMB-2 connected with EMB-1's client id, got its queued commands and kicked it off.
    const [emb1, emb2] = await registerMachines(runtime.env, ['sec-emb-1', 'sec-emb-2'], 'embosser');
    const cmd = `floorflow/machines/${emb1.username}/cmd`;
    const status = `floorflow/machines/${emb1.username}/status`;
    const observer = await connectMqtt(mqttUrl(), {
      username: 'floorflow-runtime',
      password: internalPassword,
    });
    clients.push(observer);
    const statuses: string[] = [];
    observer.on('message', (topic, payload) => {
      if (topic === status) statuses.push(JSON.parse(payload.toString()).state);
    });
    await observer.subscribeAsync(status, { qos: 1 });

    const first = await connectMqtt(mqttUrl(), { ...emb1, clientId: emb1.username, clean: false });
    await first.subscribeAsync(cmd, { qos: 1 });
    await first.endAsync();
    for (let i = 1; i <= 3; i++) {
      await observer.publishAsync(cmd, JSON.stringify({ type: 'emboss', job_id: String(i) }), { qos: 1 });
    }
    await assert.rejects(
      connectMqtt(mqttUrl(), { ...emb2, clientId: emb1.username, clean: false }),
      /Identifier rejected/,
      "another machine with this machine's client id",
    );
    const received: string[] = [];
    // Queued commands may arrive with the CONNACK: listen before connecting.
    const back = mqtt.connect(mqttUrl(), {
      ...emb1,
      clientId: emb1.username,
      clean: false,
      reconnectPeriod: 0,
    });
    clients.push(back);
    back.on('message', (_t, payload) => received.push(JSON.parse(payload.toString()).job_id));
    await new Promise<void>((resolve, reject) => {
      back.once('connect', () => resolve());
      back.once('error', reject);
    });
    await waitFor(() => received.length === 3 || undefined, 'the queued commands reach their machine');
    assert.deepEqual(received, ['1', '2', '3']);

    await back.publishAsync(status, '{"state":"idle"}', { qos: 1, retain: true });
    await waitFor(() => statuses.includes('idle') || undefined, 'the idle status');
    statuses.length = 0; // the offline of the clean disconnect above was right
    let kicked = false;
    back.once('close', () => (kicked = true));
    for (let i = 0; i < 10; i++) {
      await assert.rejects(
        connectMqtt(mqttUrl(), { ...emb2, clientId: emb1.username }),
        /Identifier rejected/,
      );
    }
    assert.equal(kicked, false, 'the machine kept its connection');
    // The machine itself reconnecting with its own id replaces its session without going offline.
    for (let i = 0; i < 3; i++) {
      const again = await connectMqtt(mqttUrl(), { ...emb1, clientId: emb1.username });
      clients.push(again);
    }
    await clients[clients.length - 1].publishAsync(status, '{"state":"busy"}', { qos: 1, retain: true });
    await waitFor(() => statuses.includes('busy') || undefined, 'the marker status');
    assert.deepEqual(
      statuses.filter((s) => s === 'offline'),
      [],
      `no offline was published: ${statuses.join(', ')}`,
    );
  });

  it('keeps /metrics bounded under random paths, and limits what one machine may retain and how often it may connect', async () => {
    // Finding 6 of issue 20: 3,000 random paths made 3,006 series; 150 × 200 KB retained; 250 connections.
    const metrics = async () => {
      const text = await (await fetch(`${runtime.baseUrl}/metrics`)).text();
      return {
        size: text.length,
        series: text.split('\n').filter((l) => l.startsWith('floorflow_http_requests_total{')).length,
      };
    };
    const before = await metrics();
    const auth = { authorization: `Bearer ${token}` };
    for (let i = 0; i < 300; i++) {
      const random = `r${i}-${Math.random().toString(36).slice(2)}`;
      await fetch(`${runtime.baseUrl}/${random}`);
      await fetch(`${runtime.baseUrl}/api/${random}`, { headers: auth });
      await fetch(`${runtime.baseUrl}/v1/processing/job/${random}`, { headers: auth });
      await fetch(`${runtime.baseUrl}/editor/${random}`);
    }
    const after = await metrics();
    console.log(
      `      /metrics after 1,200 random paths: ${before.series} → ${after.series} series, ${before.size} → ${after.size} bytes`,
    );
    assert.ok(after.series - before.series <= 10, `${after.series - before.series} new series`);
    assert.ok(after.size - before.size < 16 * 1024, `/metrics grew by ${after.size - before.size} bytes`);

    const retaining = await connectMqtt(mqttUrl(), { ...press });
    clients.push(retaining);
    let kept = 0;
    const closed = new Promise<void>((resolve) => retaining.once('close', () => resolve()));
    for (let i = 0; i < 40 && retaining.connected; i++) {
      const acked = await Promise.race([
        retaining
          .publishAsync(`floorflow/machines/${press.username}/event/${i}`, Buffer.alloc(200 * 1024, 0x61), {
            qos: 1,
            retain: true,
          })
          .then(
            () => true,
            () => false,
          ),
        closed.then(() => false),
      ]);
      if (!acked) break;
      kept++;
    }
    assert.ok(kept <= 5, `${kept} retained messages of 200 KB kept (1 MiB allowed)`);
    const counted = await (await fetch(`${runtime.baseUrl}/metrics`)).text();
    assert.match(
      counted,
      /floorflow_mqtt_refused_total\{reason="retained_limit"\} [1-9]/,
      'the refusal is counted',
    );

    const held: mqtt.MqttClient[] = [];
    for (let i = 0; i < 8; i++) {
      held.push(await connectMqtt(mqttUrl(), { ...scanner, clientId: `${scanner.username}/c${i}` }));
    }
    clients.push(...held);
    await assert.rejects(
      connectMqtt(mqttUrl(), { ...scanner, clientId: `${scanner.username}/c8` }),
      /Server unavailable/,
      'a ninth connection of one machine',
    );
  });

  it('asks for the token on every route but the numeric callback, sets security headers, and allows no foreign origin on the admin API', async () => {
    // Finding 8 of issue 20.
    for (const path of ['/api/embossing-jobs/callback/retry', '/api/embossing-jobs/callback/cancel']) {
      const res = await fetch(runtime.baseUrl + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(res.status, 401, path);
      assert.deepEqual(
        await res.json(),
        { success: false, error: 'log in or send a bearer token (Authorization: Bearer <token>)' },
        path,
      );
    }
    for (const path of ['/editor/', '/dashboard/', '/api/plates', '/metrics', '/healthz', '/no-such-page']) {
      const res = await fetch(runtime.baseUrl + path);
      await res.arrayBuffer();
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.match(res.headers.get('x-frame-options') ?? '', /^(DENY|SAMEORIGIN)$/, path);
      assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors/, path);
    }
    const origin = { origin: 'http://evil.example' };
    const settings = await fetch(`${runtime.baseUrl}/editor/settings`, { headers: origin });
    await settings.arrayBuffer();
    assert.equal(settings.headers.get('access-control-allow-origin'), null);
    const preflight = await fetch(`${runtime.baseUrl}/editor/flows`, {
      method: 'OPTIONS',
      headers: { ...origin, 'access-control-request-method': 'POST' },
    });
    await preflight.arrayBuffer();
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
  });
});
