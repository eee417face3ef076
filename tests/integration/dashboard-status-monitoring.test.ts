// The product API's monitoring figures in GET /api/dashboard/status, against the running runtime:
// the API answers' times per route over the recent window, and the live stream connections.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { RouteTimes } from '../../core/monitoring';
import { createTestDatabase, type TestDatabase, waitFor } from '../support/db';
import { REPO_ROOT, type RuntimeProcess, startRuntimeProcess, tempDir } from '../support/runtime-process';
import { openStream } from '../support/sse-client';

const STREAM = '/api/live-products/dispatchable/stream';

interface Monitoring {
  responseTimes: { windowSeconds: number; routes: RouteTimes[] };
  streams: { total: number; streams: Array<{ path: string; connections: number }> };
}

describe('GET /api/dashboard/status monitoring figures', function () {
  this.timeout(120000);
  let db: TestDatabase;
  let runtime: RuntimeProcess;
  let token: string;

  const api = (route: string) =>
    fetch(runtime.baseUrl + route, { headers: { authorization: `Bearer ${token}` } });

  async function monitoring(): Promise<Monitoring> {
    const res = await api('/api/dashboard/status');
    assert.equal(res.status, 200);
    return ((await res.json()) as { status: { monitoring: Monitoring } }).status.monitoring;
  }

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    const dataDir = tempDir();
    fs.mkdirSync(path.join(dataDir, 'flows'));
    fs.mkdirSync(path.join(dataDir, 'dashboards'));
    for (const file of ['config.json', 'lifecycle.json']) {
      fs.copyFileSync(path.join(REPO_ROOT, 'flows', file), path.join(dataDir, 'flows', file));
    }
    runtime = await startRuntimeProcess({
      dataDir,
      copyFlows: false,
      env: {
        DATABASE_URL: db.url,
        FLOORFLOW_FLOWS_DIR: path.join(dataDir, 'flows'),
        FLOORFLOW_DASHBOARDS_DIR: path.join(dataDir, 'dashboards'),
      },
    });
    token = runtime.apiToken!;
    await waitFor(
      async () => (await api('/api/live-products/dispatchable')).status === 200,
      'the product routes',
    );
  });

  after(async () => {
    await runtime?.stop('SIGKILL');
    await db?.drop();
  });

  it("reports each route's answers in the window with p50, p95 and errors, and not the live stream", async () => {
    for (let i = 0; i < 5; i++) assert.equal((await api('/api/live-products/dispatchable')).status, 200);
    assert.equal((await api('/api/products/lifecycle?productId=999999')).status, 404);
    const stream = await openStream(runtime.httpPort, STREAM, undefined, {
      authorization: `Bearer ${token}`,
    });
    try {
      await stream.next('connection_established');
      const figures = await monitoring();
      assert.equal(figures.responseTimes.windowSeconds, 300);
      const byRoute = new Map(figures.responseTimes.routes.map((r) => [r.route, r]));
      const list = byRoute.get('GET /api/live-products/dispatchable');
      assert.ok(list, JSON.stringify([...byRoute.keys()]));
      assert.ok(list.count >= 5, `${list.count} answers`);
      assert.equal(list.errors, 0);
      assert.ok(list.p50Ms > 0 && list.p50Ms <= list.p95Ms && list.p95Ms <= list.maxMs, JSON.stringify(list));
      const lifecycle = byRoute.get('GET /api/products/lifecycle');
      assert.deepEqual([lifecycle?.count, lifecycle?.errors], [1, 0], 'a 404 is an answer, not an error');
      assert.ok(![...byRoute.keys()].some((r) => r.includes('/stream')), 'the stream is not a response time');

      assert.equal(figures.streams.total, 1);
      assert.deepEqual(figures.streams.streams, [{ path: STREAM, connections: 1 }]);
    } finally {
      await stream.close();
    }
    await waitFor(
      async () => (await monitoring()).streams.total === 0,
      'the closed stream to leave the count',
    );
  });
});
