// The start of the runtime as a plant lives it: a first start that fails must not lock the
// user out, clients must never see a 404 while the flows are starting, and a stop at any
// moment of the start (a service manager stopping a runtime that is still starting) must stop
// everything the start had started, the embedded PostgreSQL included.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { TestDatabase, createTestDatabase } from '../support/db';
import {
  RuntimeProcess,
  adminLogin,
  runCli,
  runtimeEnv,
  startRuntimeProcess,
  tempDir,
} from '../support/runtime-process';

const TOKEN = 'runtime-start-api-token-0123456789';

/** Processes still running from a runtime: by its process group, or by its data directory in their arguments. */
function leftovers(runtime: RuntimeProcess, dataDir: string): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,pgid=,args='], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => {
      const [, pgid] = line.split(/\s+/);
      return Number(pgid) === runtime.child.pid || line.includes(dataDir);
    });
}

describe('runtime start', function () {
  this.timeout(180000);
  let db: TestDatabase | undefined;
  let runtime: RuntimeProcess | undefined;

  afterEach(async () => {
    await runtime?.stop('SIGINT');
    runtime = undefined;
    await db?.drop();
    db = undefined;
  });

  it('a first start that fails keeps no generated password or token: the next start prints both, and they work', async () => {
    db = await createTestDatabase({ migrate: false });
    const dataDir = tempDir();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const failed = runCli(
        ['start'],
        runtimeEnv(dataDir, 0, { DATABASE_URL: db.url, MQTT_PORT: String(taken) }, false),
      );
      assert.equal(failed.status, 1, failed.stdout + failed.stderr);
      assert.equal(
        failed.stderr.trim(),
        `floorflow: port ${taken} is already in use: stop what holds it or set MQTT_PORT to a free port`,
      );
    } finally {
      blocker.close();
    }
    const kept = JSON.parse(fs.readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')) as Record<
      string,
      string
    >;
    assert.equal(kept.adminPasswordHash, undefined, 'no admin password nobody has seen');
    assert.equal(kept.apiTokenHash, undefined, 'no API token nobody has seen');

    runtime = await startRuntimeProcess({ dataDir, env: { DATABASE_URL: db.url } });
    assert.ok(runtime.adminPassword, `the admin password is printed:\n${runtime.output()}`);
    assert.ok(runtime.apiToken, 'the API token is printed');
    assert.equal((await adminLogin(runtime.baseUrl, runtime.adminPassword)).status, 200);
    const api = await fetch(`${runtime.baseUrl}/api/no-such-route`, {
      headers: { authorization: `Bearer ${runtime.apiToken}` },
    });
    assert.equal(api.status, 404, 'the token is accepted');
  });

  it('while the flows start, /api and /v1 answer 503 with Retry-After, never 404; /healthz turns 200 only when the routes answer', async () => {
    db = await createTestDatabase({ migrate: false });
    runtime = await startRuntimeProcess({
      env: { DATABASE_URL: db.url, FLOORFLOW_API_TOKEN: TOKEN },
      until: 'spawned',
    });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const seen = new Map<string, number>();
    const note = (what: string) => seen.set(what, (seen.get(what) ?? 0) + 1);
    // Until /healthz says 200, an API answer is a 503 asking to retry, or (the flows started
    // between the two requests) the flow's own answer: never the 404 of a route not there yet.
    for (;;) {
      assert.equal(runtime.child.exitCode, null, runtime.output());
      const health = await fetch(`${runtime.baseUrl}/healthz`).catch(() => undefined);
      if (health?.status === 200) break;
      await health?.body?.cancel();
      for (const url of ['/api/job-status/4604_5889', '/v1/processing/queue']) {
        const res: Response | undefined = await fetch(runtime.baseUrl + url, { headers: auth }).catch(
          () => undefined,
        );
        if (!res) {
          note('not listening yet');
          continue;
        }
        const body = (await res.json()) as { success?: boolean; error?: string };
        note(`${res.status}`);
        assert.doesNotMatch(String(body.error), /^no route/, `${url} answered before its route was there`);
        if (res.status === 503) {
          assert.equal(res.headers.get('retry-after'), '1');
          assert.deepEqual(body, { success: false, error: 'floorflow is starting; retry shortly' });
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    // At once after: the flows' routes answer.
    const status = await fetch(`${runtime.baseUrl}/api/job-status/4604_5889`, { headers: auth });
    assert.notEqual(status.status, 503);
    assert.doesNotMatch(await status.text(), /no route/);
    const queue = await fetch(`${runtime.baseUrl}/v1/processing/queue`, { headers: auth });
    assert.equal(queue.status, 200, await queue.text());
    await runtime.waitForOutput(/floorflow ready/);
    assert.ok(seen.size > 0, 'the start was watched');
  });

  // Each moment: the line the runtime prints as it reaches it. The data directory is shared,
  // so the first moment catches the database being created and the last one it being started.
  // Starting the flows takes a fraction of a second: the signal may arrive after "ready".
  const moments: Array<{ label: string; line: RegExp; long: boolean }> = [
    {
      label: 'while the embedded database is being created',
      line: /embedded database: creating it in/,
      long: true,
    },
    { label: 'while Node-RED loads its palette', line: /Loading palette nodes/, long: true },
    { label: 'while the flows start', line: /Starting flows/, long: false },
    { label: 'while the embedded database starts', line: /embedded database: starting on/, long: true },
  ];
  it(`SIGTERM to the process group at any moment of the start stops everything it started (${moments.map((m) => m.label).join('; ')})`, async () => {
    const dataDir = tempDir();
    for (const moment of moments) {
      runtime = await startRuntimeProcess({
        dataDir,
        env: { DATABASE_URL: undefined, FLOORFLOW_LOG_LEVEL: 'info' },
        until: 'spawned',
        detached: true,
      });
      await runtime.waitForOutput(moment.line);
      runtime.signalGroup('SIGTERM');
      const code = await runtime.exited;
      const out = runtime.output();
      assert.equal(code, 0, `${moment.label}: exit code\n${out}`);
      assert.match(out, /floorflow stopping \(SIGTERM\)[\s\S]*floorflow stopped/, `${moment.label}\n${out}`);
      if (moment.long)
        assert.match(out, /stopping \(SIGTERM\) during start/, `${moment.label}: stopped during the start`);
      assert.deepEqual(leftovers(runtime, dataDir), [], `${moment.label}: nothing of the runtime is left`);
    }
    // After all those stops the data directory still starts, with its database.
    runtime = await startRuntimeProcess({ dataDir, env: { DATABASE_URL: undefined } });
    const health = await fetch(`${runtime.baseUrl}/healthz`);
    assert.equal(health.status, 200);
  });
});
