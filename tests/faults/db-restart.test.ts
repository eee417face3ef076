// The database goes away under scan load and comes back: the runtime with its embedded
// PostgreSQL, whose server the test stops (fast shutdown) and starts again on the same
// files and port. While it is down /healthz says so, node status shows it, and no scan is
// acknowledged; afterwards the runtime reconnects by itself and nothing acknowledged is lost.
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Pool } from 'pg';
import { chooseRunMode, commandFor } from '../../runtime/embedded-postgres';
import { waitFor } from '../support/db';
import { registerMachines } from '../support/machines';
import { NodeStatusWatch, watchEditorStatus } from '../support/editor-status';
import { RuntimeProcess, freePort, startRuntimeProcess, tempDir } from '../support/runtime-process';
import { ScanStream, startScanStream } from '../support/scan-stream';

const ADMIN_PASSWORD = 'db-restart-admin-password';

function postmaster(dataDir: string): { pid: number; port: number } {
  const lines = fs.readFileSync(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n');
  return { pid: Number(lines[0]), port: Number(lines[3]) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the embedded package's postgres on the runtime's files and port, as the runtime did. */
async function startPostgres(dataDir: string, port: number): Promise<ChildProcess> {
  const { postgres } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as {
    postgres: string;
  };
  const pgDir = path.join(dataDir, 'postgres');
  const args = ['-D', pgDir, '-p', String(port)];
  args.push(
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=200',
  );
  const run = commandFor(chooseRunMode(pgDir, path.dirname(postgres)), postgres, args);
  return spawn(run.command, run.args, { ...run.options, stdio: 'ignore', detached: true });
}

/** Runs `step`; if it fails, the error carries the runtime's last output lines. */
async function withOutput<T>(runtime: RuntimeProcess, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    const tail = runtime.output().split('\n').slice(-40).join('\n');
    throw new Error(
      `${(err as Error).message}\nruntime exit code ${runtime.child.exitCode}, output:\n${tail}`,
      { cause: err },
    );
  }
}

describe('fault: database restart under scan load', function () {
  this.timeout(300000);
  let runtime: RuntimeProcess | undefined;
  let restarted: ChildProcess | undefined;
  let stream: ScanStream | undefined;
  let status: NodeStatusWatch | undefined;
  let pool: Pool | undefined;

  after(async () => {
    status?.close();
    await stream?.stop();
    await runtime?.stop('SIGINT');
    await pool?.end();
    if (restarted && restarted.exitCode === null) {
      const exited = new Promise((r) => restarted!.once('exit', r));
      restarted.kill('SIGINT');
      await exited;
    }
  });

  it('reports the outage, acknowledges no scan while the database is down, reconnects by itself and loses nothing', async () => {
    const dataDir = tempDir();
    const mqttPort = await freePort();
    runtime = await startRuntimeProcess({
      dataDir,
      env: { DATABASE_URL: undefined, MQTT_PORT: String(mqttPort), FLOORFLOW_ADMIN_PASSWORD: ADMIN_PASSWORD },
    });
    const scanners = await registerMachines(runtime.env, ['db-scanner-1', 'db-scanner-2'], 'scanner');
    status = await watchEditorStatus(runtime.baseUrl, ADMIN_PASSWORD);
    const total = 300;
    stream = startScanStream({
      url: () => `mqtt://127.0.0.1:${mqttPort}`,
      scanners,
      ratePerSecond: 20,
      maxScans: total,
    });
    await waitFor(() => stream!.acked.size >= 30, 'the first 30 scans acknowledged', 60000);

    const server = postmaster(dataDir);
    process.kill(server.pid, 'SIGINT'); // fast shutdown: sessions are cut, as in a crash of the server
    await waitFor(() => !alive(server.pid), 'PostgreSQL to stop', 60000);

    const health = await withOutput(runtime, () =>
      waitFor(
        async () => {
          const res = await fetch(`${runtime!.baseUrl}/healthz`);
          const body = (await res.json()) as { database?: string };
          return res.status === 503 && /^down/.test(body.database ?? '') && body;
        },
        '/healthz to report the database down',
        30000,
      ),
    );
    assert.match(health.database!, /^down/);
    const ackedWhenDown = stream.acked.size;
    const sentWhenDown = stream.sent.size;
    // Scans keep coming while the database is down; none of them may be acknowledged.
    await waitFor(
      () => stream!.sent.size >= sentWhenDown + 40,
      '40 more scans sent during the outage',
      60000,
    );
    await waitFor(
      () => status!.events.some((e) => e.fill === 'red' && /database|not stored|connect/i.test(e.text ?? '')),
      `a node status showing the database outage (seen: ${JSON.stringify(status.events.slice(-8))})`,
      30000,
    );
    assert.equal(stream.acked.size, ackedWhenDown, 'no scan acknowledged while the database was down');

    restarted = await startPostgres(dataDir, server.port);
    await waitFor(
      async () => (await fetch(`${runtime!.baseUrl}/healthz`)).status === 200,
      '/healthz to recover without a restart of the runtime',
      60000,
    );
    assert.equal(
      await stream.settled(120000),
      true,
      `every scan acknowledged in the end (${stream.acked.size}/${total})`,
    );

    const secrets = JSON.parse(fs.readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')) as {
      databasePassword: string;
    };
    pool = new Pool({
      connectionString: `postgresql://postgres:${encodeURIComponent(secrets.databasePassword)}@127.0.0.1:${server.port}/floorflow`,
      max: 1,
    });
    const stored = await pool.query<{ msg_id: string; n: number }>(
      `SELECT msg_id, count(*)::int AS n FROM jobmanager.scanned_codes WHERE msg_id = ANY($1::text[]) GROUP BY msg_id`,
      [[...stream.acked]],
    );
    const counts = new Map(stored.rows.map((r) => [r.msg_id, r.n]));
    const missing = [...stream.acked].filter((id) => !counts.has(id));
    assert.deepEqual(missing, [], 'acknowledged but not stored');
    assert.deepEqual(
      stored.rows.filter((r) => r.n > 1),
      [],
      'stored more than once',
    );
  });
});
