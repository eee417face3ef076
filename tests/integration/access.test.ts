// Logins, roles and display links against the real runtime process with the shipped flows,
// driven over HTTP, the SSE stream and Dashboard 2.0's socket.io protocol (a socket.io client,
// not a page): who may read and act, who the records name, and that strangers cannot lock an
// engineer out.
import assert from 'node:assert/strict';
import { io, type Socket } from 'socket.io-client';
import { type SeededFloor, seedFloor } from '../support/dashboard-fixtures';
import { type TestDatabase, createTestDatabase, waitFor } from '../support/db';
import { addDisplay, addUser, displayCookie, loginCookie, rawRequest } from '../support/logins';
import { type RuntimeProcess, runCli, startRuntimeProcess } from '../support/runtime-process';
import { openStream } from '../support/sse-client';

const API_TOKEN = 'access-test-api-token-0123456789';
const ADMIN_PASSWORD = 'access-test-admin';
const BOARD = 'ff-dash-embossing-board';

function dashboardSocket(baseUrl: string, cookie?: string): Socket {
  return io(baseUrl, {
    path: '/dashboard/socket.io',
    transports: ['polling'],
    reconnection: false,
    extraHeaders: cookie ? { cookie } : {},
  });
}

/** Resolves with 'connected' or the connect error's message. */
function connectOutcome(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('connect_error', (err) => resolve(err.message));
  });
}

describe('logins, roles and display links (runtime process, HTTP, SSE and socket.io)', function () {
  this.timeout(180000);
  let db: TestDatabase;
  let runtime: RuntimeProcess;
  let floor: SeededFloor;
  const sockets: Socket[] = [];

  before(async () => {
    db = await createTestDatabase();
    floor = await seedFloor(db.pool, new Date());
    runtime = await startRuntimeProcess({
      env: {
        DATABASE_URL: db.url,
        FLOORFLOW_API_TOKEN: API_TOKEN,
        FLOORFLOW_ADMIN_PASSWORD: ADMIN_PASSWORD,
        FLOORFLOW_LOG_LEVEL: 'info',
      },
    });
  });

  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
  });

  after(async () => {
    await runtime?.stop('SIGINT');
    await db?.drop();
  });

  it('wrong passwords from a stranger slow down and stop the stranger, not the engineer: admin still logs in to the editor, and each failure is logged with its address', async () => {
    const tokenLogin = (password: string, localAddress?: string) =>
      rawRequest(runtime.baseUrl, '/editor/auth/token', {
        localAddress,
        body: {
          client_id: 'node-red-editor',
          grant_type: 'password',
          scope: '*',
          username: 'admin',
          password,
        },
      });
    const stranger: number[] = [];
    for (let i = 0; i < 8; i++) stranger.push((await tokenLogin(`guess-${i}`, '127.0.0.2')).status);
    assert.deepEqual(stranger.slice(0, 5), [403, 403, 403, 403, 403], 'wrong passwords are refused');
    assert.deepEqual(stranger.slice(5), [429, 429, 429], 'then the stranger waits');

    // Node-RED's own count per user name locked admin here for ten minutes, for everyone.
    const engineer = await tokenLogin(ADMIN_PASSWORD, '127.0.0.1');
    assert.equal(engineer.status, 200, engineer.body);
    const { access_token } = JSON.parse(engineer.body) as { access_token: string };
    const flows = await rawRequest(runtime.baseUrl, '/editor/flows', {
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(flows.status, 200);
    await runtime.waitForOutput(/failed login for "admin" from 127\.0\.0\.2/);
    await runtime.waitForOutput(/login refused for "admin" from 127\.0\.0\.2/);
  });

  it('an anonymous visitor gets the login page for /dashboard and /editor and no data from /api; /metrics and /healthz answer as before', async () => {
    for (const path of ['/dashboard/embossing', '/editor/']) {
      const res = await rawRequest(runtime.baseUrl, path, { headers: { accept: 'text/html' } });
      assert.equal(res.status, 303, path);
      assert.match(res.headers.location ?? '', /^\/login\?next=/);
    }
    const page = await rawRequest(runtime.baseUrl, '/login');
    assert.equal(page.status, 200);
    assert.match(page.body, /<form method="post" action="\/login">/);
    const setup = await rawRequest(runtime.baseUrl, '/dashboard/_setup');
    assert.equal(setup.status, 401);
    const settings = await rawRequest(runtime.baseUrl, '/editor/settings');
    assert.equal(settings.status, 401);
    const plates = await rawRequest(runtime.baseUrl, '/api/plates');
    assert.equal(plates.status, 401);
    assert.doesNotMatch(plates.body, /AB-1001/);
    assert.equal((await rawRequest(runtime.baseUrl, '/healthz')).status, 200);
    const metrics = await rawRequest(runtime.baseUrl, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /floorflow_http_requests_total/);
  });

  it('a viewer reads the API but may not change anything; an operator acts and is named in created_by and the audit rows; the API token is named too', async () => {
    const viewer = await loginCookie(runtime.baseUrl, 'admin', ADMIN_PASSWORD).then(async () => {
      addUser(runtime.env, 'vera', 'viewer');
      return loginCookie(runtime.baseUrl, 'vera', 'vera-password-1');
    });
    addUser(runtime.env, 'olga', 'operator');
    const operator = await loginCookie(runtime.baseUrl, 'olga', 'olga-password-1');
    const origin = runtime.baseUrl;
    const body = { plate_ids: [floor.plates[0].id], machine_id: floor.embosser };

    const read = await rawRequest(runtime.baseUrl, '/api/plates', { headers: { cookie: viewer } });
    assert.equal(read.status, 200);
    const refused = await rawRequest(runtime.baseUrl, '/api/embossing-jobs', {
      headers: { cookie: viewer, origin },
      body,
    });
    assert.equal(refused.status, 403);
    assert.match(refused.body, /vera may not do this: a viewer may only read/);

    const crossSite = await rawRequest(runtime.baseUrl, '/api/embossing-jobs', {
      headers: { cookie: operator, origin: 'http://evil.example' },
      body,
    });
    assert.equal(crossSite.status, 403, 'a page of another site cannot act with the cookie');
    const admin = await rawRequest(runtime.baseUrl, '/api/admin/orders/1/confirm', {
      headers: { cookie: operator, origin },
      body: {},
    });
    assert.equal(admin.status, 403);
    assert.equal(
      (await db.pool.query('SELECT 1 FROM embossing.embossing_jobs WHERE created_by IS NOT NULL')).rowCount,
      0,
    );

    const claimed = await rawRequest(runtime.baseUrl, '/api/embossing-jobs', {
      headers: { cookie: operator, origin },
      body: { ...body, created_by: 'someone-else' },
    });
    assert.equal(claimed.status, 400);
    assert.match(claimed.body, /created_by is not accepted: floorflow records who made the request \(olga\)/);

    const created = await rawRequest(runtime.baseUrl, '/api/embossing-jobs', {
      headers: { cookie: operator, origin },
      body,
    });
    assert.equal(created.status, 202, created.body);
    const job = (JSON.parse(created.body) as { data: { id: string; created_by: string } }).data;
    assert.equal(job.created_by, 'olga');
    const audit = await db.pool.query<{ actor: string }>(
      `SELECT DISTINCT actor FROM floorflow.lifecycle_transitions WHERE lifecycle = 'embossing-plate' AND entity_id = $1`,
      [floor.plates[0].id],
    );
    assert.deepEqual(audit.rows, [{ actor: 'olga' }]);
    const cancelled = await rawRequest(runtime.baseUrl, `/api/embossing-jobs/${job.id}/cancel`, {
      headers: { authorization: `Bearer ${API_TOKEN}` },
      body: {},
    });
    assert.equal(cancelled.status, 200, cancelled.body);
    const trace = await rawRequest(runtime.baseUrl, `/api/trace/plate/${floor.plates[0].id}`, {
      headers: { cookie: viewer },
    });
    assert.equal(trace.status, 200);
    const events = (
      JSON.parse(trace.body) as { events: Array<{ type: string; detail: Record<string, unknown> }> }
    ).events;
    assert.ok(events.some((e) => e.type === 'embossing_job_created' && e.detail.created_by === 'olga'));
    assert.ok(
      events.some(
        (e) => e.type === 'transition' && e.detail.action === 'cancel' && e.detail.actor === 'token:api',
      ),
      'the cancel names the API token',
    );
  });

  it('the dispatch stream (SSE) opens with the session cookie, and a logout ends the session', async () => {
    const cookie = await loginCookie(runtime.baseUrl, 'admin', ADMIN_PASSWORD);
    const stream = await openStream(runtime.httpPort, '/api/live-products/dispatchable/stream', undefined, {
      cookie,
    });
    try {
      assert.equal(stream.status, 200);
      await stream.next('connection_established', 15000);
    } finally {
      await stream.close();
    }
    const out = await rawRequest(runtime.baseUrl, '/logout', {
      method: 'POST',
      headers: { cookie, origin: runtime.baseUrl, 'content-type': 'application/json' },
      body: {},
    });
    assert.equal(out.status, 200);
    assert.equal((await rawRequest(runtime.baseUrl, '/api/plates', { headers: { cookie } })).status, 401);
  });

  it('a socket.io client without a session can neither connect, nor read a board, nor trigger an action', async () => {
    const socket = dashboardSocket(runtime.baseUrl);
    sockets.push(socket);
    let configs = 0;
    socket.on('ui-config', () => configs++);
    assert.equal(await connectOutcome(socket), 'log in to see the floor displays');
    // What a page would send; the server never sees it on a namespace it refused.
    socket.emit('widget-send', BOARD, {
      topic: 'emboss',
      payload: { plate_ids: [floor.plates[1].id], machine_id: floor.embosser },
    });
    const forged = dashboardSocket(runtime.baseUrl, 'floorflow_session=made-up-token');
    sockets.push(forged);
    assert.equal(await connectOutcome(forged), 'log in to see the floor displays');
    assert.equal(configs, 0);
    const plate = await db.pool.query(`SELECT status FROM embossing.plates WHERE id = $1`, [
      floor.plates[1].id,
    ]);
    assert.equal(plate.rows[0].status, 'ready_for_embossing');
  });

  it('a display link shows its pages over socket.io but every action is refused and nothing is written; revoked, it is cut off and cannot reconnect', async () => {
    const link = addDisplay(runtime.env, 'line-2', ['embossing']);
    const cookie = await displayCookie(runtime.baseUrl, link);
    const socket = dashboardSocket(runtime.baseUrl, cookie);
    sockets.push(socket);
    const config = new Promise<{ pages: Record<string, { path: string }>; widgets: Record<string, unknown> }>(
      (resolve) => socket.once('ui-config', (_base: string, c) => resolve(c)),
    );
    assert.equal(await connectOutcome(socket), 'connected');
    const ui = await config;
    assert.deepEqual(
      Object.values(ui.pages).map((p) => p.path),
      ['/embossing'],
      'a display limited to one page is offered only that page',
    );
    assert.ok(BOARD in ui.widgets);
    assert.ok(!('ff-dash-dispatch-board' in ui.widgets));

    const outcome = new Promise<{ ok: boolean; message: string }>((resolve) =>
      socket.on(
        `msg-input:${BOARD}`,
        (msg: { topic?: string; payload: { ok: boolean; message: string } }) => {
          if (msg.topic === 'action-result') resolve(msg.payload);
        },
      ),
    );
    socket.emit('widget-send', BOARD, {
      topic: 'emboss',
      payload: { plate_ids: [floor.plates[1].id], machine_id: floor.embosser },
      _client: { user: { name: 'olga', role: 'operator' } },
    });
    const refused = await outcome;
    assert.equal(refused.ok, false);
    assert.match(refused.message, /display only shows the floor/);
    const plate = await db.pool.query(`SELECT status FROM embossing.plates WHERE id = $1`, [
      floor.plates[1].id,
    ]);
    assert.equal(plate.rows[0].status, 'ready_for_embossing');

    const disconnected = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()));
    const revoked = runCli(['display', 'revoke', 'line-2'], runtime.env);
    assert.equal(revoked.status, 0, revoked.stderr);
    await disconnected;
    const again = dashboardSocket(runtime.baseUrl, cookie);
    sockets.push(again);
    assert.equal(await connectOutcome(again), 'log in to see the floor displays');
    const link2 = await rawRequest(runtime.baseUrl, link);
    assert.equal(link2.status, 404, 'the revoked link itself no longer logs in');
  });

  it('a disabled user is logged out everywhere, and a reset password ends the old sessions', async () => {
    addUser(runtime.env, 'dora', 'operator');
    const cookie = await loginCookie(runtime.baseUrl, 'dora', 'dora-password-1');
    assert.equal((await rawRequest(runtime.baseUrl, '/api/plates', { headers: { cookie } })).status, 200);
    assert.equal(runCli(['user', 'disable', 'dora'], runtime.env).status, 0);
    await waitFor(
      async () => (await rawRequest(runtime.baseUrl, '/api/plates', { headers: { cookie } })).status === 401,
      'the disabled user to be refused',
      30000,
    );
    const login = await rawRequest(runtime.baseUrl, '/login', {
      body: { username: 'dora', password: 'dora-password-1' },
    });
    assert.equal(login.status, 401);
    assert.equal(
      runCli(['user', 'reset-password', 'dora', '--password', 'dora-new-pass-2'], runtime.env).status,
      0,
    );
    await loginCookie(runtime.baseUrl, 'dora', 'dora-new-pass-2');
    const listed = runCli(['user', 'list'], runtime.env);
    assert.match(listed.stdout, /dora\toperator\tactive/);
  });
});
