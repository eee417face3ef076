// Black-box smoke test of the product as a plant starts it: `floorflow start` with the shipped
// flows and dashboards, waited for only through /healthz (as a load balancer or a service
// manager's probe does), then at once every route of the README's HTTP API and every MQTT
// topic of docs/machines.md, once each, checking the status code and the shape of the answer. What
// works in the flow test kit but not in the product (a route missing, a 404 right after
// /healthz says healthy, a node that fails only in the real runtime) fails here.
import assert from 'node:assert/strict';
import mqtt, { MqttClient } from 'mqtt';
import { type SeededFloor, seedFloor } from '../support/dashboard-fixtures';
import { type TestDatabase, createTestDatabase, waitFor } from '../support/db';
import {
  type RuntimeProcess,
  freePort,
  runCli,
  runtimeEnv,
  startRuntimeProcess,
  tempDir,
} from '../support/runtime-process';

const TOKEN = 'smoke-test-api-token-0123456789abcdef';
const EMBOSSER = 'EMB-SMOKE';
const SCANNER = 'SCAN-SMOKE';

type Json = Record<string, unknown>;
/** Checks a JSON answer's shape; throws with what is missing. */
type Shape = (body: Json) => void;

const has =
  (...keys: string[]): Shape =>
  (body) => {
    for (const key of keys) assert.ok(key in body, `"${key}" is missing`);
  };
const ok =
  (dataShape?: Shape): Shape =>
  (body) => {
    assert.equal(body.success, true, 'success is true');
    if (dataShape) dataShape(body.data as Json);
  };
const failure: Shape = (body) => {
  assert.equal(body.success, false, 'success is false');
  assert.equal(typeof body.error, 'string', 'error says what is wrong');
  assert.deepEqual(Object.keys(body).sort(), ['error', 'success'], 'nothing else (no stack trace)');
};
const list =
  (itemShape?: Shape): Shape =>
  (value) => {
    assert.ok(Array.isArray(value), 'a list');
    if (itemShape) for (const item of value as unknown as Json[]) itemShape(item);
  };

/** Waits for `promise`, failing with `what` after `ms`: a lost acknowledgement names itself. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function connectMachine(url: string, machineId: string, secret: string): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    clientId: machineId,
    username: machineId,
    password: secret,
    reconnectPeriod: 0,
    connectTimeout: 10000,
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
  });
}

describe('smoke: floorflow start with the shipped flows, every route and topic once', function () {
  this.timeout(180000);
  let db: TestDatabase;
  let runtime: RuntimeProcess | undefined;
  let floor: SeededFloor;
  const clients: MqttClient[] = [];
  const failures: string[] = [];

  /** One HTTP call; a wrong status or shape is collected, so one run names every broken route. */
  async function call(
    method: 'GET' | 'POST',
    path: string,
    expected: number,
    shape: Shape,
    options: { body?: unknown; auth?: boolean } = {},
  ): Promise<Json> {
    const res = await fetch(runtime!.baseUrl + path, {
      method,
      headers: {
        ...(options.auth === false ? {} : { authorization: `Bearer ${TOKEN}` }),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await res.text();
    let body: Json = {};
    try {
      body = JSON.parse(text) as Json;
    } catch {
      failures.push(`${method} ${path}: not JSON (${res.status}): ${text.slice(0, 200)}`);
      return body;
    }
    if (res.status !== expected) {
      failures.push(`${method} ${path}: ${res.status} instead of ${expected}: ${text.slice(0, 300)}`);
      return body;
    }
    try {
      shape(body);
    } catch (err) {
      failures.push(`${method} ${path}: ${(err as Error).message}: ${text.slice(0, 300)}`);
    }
    return body;
  }

  /** Runs one MQTT check; a failure is collected with the others. */
  async function check(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      failures.push(`MQTT: ${(err as Error).message}`);
    }
  }

  before(async () => {
    db = await createTestDatabase();
    floor = await seedFloor(db.pool, new Date());
    await db.pool.query(
      `INSERT INTO processing.orders (order_number, status) VALUES ('ORD-SMOKE', 'pending')`,
    );
  });

  after(async () => {
    for (const client of clients) await client.endAsync(true).catch(() => undefined);
    await runtime?.stop('SIGINT');
    await db?.drop();
  });

  it('answers every route and topic with the documented status and shape, right after /healthz is 200', async () => {
    const dataDir = tempDir();
    // Machines are registered before the start, as a plant does with `floorflow machine add`.
    const env = runtimeEnv(dataDir, 0, { DATABASE_URL: db.url }, false);
    const secrets: Record<string, string> = {};
    for (const [id, kind] of [
      [EMBOSSER, 'embosser'],
      [SCANNER, 'scanner'],
    ]) {
      const added = runCli(['machine', 'add', id, '--kind', kind], env);
      assert.equal(added.status, 0, added.stderr);
      secrets[id] = /MQTT password \(shown once, stored hashed\): (\S+)/.exec(added.stdout)![1];
    }

    // The broker's port is chosen here: nothing the runtime prints is read.
    const mqttPort = await freePort();
    runtime = await startRuntimeProcess({
      dataDir,
      env: { DATABASE_URL: db.url, FLOORFLOW_API_TOKEN: TOKEN, MQTT_PORT: String(mqttPort) },
      until: 'healthz',
    });
    const broker = `mqtt://127.0.0.1:${mqttPort}`;

    // --- MQTT first, without waiting on anything the flows do: machines connect and
    // subscribe; the retained status and a scan go out now, their acknowledgements are
    // awaited after the HTTP calls, which must come at once after /healthz said 200.
    const embosser = await connectMachine(broker, EMBOSSER, secrets[EMBOSSER]);
    clients.push(embosser);
    const commands: Json[] = [];
    embosser.on('message', (_topic, payload) => commands.push(JSON.parse(payload.toString()) as Json));
    await within(
      embosser.subscribeAsync(`floorflow/machines/${EMBOSSER}/cmd`, { qos: 1 }),
      20000,
      "SUBACK for the embosser's cmd topic",
    );
    const scanner = await connectMachine(broker, SCANNER, secrets[SCANNER]);
    clients.push(scanner);
    const statusAck = embosser.publishAsync(
      `floorflow/machines/${EMBOSSER}/status`,
      JSON.stringify({ state: 'idle' }),
      { qos: 1, retain: true },
    );
    // QoS 1: the PUBACK comes only once the scan is stored.
    const scanAck = scanner.publishAsync(
      `floorflow/machines/${SCANNER}/scan`,
      JSON.stringify({ code: '4604_5889_1', operations: ['coating'], msg_id: 'smoke-1' }),
      { qos: 1 },
    );

    // --- Embossing
    await call(
      'GET',
      '/api/plates?status=in_production,ready_for_embossing',
      200,
      ok(list(has('id', 'plate_number', 'status'))),
    );
    const plateIds = floor.plates.slice(0, 2).map((p) => Number(p.id));
    const created = await call('POST', '/api/embossing-jobs', 202, ok(has('id', 'status', 'machine_id')), {
      body: { plate_ids: plateIds, machine_id: EMBOSSER },
    });
    const jobId = (created.data as Json | undefined)?.id;
    await call('GET', '/api/embossing-jobs', 200, ok(list(has('id', 'status', 'machine_id'))));
    await call('GET', `/api/embossing-jobs/${jobId}`, 200, ok(has('id', 'status', 'attempts')));
    // A job at its machine is not failed: a retry is a conflict.
    await call('POST', `/api/embossing-jobs/${jobId}/retry`, 409, failure);
    const failedJob = (
      await db.pool.query<{ id: string }>(
        `SELECT id::text FROM embossing.embossing_jobs WHERE status = 'failed'`,
      )
    ).rows[0].id;
    await call('POST', `/api/embossing-jobs/${failedJob}/cancel`, 200, ok(has('id', 'status')));
    await call('GET', `/api/embossing-jobs/${jobId}/logs`, 200, ok(list()));
    // Unsigned, the machine callback is refused: the route is there and guarded.
    await call('POST', `/api/embossing-jobs/callback/${jobId}`, 401, failure, {
      auth: false,
      body: { status: 'completed', attempt: 1, response: {} },
    });
    // --- Job status
    await call('POST', '/api/process-print-os', 200, has('processed_count', 'jobs_updated', 'last_marker'), {
      body: {},
    });
    await call(
      'POST',
      '/api/process-status-updates',
      200,
      has('print_os_processed', 'scanner_processed', 'jobs_updated'),
      {
        body: {},
      },
    );
    await call('GET', '/api/job-status/4604_5889', 200, has('job_id', 'current_status', 'update_history'));
    await call(
      'POST',
      '/api/admin/job-status/reprocess',
      200,
      has('source', 'from_marker', 'processed_count', 'last_marker'),
      { body: { source: 'print_os', from_marker: 11 } },
    );
    await call(
      'GET',
      '/api/admin/job-status/gaps?source=print_os',
      200,
      has('last_marker', 'max_marker', 'lag', 'gaps'),
    );

    // --- Product lifecycle and dispatch
    const [live1, live2, live3] = floor.liveProducts.map((p) => p.id);
    await call('GET', '/api/live-products/dispatchable', 200, (body) => {
      ok()(body);
      list(has('productId', 'name', 'state'))(body.data as Json);
      has('count')(body);
    });
    const stream = new AbortController();
    const sse = await fetch(`${runtime.baseUrl}/api/live-products/dispatchable/stream`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: stream.signal,
    });
    if (sse.status !== 200 || !/text\/event-stream/.test(sse.headers.get('content-type') ?? ''))
      failures.push(
        `GET /api/live-products/dispatchable/stream: ${sse.status} ${sse.headers.get('content-type')}`,
      );
    stream.abort();
    const lifecycleAnswer = (body: Json) => {
      ok(has('productId', 'action', 'previousState', 'currentState'))(body);
    };
    await call('POST', '/api/live-products/dispatchable', 200, lifecycleAnswer, {
      body: { productId: live1 },
    });
    await call('GET', `/api/products/lifecycle?productId=${live2}`, 200, (body) => {
      assert.equal(body.success, true);
      has('productId', 'currentState', 'stages')(body.lifecycle as Json);
    });
    await call('POST', '/api/products/lifecycle', 200, lifecycleAnswer, {
      body: { productId: live1, action: 'reactivate' },
    });
    await call('GET', `/api/products/move-to-past?productId=${live1}`, 200, (body) => {
      assert.equal(body.success, true);
      has('productId', 'transitions')(body.history as Json);
    });
    await call('POST', '/api/products/move-to-past', 200, lifecycleAnswer, { body: { productId: live3 } });
    await call('GET', '/api/dashboard/status', 200, (body) => {
      assert.equal(body.success, true);
      has('products', 'machines', 'machineSummary', 'statistics')(body.status as Json);
    });

    // --- Engraving
    const due = new Date(Date.now() + 7 * 86400000).toISOString().slice(0, 10);
    const engraving = await call(
      'POST',
      '/api/engraving-jobs',
      202,
      (body) => {
        assert.equal(body.success, true);
        has('id', 'status')(body.data as Json);
      },
      { body: { customer_id: 'C-SMOKE', item_id: 'cup-30', text: ['Smoke test'], due_date: due } },
    );
    const engravingId = (engraving.data as Json | undefined)?.id;
    await call('GET', `/api/engraving-jobs/${engravingId}`, 200, ok(has('id', 'status', 'qa_results')));
    const [designA, designB] = floor.designJobs;
    await call('POST', `/api/engraving-jobs/${designA}/design/approve`, 200, ok(has('id', 'status')), {
      body: {},
    });
    await call('POST', `/api/engraving-jobs/${designB}/design/reject`, 200, ok(has('id', 'status')), {
      body: { feedback: 'smoke' },
    });
    // Not in QA: a conflict.
    await call('POST', `/api/engraving-jobs/${engravingId}/qa`, 409, failure, { body: { passed: true } });
    await call('GET', '/api/engraving/queue', 200, ok());
    await call('POST', '/api/engraving/items/cup-30/stock', 200, ok(), { body: { add: 1 } });

    // --- Processing pipeline
    const confirmed = await call(
      'POST',
      '/api/admin/orders/ORD-SMOKE/confirm',
      200,
      ok(has('created', 'job')),
    );
    const processingJob = ((confirmed.data as Json | undefined)?.job as Json | undefined)?.id;
    const queueShape = ok(
      has('total', 'pending', 'processing', 'completed', 'failed', 'activeJobs', 'maxConcurrent', 'dbStats'),
    );
    await call('GET', '/v1/processing/queue', 200, queueShape);
    await call('GET', '/api/admin/processing/queue', 200, queueShape);
    await call(
      'GET',
      `/v1/processing/job/${processingJob}`,
      200,
      ok(has('id', 'orderNumber', 'status', 'progress')),
    );

    // --- Provenance, and the API's own refusals
    await call('GET', '/api/trace/job/4604_5889', 200, has('events'));
    await call('GET', '/api/job-status/4604_5889', 401, failure, { auth: false });
    await call('GET', '/api/no-such-route', 404, failure);

    // --- The pages and metrics around the API
    for (const [path, type] of [
      ['/editor/', /text\/html/],
      ['/dashboard/', /text\/html/],
      ['/metrics', /text\/plain/],
    ] as const) {
      // As a browser asks: an anonymous visitor of a page is sent to the login page, itself a page.
      const res = await fetch(runtime.baseUrl + path, { headers: { accept: 'text/html' } });
      await res.body?.cancel();
      if (res.status !== 200 || !type.test(res.headers.get('content-type') ?? ''))
        failures.push(`GET ${path}: ${res.status} ${res.headers.get('content-type')}`);
    }

    // --- MQTT answers: the status and the scan acknowledged, the scan stored with the machine
    // that sent it, the emboss command on the machine's cmd topic and its event applied.
    await check(async () => {
      await within(statusAck, 20000, "PUBACK for the embosser's retained status");
      const machine = await db.pool.query(
        `SELECT last_status->>'state' AS state FROM floorflow.machines WHERE machine_id = $1`,
        [EMBOSSER],
      );
      assert.equal(machine.rows[0].state, 'idle', 'the retained status is recorded');
    });
    await check(async () => {
      await within(scanAck, 20000, 'PUBACK for a scan');
      const stored = await db.pool.query(
        'SELECT machine_id FROM jobmanager.scanned_codes WHERE msg_id = $1',
        ['smoke-1'],
      );
      assert.deepEqual(
        stored.rows,
        [{ machine_id: SCANNER }],
        'the acknowledged scan is stored, with its machine',
      );
    });
    await check(async () => {
      const command = await waitFor(
        () => commands.find((c) => String(c.job_id) === String(jobId)),
        "the emboss command on the machine's cmd topic",
        30000,
      );
      assert.equal(command.type, 'emboss');
      await within(
        embosser.publishAsync(
          `floorflow/machines/${EMBOSSER}/event`,
          JSON.stringify({ job_id: command.job_id, status: 'completed', response: { serial: 'SMOKE-1' } }),
          { qos: 1 },
        ),
        20000,
        "PUBACK for the embosser's event",
      );
      await waitFor(
        async () =>
          (
            await db.pool.query(
              `SELECT 1 FROM embossing.embossing_jobs WHERE id = $1 AND status = 'completed'`,
              [jobId],
            )
          ).rowCount === 1,
        'the embossing job to be completed by the machine event',
      );
    });

    assert.deepEqual(failures, [], `routes that did not answer as documented:\n${failures.join('\n')}`);
  });
});
