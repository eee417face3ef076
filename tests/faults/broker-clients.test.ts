// Many machines at once: 500 connections with keep-alive (opened 50 at a time), 100 of them
// dropped abruptly (socket destroyed, no DISCONNECT), and 20 slow consumers that subscribe to
// their own cmd topic and then never read while the runtime's user floods it. The runtime stays
// up, another machine's QoS 1 publishes are all acknowledged, and the presence rows say exactly
// who is connected. No timing is asserted; every wait is generous.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import { createTestDatabase, TestDatabase, waitFor } from '../support/db';
import { MachineCredentials, registerMachines } from '../support/machines';
import { RuntimeProcess, startRuntimeProcess } from '../support/runtime-process';

const MACHINES = 500;
const BATCH = 50;
const DROPPED = 100;
const SLOW = 20;
const COMMANDS_PER_SLOW = 30;
const COMMAND_BYTES = 250_000;
const PROBE_PUBLISHES = 50;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function connect(port: number, machine: MachineCredentials, suffix: string): Promise<mqtt.MqttClient> {
  return withTimeout(
    mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      ...machine,
      clientId: `${machine.username}/${suffix}`,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: 60000,
    }),
    90000,
    `connect ${machine.username}`,
  );
}

describe('fault: broker clients', function () {
  this.timeout(900000);
  let db: TestDatabase;
  let runtime: RuntimeProcess | undefined;
  const clients: mqtt.MqttClient[] = [];

  before(async () => {
    db = await createTestDatabase({ migrate: false });
  });

  after(async () => {
    for (const c of clients) c.end(true);
    await runtime?.stop('SIGINT');
    await db.drop();
  });

  it('stays up with 500 machines, abrupt drops and slow consumers; others still get PUBACKs and presence is exact', async () => {
    runtime = await startRuntimeProcess({ env: { DATABASE_URL: db.url } });
    const port = runtime.mqttPort;
    const ids = Array.from({ length: MACHINES + SLOW + 1 }, (_, i) => `load-${i}`);
    const machines = await registerMachines(runtime.env, ids, 'press');
    const probe = machines.pop()!;
    const slow = machines.splice(MACHINES, SLOW);

    // 500 keep-alive connections, 50 at a time.
    const load: mqtt.MqttClient[] = [];
    for (let i = 0; i < MACHINES; i += BATCH) {
      const batch = await Promise.all(machines.slice(i, i + BATCH).map((m) => connect(port, m, 'load')));
      load.push(...batch);
      clients.push(...batch);
    }

    // Slow consumers: subscribe to their own cmd at QoS 1, then stop reading for good.
    const slowClients: mqtt.MqttClient[] = [];
    for (const m of slow) {
      const c = await connect(port, m, 'slow');
      c.on('error', () => undefined);
      await withTimeout(
        c.subscribeAsync(`floorflow/machines/${m.username}/cmd`, { qos: 1 }),
        60000,
        `subscribe ${m.username}`,
      );
      (c.stream as net.Socket).pause();
      slowClients.push(c);
      clients.push(c);
    }

    // Flood their cmd topics as the runtime would (its own MQTT user); nothing awaits these.
    const secrets = JSON.parse(
      fs.readFileSync(path.join(runtime.env.FLOORFLOW_DATA_DIR!, 'secrets.json'), 'utf8'),
    ) as { internalMqttPassword: string };
    const runtimeClient = await withTimeout(
      mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        username: 'floorflow-runtime',
        password: secrets.internalMqttPassword,
        clientId: 'fault-test-flooder',
        reconnectPeriod: 0,
        connectTimeout: 60000,
      }),
      90000,
      'connect as the runtime user',
    );
    runtimeClient.on('error', () => undefined);
    clients.push(runtimeClient);
    const command = JSON.stringify({ type: 'emboss', job_id: 1, text: 'x'.repeat(COMMAND_BYTES) });
    for (const m of slow) {
      for (let i = 0; i < COMMANDS_PER_SLOW; i++) {
        runtimeClient.publish(`floorflow/machines/${m.username}/cmd`, command, { qos: 1 }, () => undefined);
      }
    }

    // Drop 100 machines without a DISCONNECT.
    for (const c of load.slice(0, DROPPED)) (c.stream as net.Socket).destroy();

    // Another machine's QoS 1 publishes are all acknowledged while this goes on.
    const probeClient = await connect(port, probe, 'probe');
    clients.push(probeClient);
    const acks = await withTimeout(
      Promise.all(
        Array.from({ length: PROBE_PUBLISHES }, (_, i) =>
          probeClient.publishAsync(
            `floorflow/machines/${probe.username}/event`,
            JSON.stringify({ job_id: i, status: 'accepted' }),
            { qos: 1 },
          ),
        ),
      ),
      180000,
      'PUBACKs of the probe machine',
    );
    assert.equal(acks.length, PROBE_PUBLISHES, 'every publish of an unaffected machine is acknowledged');

    // Presence: the 400 kept and the probe online, the 100 dropped offline, and each slow
    // consumer online exactly while the broker still holds its connection (it cuts a client
    // whose writes do not drain within drainTimeout).
    const online = new Set([...machines.slice(DROPPED).map((m) => m.username), probe.username]);
    const offline = new Set(machines.slice(0, DROPPED).map((m) => m.username));
    const slowIds = slow.map((m) => m.username);
    let lastRows: Array<{ machine_id: string; online: boolean }> = [];
    await waitFor(
      async () => {
        const rows = await db.pool.query<{ machine_id: string; online: boolean }>(
          `SELECT machine_id, online FROM floorflow.machines WHERE machine_id = ANY($1::text[])`,
          [ids],
        );
        lastRows = rows.rows;
        return rows.rows.every(
          (r) =>
            (online.has(r.machine_id) && r.online) ||
            (offline.has(r.machine_id) && !r.online) ||
            (slowIds.includes(r.machine_id) && !r.online),
        );
      },
      'presence rows: 400 connected and the probe online; the 100 dropped and the 20 slow consumers offline',
      240000,
    ).catch((err: Error) => {
      const wrong = lastRows.filter((r) => (online.has(r.machine_id) ? !r.online : r.online));
      throw new Error(`${err.message}; wrong rows: ${JSON.stringify(wrong.slice(0, 30))}`);
    });
    const counts = await db.pool.query<{ online: number; offline: number }>(
      `SELECT count(*) FILTER (WHERE online)::int AS online, count(*) FILTER (WHERE NOT online)::int AS offline
       FROM floorflow.machines WHERE machine_id = ANY($1::text[])`,
      [ids],
    );
    assert.deepEqual(counts.rows[0], { online: MACHINES - DROPPED + 1, offline: DROPPED + SLOW });
    const sessions = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM floorflow.machine_sessions
       WHERE machine_id = ANY($1::text[]) AND disconnected_at IS NULL`,
      [ids],
    );
    assert.equal(sessions.rows[0].n, MACHINES - DROPPED + 1, 'one open session per connected machine');

    const reasons = await db.pool.query<{ end_reason: string | null; n: number }>(
      `SELECT end_reason, count(*)::int AS n FROM floorflow.machine_sessions
       WHERE machine_id = ANY($1::text[]) GROUP BY 1 ORDER BY 1`,
      [slowIds],
    );
    assert.ok(
      reasons.rows.every((r) => r.end_reason !== null),
      'every slow consumer session was ended by the broker',
    );

    const health = await fetch(`${runtime.baseUrl}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(runtime.child.exitCode, null, 'the runtime is up');
    console.log(
      `      ${MACHINES} connected, ${DROPPED} dropped, ${SLOW} slow consumers cut (${reasons.rows
        .map((r) => `${r.end_reason}: ${r.n}`)
        .join(', ')}), ${PROBE_PUBLISHES} probe PUBACKs`,
    );
  });
});
