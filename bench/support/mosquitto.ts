// Starts a private Mosquitto on a free loopback port with authentication on (a password
// file made with mosquitto_passwd) and an ACL that mirrors floorflow's topic rules, so the
// baseline pays for the same checks. The machine's own Mosquitto is never touched.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, tempDir } from '../../tests/support/runtime-process';

export interface MosquittoInstance {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startMosquitto(
  users: Array<{ username: string; password: string }>,
  superUser: string,
  topicPrefix: string,
): Promise<MosquittoInstance> {
  const dir = tempDir('floorflow-mosquitto-');
  const port = await freePort();
  const passwordFile = path.join(dir, 'passwd');
  // Plain "user:password" lines, then hashed in place by mosquitto_passwd -U.
  fs.writeFileSync(passwordFile, users.map((u) => `${u.username}:${u.password}\n`).join(''), { mode: 0o600 });
  execFileSync('mosquitto_passwd', ['-U', passwordFile]);
  const aclFile = path.join(dir, 'acl');
  fs.writeFileSync(
    aclFile,
    [
      `user ${superUser}`,
      'topic readwrite #',
      '',
      `pattern write ${topicPrefix}/machines/%u/scan`,
      `pattern write ${topicPrefix}/machines/%u/status`,
      `pattern write ${topicPrefix}/machines/%u/event`,
      `pattern read ${topicPrefix}/machines/%u/cmd`,
      '',
    ].join('\n'),
  );
  const configFile = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(
    configFile,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous false',
      `password_file ${passwordFile}`,
      `acl_file ${aclFile}`,
      'persistence false',
      // Unlimited queue for the subscriber, so both brokers deliver every message.
      'max_queued_messages 0',
      'max_inflight_messages 0',
      'set_tcp_nodelay true',
      'log_type error',
      // Running as root, mosquitto would switch to its own user and lose the files.
      'user root',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('mosquitto', ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  await waitForPort(port, child, () => output);
  return {
    port,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const net = await import('node:net');
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`mosquitto did not listen on ${port}: ${output()}`);
}
