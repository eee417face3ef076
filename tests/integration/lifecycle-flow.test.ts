import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Identity } from '../../core/access';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NodeAPI, NodeInitializer, NodeStatus } from 'node-red';
import type { FlowNode } from '../../core/flow-files';
import { type FlowKit, startFlowKit } from '../support/flow-kit';
import { openStream, type SseClient } from '../support/sse-client';

const FLOW = 'flows/lifecycle.json';
/** The version the manifest gives the tab: what its audit rows must carry. */
const FLOW_VERSION = (
  JSON.parse(readFileSync('flows/manifest.json', 'utf8')) as { flows: Record<string, { version: string }> }
).flows[FLOW].version;

describe('product lifecycle flow (flows/lifecycle.json)', function () {
  this.timeout(30000);
  let kit: FlowKit;
  let server: http.Server;
  let port: number;
  let app: http.RequestListener | undefined;
  const streams: SseClient[] = [];

  // Keeps Node-RED's HTTP app so the stream can be read over a real socket.
  const captureApp: NodeInitializer = (RED: NodeAPI) => {
    app = (RED as unknown as { httpNode: http.RequestListener }).httpNode;
  };

  async function stream(
    lastEventId?: string,
    path = '/api/live-products/dispatchable/stream',
  ): Promise<SseClient> {
    const client = await openStream(port, path, lastEventId);
    streams.push(client);
    return client;
  }

  async function product(name: string, state: 'ON' | 'OFF' | null = 'ON'): Promise<string> {
    const created = await kit.pool.query<{ id: string }>(
      'INSERT INTO trackopz.products (name) VALUES ($1) RETURNING id::text AS id',
      [name],
    );
    const id = created.rows[0].id;
    if (state)
      await kit.pool.query('INSERT INTO trackopz.jobs (product_id, state) VALUES ($1, $2)', [id, state]);
    return id;
  }

  before(async () => {
    kit = await startFlowKit({
      flows: [FLOW],
      nodeTypes: [captureApp],
      extraNodes: [
        {
          id: 'small-stream',
          type: 'floorflow-sse',
          z: 'lifecycle-tab',
          path: '/api/test/small-stream',
          lifecycles: 'trackopz-product',
          maxClients: 1,
          heartbeatSeconds: 25,
          db: 'floorflow-db-main',
        } as FlowNode,
      ],
    });
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    for (const s of streams.splice(0)) await s.close();
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await kit?.stop();
  });

  describe('GET /api/live-products/dispatchable', () => {
    it('lists the products whose latest job is ON, and not those whose latest job is OFF or that have none', async () => {
      const live = await product('live roll');
      const past = await product('past roll');
      await kit.pool.query(`INSERT INTO trackopz.jobs (product_id, state) VALUES ($1, 'OFF')`, [past]);
      const none = await product('new roll', null);
      const response = await kit.request().get('/api/live-products/dispatchable').expect(200);
      const ids = (response.body.data as Array<{ productId: string }>).map((p) => p.productId);
      assert.ok(ids.includes(live));
      assert.ok(!ids.includes(past) && !ids.includes(none));
      assert.equal(response.body.success, true);
      assert.equal(response.body.count, ids.length);
    });
  });

  describe('POST /api/live-products/dispatchable (dispatch)', () => {
    it('moves a live product to past, answers 200 with the new state, and audits it with source dispatch and the logged-in operator', async () => {
      const id = await product('dispatch me');
      const op3: Identity = { kind: 'user', name: 'op-3', role: 'operator', session: 's' };
      const response = await kit
        .requestAs(op3)
        .post('/api/live-products/dispatchable')
        .send({ productId: id, reason: 'dispatched' })
        .expect(200);
      assert.equal(response.body.success, true);
      assert.deepEqual(
        {
          productId: response.body.data.productId,
          previousState: response.body.data.previousState,
          currentState: response.body.data.currentState,
          isDispatchable: response.body.data.isDispatchable,
        },
        { productId: id, previousState: 'ON', currentState: 'OFF', isDispatchable: false },
      );
      const audit = await kit.pool.query(
        'SELECT action, reason, actor, source, flow_version FROM trackopz.product_transitions WHERE product_id = $1',
        [id],
      );
      assert.deepEqual(audit.rows, [
        {
          action: 'move_to_past',
          reason: 'dispatched',
          actor: 'op-3',
          source: 'dispatch',
          flow_version: FLOW_VERSION,
        },
      ]);
      const list = await kit.request().get('/api/live-products/dispatchable').expect(200);
      assert.ok(!(list.body.data as Array<{ productId: string }>).some((p) => p.productId === id));
    });

    it('refuses a body that names who acts (actor, operatorId, userId) and changes nothing', async () => {
      const id = await product('claimed by the body');
      for (const field of ['actor', 'operatorId', 'userId']) {
        const refused = await kit
          .requestAs({ kind: 'user', name: 'op-3', role: 'operator', session: 's' })
          .post('/api/live-products/dispatchable')
          .send({ productId: id, reason: 'dispatched', [field]: 'someone-else' })
          .expect(400);
        assert.match(refused.body.error, new RegExp(`${field} is not accepted`));
      }
      const audit = await kit.pool.query('SELECT 1 FROM trackopz.product_transitions WHERE product_id = $1', [
        id,
      ]);
      assert.equal(audit.rowCount, 0);
    });

    it('answers 409 for a product that is already past, 404 for an unknown one and 400 without productId', async () => {
      const past = await product('already past', 'OFF');
      const conflict = await kit
        .request()
        .post('/api/live-products/dispatchable')
        .send({ productId: past })
        .expect(409);
      assert.deepEqual(conflict.body, {
        success: false,
        error: 'cannot move_to_past a product in state "OFF"; allowed from "ON"',
      });
      const missing = await kit
        .request()
        .post('/api/live-products/dispatchable')
        .send({ productId: 99999999 })
        .expect(404);
      assert.deepEqual(missing.body, { success: false, error: 'product 99999999 not found' });
      const bad = await kit.request().post('/api/live-products/dispatchable').send({}).expect(400);
      assert.deepEqual(bad.body, { success: false, error: 'productId is required' });
    });

    it('of two concurrent dispatches of one product exactly one wins (200 and 409) with one audit row', async () => {
      const id = await product('contested');
      const [a, b] = await Promise.all([
        kit.request().post('/api/live-products/dispatchable').send({ productId: id }),
        kit.request().post('/api/products/move-to-past').send({ productId: id }),
      ]);
      assert.deepEqual([a.status, b.status].sort(), [200, 409]);
      const audit = await kit.pool.query('SELECT 1 FROM trackopz.product_transitions WHERE product_id = $1', [
        id,
      ]);
      assert.equal(audit.rowCount, 1);
    });
  });

  describe('POST /api/products/lifecycle', () => {
    it('applies move_to_past, reactivate and update_state as the body names them', async () => {
      const id = await product('cycle');
      const request = () => kit.request().post('/api/products/lifecycle');
      await request().send({ productId: id, action: 'move_to_past', reason: 'dispatched' }).expect(200);
      const back = await request().send({ productId: id, action: 'reactivate' }).expect(200);
      assert.equal(back.body.data.currentState, 'ON');
      const set = await request().send({ productId: id, action: 'update_state', state: 'OFF' }).expect(200);
      assert.equal(set.body.data.currentState, 'OFF');
      const audit = await kit.pool.query(
        'SELECT action, source FROM trackopz.product_transitions WHERE product_id = $1 ORDER BY id',
        [id],
      );
      assert.deepEqual(
        audit.rows.map((r) => [r.action, r.source]),
        [
          ['move_to_past', 'lifecycle API'],
          ['reactivate', 'lifecycle API'],
          ['update_state', 'lifecycle API'],
        ],
      );
    });

    it('answers 400 for a missing or unknown action and update_state without a state, 409 for reactivating a live product', async () => {
      const id = await product('strict');
      const request = () => kit.request().post('/api/products/lifecycle');
      assert.deepEqual((await request().send({ productId: id }).expect(400)).body, {
        success: false,
        error: 'action is required: one of move_to_past, reactivate, update_state',
      });
      await request().send({ productId: id, action: 'explode' }).expect(400);
      const noState = await request().send({ productId: id, action: 'update_state' }).expect(400);
      assert.match(noState.body.error, /update_state needs a target state: one of ON, OFF/);
      const conflict = await request().send({ productId: id, action: 'reactivate' }).expect(409);
      assert.equal(conflict.body.success, false);
    });

    it('answers 404 when the body names a job that is not the product’s', async () => {
      const id = await product('with job');
      const other = await product('other');
      const job = await kit.pool.query<{ id: string }>(
        'SELECT id::text AS id FROM trackopz.jobs WHERE product_id = $1',
        [other],
      );
      const response = await kit
        .request()
        .post('/api/products/lifecycle')
        .send({ productId: id, jobId: job.rows[0].id, action: 'move_to_past' })
        .expect(404);
      assert.deepEqual(response.body, {
        success: false,
        error: `job ${job.rows[0].id} of product ${id} not found`,
      });
    });
  });

  describe('GET /api/products/lifecycle and GET /api/products/move-to-past', () => {
    it('returns the stages, timestamps, current state and isDispatchable of a product', async () => {
      const id = await product('staged');
      await kit
        .request()
        .post('/api/products/move-to-past')
        .send({ productId: id, reason: 'done' })
        .expect(200);
      const response = await kit.request().get(`/api/products/lifecycle?productId=${id}`).expect(200);
      const { lifecycle } = response.body as {
        lifecycle: {
          currentState: string;
          isDispatchable: boolean;
          stages: Array<{ state: string; endedAt: string | null }>;
          timestamps: { lastMovedToPastAt: string | null };
        };
      };
      assert.equal(lifecycle.currentState, 'OFF');
      assert.equal(lifecycle.isDispatchable, false);
      assert.deepEqual(
        lifecycle.stages.map((s) => [s.state, s.endedAt === null]),
        [
          ['ON', false],
          ['OFF', true],
        ],
      );
      assert.ok(lifecycle.timestamps.lastMovedToPastAt);
    });

    it('returns the transition history newest first, with the legacy route as source', async () => {
      const id = await product('history');
      await kit.request().post('/api/products/move-to-past').send({ productId: id }).expect(200);
      await kit
        .request()
        .post('/api/products/lifecycle')
        .send({ productId: id, action: 'reactivate' })
        .expect(200);
      const response = await kit.request().get(`/api/products/move-to-past?productId=${id}`).expect(200);
      const history = response.body.history as { transitions: Array<{ action: string; source: string }> };
      assert.deepEqual(
        history.transitions.map((t) => [t.action, t.source]),
        [
          ['reactivate', 'lifecycle API'],
          ['move_to_past', 'legacy move-to-past'],
        ],
      );
    });

    it('answers 400 without productId or with a malformed one, and 404 for an unknown product, on both routes', async () => {
      for (const route of ['/api/products/lifecycle', '/api/products/move-to-past']) {
        assert.deepEqual((await kit.request().get(route).expect(400)).body, {
          success: false,
          error: 'productId is required',
        });
        await kit.request().get(`${route}?productId=abc`).expect(400);
        assert.deepEqual((await kit.request().get(`${route}?productId=123456789`).expect(404)).body, {
          success: false,
          error: 'product 123456789 not found',
        });
      }
    });
  });

  describe('GET /api/dashboard/status', () => {
    it('counts live and past products and shows each machine with its last retained status', async () => {
      const secret = await kit.addMachine('press-9', 'press');
      const machine = await kit.connectMachine('press-9', secret);
      await machine.publishAsync('floorflow/machines/press-9/status', JSON.stringify({ state: 'busy' }), {
        qos: 1,
        retain: true,
      });
      await kit.waitFor(async () => {
        const r = await kit.pool.query(
          `SELECT last_status FROM floorflow.machines WHERE machine_id = 'press-9'`,
        );
        return r.rows[0]?.last_status;
      }, 'the machine status to be recorded');
      const counts = await kit.pool.query<{ live: number; past: number }>(
        `SELECT count(*) FILTER (WHERE state = 'ON')::int AS live, count(*) FILTER (WHERE state = 'OFF')::int AS past
         FROM (SELECT DISTINCT ON (product_id) state FROM trackopz.jobs ORDER BY product_id, created_at DESC, id DESC) l`,
      );
      const response = await kit.request().get('/api/dashboard/status').expect(200);
      const { status } = response.body as {
        status: {
          products: { live: number; past: number };
          machines: Array<{ machineId: string; online: boolean; state: string }>;
          statistics: { transitions: number };
        };
      };
      assert.equal(status.products.live, counts.rows[0].live);
      assert.equal(status.products.past, counts.rows[0].past);
      const press = status.machines.find((m) => m.machineId === 'press-9');
      assert.deepEqual(press && [press.online, press.state], [true, 'busy']);
      assert.equal(typeof status.statistics.transitions, 'number');
    });
  });

  describe('GET /api/live-products/dispatchable/stream', () => {
    it('opens with connection_established and delivers product_moved_to_past within a second of the transition', async () => {
      const id = await product('streamed');
      const client = await stream();
      assert.equal(client.status, 200);
      assert.match(String(client.headers['content-type']), /^text\/event-stream/);
      await client.next('connection_established');
      await kit.request().post('/api/live-products/dispatchable').send({ productId: id }).expect(200);
      // The requirement: the display learns of the dispatch within a second.
      const moved = await client.next('product_moved_to_past', 1000);
      assert.equal(moved.data.productId, id);
      const update = await client.next('dispatchable_products_update', 1000);
      assert.deepEqual([update.data.productId, update.data.change], [id, 'removed']);
      assert.equal(update.id, moved.id);
    });

    it('a client reconnecting with Last-Event-ID gets every event it missed, in order, and nothing it had', async () => {
      const first = await product('first');
      const second = await product('second');
      const client = await stream();
      await client.next('connection_established');
      await kit.request().post('/api/live-products/dispatchable').send({ productId: first }).expect(200);
      const seen = await client.next('product_moved_to_past');
      await client.close();
      // While the display is away: another dispatch and a reactivation.
      await kit.request().post('/api/live-products/dispatchable').send({ productId: second }).expect(200);
      await kit
        .request()
        .post('/api/products/lifecycle')
        .send({ productId: first, action: 'reactivate' })
        .expect(200);
      const back = await stream(seen.id);
      const established = await back.next('connection_established');
      assert.equal(established.data.resumedAfter, seen.id);
      await back.next('dispatchable_products_update');
      await back.next('dispatchable_products_update');
      const replayed = back.messages.filter((m) => m.id !== undefined);
      assert.deepEqual(
        replayed.map((m) => [m.type, m.data.productId, m.data.change ?? null]),
        [
          ['product_moved_to_past', second, null],
          ['dispatchable_products_update', second, 'removed'],
          ['dispatchable_products_update', first, 'added'],
        ],
      );
    });

    it('sends a heartbeat on the runtime clock', async () => {
      const client = await stream();
      await client.next('connection_established');
      await kit.clock.advance(25000);
      const beat = await client.next('heartbeat');
      assert.equal(beat.id, undefined);
    });

    it('refuses a client past the limit with 503 in the API error shape, and frees the place when a client leaves', async () => {
      const node = kit.node('small-stream');
      const statuses = () => (node.status as unknown as { args: NodeStatus[][] }).args.map((a) => a[0].text);
      const first = await stream(undefined, '/api/test/small-stream');
      await first.next('connection_established');
      const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/api/test/small-stream' }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject);
      });
      assert.equal(refused.status, 503);
      assert.deepEqual(JSON.parse(refused.body), {
        success: false,
        error: 'too many stream clients (at most 1); retry later',
      });
      await first.close();
      streams.splice(streams.indexOf(first), 1);
      await kit.waitFor(() => statuses().at(-1) === '0 clients', 'the closed stream to be cleaned up');
      const again = await stream(undefined, '/api/test/small-stream');
      assert.equal(again.status, 200);
    });
  });
});
