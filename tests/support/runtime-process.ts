// Starts the real runtime (`node bin/floorflow.js start`) as a child process, the way a
// plant runs it, and waits for its "floorflow ready" line (or only for /healthz, as a load
// balancer does, or for nothing). Tests use it for what only a whole process shows: start-up
// errors, signals, drain, kill -9.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(REPO_ROOT, 'bin', 'floorflow.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface RuntimeProcess {
  child: ChildProcess;
  httpPort: number;
  mqttPort: number;
  baseUrl: string;
  env: NodeJS.ProcessEnv;
  /** Everything the process printed so far. */
  output(): string;
  /** The values printed once at first start, if this start generated them. */
  apiToken?: string;
  adminPassword?: string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Sends a signal to the runtime's whole process group (with `detached`), as a service manager does. */
  signalGroup(signal: NodeJS.Signals): void;
  /** Resolves with the exit code when the process has exited. */
  exited: Promise<number | null>;
  /** Waits until a line matching `pattern` appears. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

export interface RuntimeOptions {
  dataDir?: string;
  /** Extra or replacement environment variables. */
  env?: Record<string, string | undefined>;
  /** Copy the repository's flows/ and dashboards/ into the data dir and run from the copies (default true). */
  copyFlows?: boolean;
  timeoutMs?: number;
  /**
   * What to wait for before resolving: the "floorflow ready" block (default), /healthz
   * answering 200 (nothing printed is read: set FLOORFLOW_API_TOKEN to call the API), or
   * nothing (the process was spawned).
   */
  until?: 'ready' | 'healthz' | 'spawned';
  /** Its own process group, so signalGroup reaches it and whatever it runs in its group. */
  detached?: boolean;
  /** Arguments for node before the script, e.g. `--cpu-prof` for a bench's profile. */
  nodeArgs?: string[];
  /** The floorflow command that runs the runtime (default `start`; `demo` for the demo). */
  command?: string;
}

export function tempDir(prefix = 'floorflow-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // Where user namespaces are forbidden, PostgreSQL (run by root) runs as the postgres OS user, which
  // must reach the data dir.
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Runs `floorflow <args>` to completion (e.g. `machine add`), with the same environment. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    env,
    encoding: 'utf8',
    cwd: REPO_ROOT,
    timeout: 60000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function runtimeEnv(
  dataDir: string,
  httpPort: number,
  extra: Record<string, string | undefined> = {},
  copyFlows = true,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(httpPort),
    HOST: '127.0.0.1',
    MQTT_PORT: '0',
    FLOORFLOW_DATA_DIR: dataDir,
    FLOORFLOW_LOG_LEVEL: 'warn',
    FLOORFLOW_NO_BUILD: '1',
  };
  if (copyFlows) {
    for (const dir of ['flows', 'dashboards']) {
      const from = path.join(REPO_ROOT, dir);
      const to = path.join(dataDir, `${dir}-copy`);
      if (fs.existsSync(from) && !fs.existsSync(to)) fs.cpSync(from, to, { recursive: true });
      else if (!fs.existsSync(to)) fs.mkdirSync(to, { recursive: true });
    }
    env.FLOORFLOW_FLOWS_DIR = path.join(dataDir, 'flows-copy');
    env.FLOORFLOW_DASHBOARDS_DIR = path.join(dataDir, 'dashboards-copy');
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Runtimes started and not yet exited: stopped when the test process exits, so none outlives the run. */
const running = new Map<ChildProcess, string>();

process.on('exit', () => {
  for (const [child, startedBy] of running) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    // A test that forgot its runtime is named, and the runtime stopped the way a user stops it.
    process.stderr.write(
      `runtime process ${child.pid} (data in ${startedBy}) was left running: stopping it\n`,
    );
    child.kill('SIGINT');
    spawnSync('sh', ['-c', `while kill -0 ${child.pid} 2>/dev/null; do sleep 0.05; done`], {
      timeout: 20000,
    });
  }
});

export async function startRuntimeProcess(options: RuntimeOptions = {}): Promise<RuntimeProcess> {
  const dataDir = options.dataDir ?? tempDir();
  const httpPort = await freePort();
  const env = runtimeEnv(dataDir, httpPort, options.env, options.copyFlows !== false);
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, options.command ?? 'start'], {
    env,
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached === true,
  });
  let text = '';
  const waiters: Array<() => void> = [];
  const onData = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    waiters.splice(0).forEach((w) => w());
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  // Which test started it, for the message if it is left running.
  const startedBy = new Error().stack?.split('\n').find((l) => /tests\/(integration|e2e|faults)\//.test(l));
  running.set(child, `${dataDir}, started ${startedBy?.trim() ?? 'by a test'}`);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  exited.then(() => waiters.splice(0).forEach((w) => w()));

  const waitForOutput = (pattern: RegExp, timeoutMs = options.timeoutMs ?? 60000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`runtime did not print ${pattern} within ${timeoutMs} ms:\n${text}`)),
        timeoutMs,
      );
      const check = () => {
        const m = text.match(pattern);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        } else if (child.exitCode !== null) {
          clearTimeout(timer);
          reject(new Error(`runtime exited with ${child.exitCode} before printing ${pattern}:\n${text}`));
        } else {
          waiters.push(check);
        }
      };
      check();
    });

  const baseUrl = `http://127.0.0.1:${httpPort}`;
  const until = options.until ?? 'ready';
  try {
    if (until === 'ready') await waitForOutput(/floorflow ready[\s\S]*stop\s+Ctrl-C/);
    if (until === 'healthz') await waitForHealthy(baseUrl, child, () => text, options.timeoutMs ?? 60000);
  } catch (err) {
    // A start that did not come up is stopped here: the caller has no handle to stop it with.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      await exited;
    }
    throw err;
  }
  const mqtt = text.match(/mqtt:\/\/[^:\s]+:(\d+)/);
  const token = text.match(/API token \(shown once, stored hashed\): (\S+)/);
  const password = text.match(/admin password \(shown once, stored hashed\): (\S+)/);
  return {
    child,
    httpPort,
    mqttPort: mqtt ? Number(mqtt[1]) : 0,
    baseUrl,
    env,
    output: () => text,
    apiToken: token?.[1],
    adminPassword: password?.[1],
    waitForOutput,
    exited,
    signalGroup: (signal: NodeJS.Signals) => {
      if (child.exitCode === null) process.kill(options.detached ? -child.pid! : child.pid!, signal);
    },
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

/** Polls /healthz until it answers 200, as a load balancer or a service manager's probe does. */
async function waitForHealthy(
  baseUrl: string,
  child: ChildProcess,
  output: () => string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`runtime exited with ${child.exitCode} before /healthz answered 200:\n${output()}`);
    const res = await fetch(`${baseUrl}/healthz`).catch(() => undefined);
    if (res?.status === 200) return;
    await res?.body?.cancel();
    if (Date.now() > deadline)
      throw new Error(`/healthz did not answer 200 within ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Logs in to the editor's admin API as a browser does; resolves with the HTTP response. */
export function adminLogin(baseUrl: string, password: string | undefined): Promise<Response> {
  return fetch(`${baseUrl}/editor/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_id: 'node-red-editor',
      grant_type: 'password',
      scope: '*',
      username: 'admin',
      password,
    }),
  });
}
