import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createTestDatabase, type TestDatabase, waitFor } from '../support/db';
import { REPO_ROOT, type RuntimeProcess, startRuntimeProcess, tempDir } from '../support/runtime-process';
import { openStream, type SseClient } from '../support/sse-client';

const STREAM = '/api/live-products/dispatchable/stream';

/** The running runtime (`floorflow start`) with only the shared config and the product lifecycle flow. */
describe('product lifecycle and dispatch in the running runtime', function () {
  this.timeout(120000);
  let db: TestDatabase;
  let dataDir: string;
  let runtime: RuntimeProcess;
  let token: string | undefined;
  const streams: SseClient[] = [];

  async function start(): Promise<void> {
    runtime = await startRuntimeProcess({
      dataDir,
      copyFlows: false,
      env: {
        DATABASE_URL: db.url,
        FLOORFLOW_FLOWS_DIR: path.join(dataDir, 'flows'),
        FLOORFLOW_DASHBOARDS_DIR: path.join(dataDir, 'dashboards'),
      },
    });
    token ??= runtime.apiToken!;
    // Node-RED starts the flows after RED.start() resolves, so "ready" can come before the
    // flows' routes exist: wait until they answer.
    await waitFor(
      async () => (await api('/api/live-products/dispatchable')).status === 200,
      'the product routes',
    );
  }

  const api = (route: string, body?: unknown) =>
    fetch(runtime.baseUrl + route, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  async function stream(lastEventId?: string): Promise<SseClient> {
    const client = await openStream(runtime.httpPort, STREAM, lastEventId, {
      authorization: `Bearer ${token}`,
    });
    streams.push(client);
    assert.equal(client.status, 200);
    return client;
  }

  async function product(name: string): Promise<string> {
    const created = await db.pool.query<{ id: string }>(
      'INSERT INTO trackopz.products (name) VALUES ($1) RETURNING id::text AS id',
      [name],
    );
    await db.pool.query(`INSERT INTO trackopz.jobs (product_id, state) VALUES ($1, 'ON')`, [
      created.rows[0].id,
    ]);
    return created.rows[0].id;
  }

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    dataDir = tempDir();
    fs.mkdirSync(path.join(dataDir, 'flows'));
    fs.mkdirSync(path.join(dataDir, 'dashboards'));
    for (const file of ['config.json', 'lifecycle.json']) {
      fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(dataDir, 'flows', file));
    }
    await start();
  });

  afterEach(async () => {
    for (const s of streams.splice(0)) await s.close();
  });

  after(async () => {
    await runtime?.stop('SIGKILL');
    await db?.drop();
  });

  it('refuses the routes and the stream without the bearer token', async () => {
    for (const route of ['/api/live-products/dispatchable', STREAM, '/api/dashboard/status']) {
      const res = await fetch(runtime.baseUrl + route);
      assert.equal(res.status, 401, route);
      assert.deepEqual(await res.json(), {
        success: false,
        error: 'log in or send a bearer token (Authorization: Bearer <token>)',
      });
    }
  });

  it('dispatches a product and answers the reads with the token', async () => {
    const id = await product('runtime roll');
    const dispatched = await api('/api/live-products/dispatchable', { productId: id, reason: 'dispatched' });
    assert.equal(dispatched.status, 200);
    const lifecycle = await api(`/api/products/lifecycle?productId=${id}`);
    const body = (await lifecycle.json()) as { lifecycle: { currentState: string; isDispatchable: boolean } };
    assert.deepEqual([body.lifecycle.currentState, body.lifecycle.isDispatchable], ['OFF', false]);
    assert.equal((await api('/api/dashboard/status')).status, 200);
  });

  it('ends open streams when it stops, and a display resuming after the restart gets what it missed', async () => {
    const first = await product('before restart');
    const second = await product('while away');
    const display = await stream();
    await display.next('connection_established');
    assert.equal((await api('/api/live-products/dispatchable', { productId: first })).status, 200);
    const seen = await display.next('product_moved_to_past');
    await display.close();
    assert.equal((await api('/api/live-products/dispatchable', { productId: second })).status, 200);

    const open = await stream();
    await open.next('connection_established');
    assert.equal(await runtime.stop('SIGINT'), 0, runtime.output());
    await open.ended;
    await start();

    const back = await stream(seen.id);
    const missed = await back.next('product_moved_to_past');
    assert.equal(missed.data.productId, second);
    assert.ok(!back.messages.some((m) => m.data.productId === first), 'nothing the display already had');
  });
});
