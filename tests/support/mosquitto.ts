// Starts Debian's mosquitto (/usr/sbin/mosquitto) for a test: on a free port of its own, with a
// temporary config and data directory, persistence on. The system Mosquitto on 1883 is never used.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './runtime-process';

export const MOSQUITTO = process.env.FLOORFLOW_TEST_MOSQUITTO ?? '/usr/sbin/mosquitto';

export interface MosquittoOptions {
  /** Config lines after the listener (default: anonymous clients allowed). */
  config?: string[];
  /** Reuse a directory (its persistence file survives a restart). */
  dir?: string;
  port?: number;
}

export interface Mosquitto {
  port: number;
  url: string;
  dir: string;
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function mosquittoAvailable(): boolean {
  return fs.existsSync(MOSQUITTO);
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'floorflow-mosquitto-'));
  const port = options.port ?? (await freePort());
  const configFile = path.join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'persistence true',
    `persistence_location ${dir}/`,
    // Messages queued for a session whose client is away: the default 1000 would drop a burst.
    'max_queued_messages 100000',
    'log_type error',
    'log_type warning',
    'log_type notice',
    ...(options.config ?? ['allow_anonymous true']),
  ];
  fs.writeFileSync(configFile, lines.join('\n') + '\n');
  // mosquitto drops root privileges to "mosquitto" when started as root; it must reach its files.
  spawnSync('chmod', ['-R', 'a+rwX', dir]);
  const child = spawn(MOSQUITTO, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );
  const deadline = Date.now() + 10000;
  while (!(await accepting(port))) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited at start:\n${text}`);
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    child,
    output: () => text,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
