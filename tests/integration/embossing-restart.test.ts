import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EmbosserSimulator } from '../../cli/embosser-simulator';
import { brokerOf } from '../../cli/simulate';
import { TestDatabase, createTestDatabase } from '../support/db';
import { registerMachines } from '../support/machines';
import { RuntimeProcess, freePort, startRuntimeProcess, tempDir } from '../support/runtime-process';

const TOKEN = 'restart-test-token-0123456789';

type Job = { id: string; status: string; plates: Array<{ status: string }> };
type Answer = { success: boolean; data: Job & Job[] };

describe('embossing across a runtime restart (the real process)', function () {
  this.timeout(240000);
  let db: TestDatabase;
  let dataDir: string;
  let mqttPort: number;
  let runtime: RuntimeProcess | undefined;
  let simulator: EmbosserSimulator | undefined;

  const env = () => ({
    DATABASE_URL: db.url,
    MQTT_PORT: String(mqttPort),
    FLOORFLOW_API_TOKEN: TOKEN,
  });
  const start = async () => {
    runtime = await startRuntimeProcess({ dataDir, env: env() });
  };
  async function api(
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
  ): Promise<{ status: number; body: Answer }> {
    const res = await fetch(`${runtime!.baseUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }
  async function until<T>(probe: () => Promise<T | false>, what: string, ms = 60000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await probe().catch(() => false as const);
      if (value !== false) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  beforeEach(async () => {
    db = await createTestDatabase();
    dataDir = tempDir();
    mqttPort = await freePort();
  });
  afterEach(async () => {
    await simulator?.stop().catch(() => undefined);
    await runtime?.stop('SIGINT');
    await db.drop();
  });

  it("the simulator finds the runtime's broker in its data dir, reconnects after a restart, and the job completes", async () => {
    await start();
    // Without MQTT_PORT or a URL, the broker of the runtime running on this data dir, never 1883.
    // runtime.json is written before the runtime reports ready (it was once read too early).
    const found = brokerOf(undefined, { FLOORFLOW_DATA_DIR: dataDir });
    assert.equal(found.url, `mqtt://127.0.0.1:${mqttPort}`);
    assert.match(found.from, /the floorflow runtime \(pid \d+\)/);

    const [{ password }] = await registerMachines(runtime!.env, ['EMB-1'], 'embosser');
    simulator = new EmbosserSimulator({ machineId: 'EMB-1', secret: password, url: found.url, workMs: 6000 });
    await simulator.start();
    const plate = await db.pool.query<{ id: string }>(
      `INSERT INTO embossing.plates (plate_number, status) VALUES ('R-1', 'ready_for_embossing') RETURNING id::text AS id`,
    );
    const listed = await api('GET', '/api/plates');
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    const created = await api('POST', '/api/embossing-jobs', {
      plate_ids: [plate.rows[0].id],
      machine_id: 'EMB-1',
    });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const jobId = String(created.body.data.id);
    await until(async () => simulator!.received.length === 1 || false, 'the command at the machine');

    // Ctrl-C while the machine works on the job; it finishes while the runtime is away.
    await runtime!.stop('SIGINT');
    runtime = undefined;
    assert.equal(
      fs.existsSync(path.join(dataDir, 'runtime.json')),
      false,
      'a stopped runtime leaves no address',
    );
    await until(async () => !simulator!.connected || false, 'the simulator lost its broker');
    await start();
    await until(async () => simulator!.connected || false, 'the simulator reconnected');
    const done = await until(async () => {
      const job = (await api('GET', `/api/embossing-jobs/${jobId}`)).body.data;
      return job.status === 'completed' ? job : false;
    }, 'the job completed after the restart');
    assert.equal(done.plates[0].status, 'embossed');
    assert.equal(simulator.received.length, 1, 'sent once');
  });
});
