// The embedded broker against a real database: presence with session numbers, the
// broker-published offline will, durable handlers that gate the PUBACK, and limits.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { BrokerOptions, EmbeddedBroker } from '../../runtime/broker';
import { MachineStore } from '../../store/machines';
import { createTestDatabase, TestDatabase, waitFor } from '../support/db';

describe('embedded broker', function () {
  this.timeout(30000);
  let db: TestDatabase;
  let machines: MachineStore;
  let broker: EmbeddedBroker;
  let port: number;
  let secret: string;
  const clients: mqtt.MqttClient[] = [];

  async function connect(options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      username: 'press-1',
      password: secret,
      clientId: typeof options.username === 'string' ? undefined : 'press-1',
      reconnectPeriod: 0,
      ...options,
    });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('connection closed before CONNACK')));
    });
    return client;
  }

  before(async () => {
    db = await createTestDatabase();
    machines = new MachineStore(db.pool, 'test-seal-key');
    secret = await machines.add('press-1', 'press');
    await machines.add('scanner-9', 'scanner');
  });

  const logged: string[] = [];

  async function startBroker(options: Partial<BrokerOptions> = {}): Promise<void> {
    broker = await EmbeddedBroker.create({
      machines,
      topicPrefix: 'floorflow',
      internalPassword: 'internal-pass',
      runtimeId: 'test',
      maxPayloadBytes: 1024,
      maxConnections: 3,
      log: (level, message) => logged.push(`${level}: ${message}`),
      ...options,
    });
    port = await broker.listen(0, '127.0.0.1');
  }

  /** Replaces the broker of beforeEach with one of other limits. */
  async function restartBroker(options: Partial<BrokerOptions>): Promise<void> {
    await broker.close();
    await startBroker(options);
  }

  /** A raw TCP socket that sends `bytes`; resolves with what became of it. */
  function rawSocket(bytes: Buffer, keepSending?: Buffer): Promise<{ closedAfterMs: number; sent: number }> {
    return new Promise((resolve) => {
      const started = Date.now();
      let sent = 0;
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(bytes);
        sent += bytes.length;
        const pump = () => {
          while (keepSending && !socket.destroyed && sent < 50 * 1024 * 1024) {
            sent += keepSending.length;
            if (!socket.write(keepSending)) return void socket.once('drain', pump);
          }
        };
        pump();
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ closedAfterMs: Date.now() - started, sent }));
    });
  }

  beforeEach(async () => {
    logged.length = 0;
    await startBroker();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true);
    await broker.close();
  });

  after(async () => {
    await db.drop();
  });

  it('records a machine online with a new session number, and offline when it leaves', async () => {
    const before = Number((await machines.get('press-1'))!.session_seq);
    const client = await connect();
    const online = await waitFor(async () => {
      const m = await machines.get('press-1');
      return m?.online && m;
    }, 'press-1 online');
    assert.equal(Number(online.session_seq), before + 1);
    assert.deepEqual(broker.onlineMachines(), ['press-1']);
    await client.endAsync();
    await waitFor(async () => (await machines.get('press-1'))?.online === false, 'press-1 offline');
    const session = await db.pool.query(
      'SELECT end_reason, disconnected_at FROM floorflow.machine_sessions WHERE machine_id = $1 AND session_seq = $2',
      [online.machine_id, online.session_seq],
    );
    assert.ok(session.rows[0].disconnected_at);
  });

  it('publishes a retained offline status for a machine whose connection drops', async () => {
    const machine = await connect();
    await machine.publishAsync('floorflow/machines/press-1/status', '{"state":"busy"}', {
      qos: 1,
      retain: true,
    });
    const watcher = await connect({ username: 'floorflow-runtime', password: 'internal-pass' });
    await watcher.subscribeAsync('floorflow/machines/press-1/status');
    const statuses: string[] = [];
    watcher.on('message', (_t, payload) => statuses.push(JSON.parse(payload.toString()).state));
    await waitFor(() => statuses.includes('busy'), 'the retained busy status');
    machine.stream.destroy(); // an unclean drop, as when a cable is pulled
    await waitFor(() => statuses.includes('offline'), 'the offline will');
    const late = await connect({
      username: 'floorflow-runtime',
      password: 'internal-pass',
      clientId: 'late',
    });
    const retained = await new Promise<string>((resolve) => {
      late.on('message', (_t, payload) => resolve(JSON.parse(payload.toString()).state));
      late.subscribe('floorflow/machines/press-1/status');
    });
    assert.equal(retained, 'offline', 'a display that connects later sees offline');
  });

  it('acknowledges a QoS 1 publish only after its durable handler has committed', async () => {
    let release!: () => void;
    const stored: string[] = [];
    broker.onDurable('scan', async (machineId, payload) => {
      await new Promise<void>((r) => (release = r));
      stored.push(`${machineId}:${payload.toString()}`);
    });
    const client = await connect();
    let acked = false;
    const publish = client
      .publishAsync('floorflow/machines/press-1/scan', '{"code":"A"}', { qos: 1 })
      .then(() => {
        acked = true;
      });
    await waitFor(() => release !== undefined, 'the handler to start');
    assert.equal(acked, false, 'no PUBACK while the handler runs');
    release();
    await publish;
    assert.deepEqual(stored, ['press-1:{"code":"A"}']);
  });

  it('does not acknowledge a publish whose durable handler fails', async () => {
    broker.onDurable('scan', async () => {
      throw new Error('database unavailable');
    });
    const client = await connect();
    let acked = false;
    client.publish('floorflow/machines/press-1/scan', '{"code":"B"}', { qos: 1 }, (err) => {
      if (!err) acked = true;
    });
    await new Promise<void>((resolve) => client.once('close', () => resolve()));
    assert.equal(acked, false);
  });

  it('refuses payloads above the limit and publishes while draining', async () => {
    const big = await connect();
    const closedBig = new Promise<void>((resolve) => big.once('close', () => resolve()));
    big.publish('floorflow/machines/press-1/event', Buffer.alloc(2048, 'x'), { qos: 1 });
    await closedBig;
    const client = await connect({ clientId: 'press-1/drain-test' });
    broker.startDrain();
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish('floorflow/machines/press-1/event', '{}', { qos: 1 });
    await closed;
    await assert.rejects(connect({ clientId: 'press-1/after-drain' }), /Server unavailable/);
  });

  it('refuses connections past the connection limit', async () => {
    await connect({ clientId: 'press-1/c1' });
    await connect({ clientId: 'press-1/c2' });
    await connect({ clientId: 'press-1/c3' });
    await assert.rejects(connect({ clientId: 'press-1/c4' }), /Server unavailable/);
  });

  it("refuses a client id that is not the machine's own: another machine's, a random one, none", async () => {
    for (const clientId of ['scanner-9', 'press-10', 'mqttjs_1a2b3c4d', 'press-1/', '']) {
      await assert.rejects(
        connect({ clientId, clean: true }),
        /Identifier rejected|closed before CONNACK/,
        JSON.stringify(clientId),
      );
    }
    assert.ok(
      logged.some((l) => /client id scanner-9 is not press-1/.test(l)),
      logged.join('\n'),
    );
    await connect({ clientId: 'press-1/display' });
  });

  it('a machine reconnecting with its own client id replaces its session: recorded as such, no offline published', async () => {
    const watcher = await connect({ username: 'floorflow-runtime', password: 'internal-pass' });
    const statuses: string[] = [];
    watcher.on('message', (_t, payload) => statuses.push(JSON.parse(payload.toString()).state));
    await watcher.subscribeAsync('floorflow/machines/press-1/status', { qos: 1 });
    const seqBefore = Number((await machines.get('press-1'))!.session_seq);
    const first = await connect({
      will: {
        topic: 'floorflow/machines/press-1/status',
        payload: Buffer.from('{"state":"offline"}'),
        qos: 1,
        retain: true,
      },
    });
    const firstSeq = await waitFor(async () => {
      const row = await machines.get('press-1');
      return Number(row!.session_seq) > seqBefore && Number(row!.session_seq);
    }, 'first session');
    const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    const second = await connect();
    await firstClosed;
    await waitFor(
      async () => Number((await machines.get('press-1'))!.session_seq) === firstSeq + 1,
      'second session',
    );
    const ended = await waitFor(async () => {
      const r = await db.pool.query<{ end_reason: string | null }>(
        'SELECT end_reason FROM floorflow.machine_sessions WHERE machine_id = $1 AND session_seq = $2',
        ['press-1', firstSeq],
      );
      return r.rows[0]?.end_reason;
    }, 'the first session ended');
    assert.equal(ended, 'taken over by a new connection of the same machine');
    // A marker published after the takeover: once it arrives, an offline would have too.
    await second.publishAsync('floorflow/machines/press-1/status', '{"state":"idle"}', {
      qos: 1,
      retain: true,
    });
    await waitFor(() => statuses.includes('idle'), 'the marker');
    assert.deepEqual(statuses, ['idle'], 'no offline for a machine that reconnected');
    assert.equal((await machines.get('press-1'))!.online, true);
    first.end(true);
  });

  it('refuses more connections of one machine than its limit, with a logged reason', async () => {
    await restartBroker({ maxConnections: 100, maxConnectionsPerMachine: 3 });
    await connect({ clientId: 'press-1/a' });
    await connect({ clientId: 'press-1/b' });
    await connect({ clientId: 'press-1/c' });
    await assert.rejects(connect({ clientId: 'press-1/d' }), /Server unavailable/);
    assert.ok(
      logged.some((l) => /press-1 refused: it already holds 3 connections \(the limit is 3\)/.test(l)),
    );
    // Another machine is not affected, and a takeover does not count twice.
    await connect({ clientId: 'press-1/c' });
  });

  it("refuses a retained message past the machine's count or bytes, and still takes one that replaces or deletes", async () => {
    await restartBroker({
      maxPayloadBytes: 64 * 1024,
      maxRetainedPerMachine: 3,
      maxRetainedBytesPerMachine: 100 * 1024,
    });
    const machine = await connect();
    for (const topic of ['status', 'event/a', 'event/b']) {
      await machine.publishAsync(`floorflow/machines/press-1/${topic}`, '{"state":"idle"}', {
        qos: 1,
        retain: true,
      });
    }
    const closed = new Promise<void>((resolve) => machine.once('close', () => resolve()));
    machine.publish('floorflow/machines/press-1/event/c', '{"n":4}', { qos: 1, retain: true });
    await closed;
    assert.ok(
      logged.some((l) =>
        /retained message on floorflow\/machines\/press-1\/event\/c refused: it would keep 4 retained messages/.test(
          l,
        ),
      ),
      logged.join('\n'),
    );

    const again = await connect();
    await again.publishAsync('floorflow/machines/press-1/event/a', Buffer.alloc(60 * 1024, 0x61), {
      qos: 1,
      retain: true,
    });
    await again.publishAsync('floorflow/machines/press-1/event/b', '', { qos: 1, retain: true }); // deletes
    await again.publishAsync('floorflow/machines/press-1/event/c', '{"n":4}', { qos: 1, retain: true });
    const big = new Promise<void>((resolve) => again.once('close', () => resolve()));
    again.publish('floorflow/machines/press-1/status', Buffer.alloc(50 * 1024, 0x62), {
      qos: 1,
      retain: true,
    });
    await big;
    assert.ok(
      logged.some((l) => /bytes \(the limit is 3 and 102400 bytes\)/.test(l)),
      logged.join('\n'),
    );
    // The runtime clearing a retained message frees its room.
    const runtime = await connect({ username: 'floorflow-runtime', password: 'internal-pass' });
    await runtime.publishAsync('floorflow/machines/press-1/event/a', '', { qos: 1, retain: true });
    const fourth = await connect({ clientId: 'press-1/fourth' });
    await fourth.publishAsync('floorflow/machines/press-1/event/d', '{"n":5}', { qos: 1, retain: true });
    // Not retained ones are not limited.
    const third = await connect();
    for (let i = 0; i < 10; i++)
      await third.publishAsync('floorflow/machines/press-1/event', '{}', { qos: 1 });
  });

  it('closes a connection whose CONNECT declares more than the packet limit at once, before it logs in (TCP and WebSocket)', async () => {
    // Finding 1 of issue 20: a CONNECT saying 200 MB, then data, was buffered whole until the connect timeout.
    await restartBroker({ connectTimeoutMs: 60000 });
    const header = Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]); // remaining length 200 MiB
    const tcp = await rawSocket(header, Buffer.alloc(64 * 1024, 0x61));
    assert.ok(tcp.sent < 20 * 1024 * 1024, `${tcp.sent} bytes went out before the close`);
    assert.ok(
      logged.some((l) => /a packet declared 209715200 bytes, the limit is 5120/.test(l)),
      logged.join('\n'),
    );

    const server = http.createServer();
    broker.attachWebSocket(server, '/mqtt');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const wsPort = (server.address() as { port: number }).port;
      const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/mqtt`, 'mqtt');
      await new Promise<void>((resolve) => ws.once('open', () => resolve()));
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      ws.on('error', () => undefined);
      // Small WebSocket frames, each under its own limit, adding up to one huge MQTT packet.
      ws.send(header);
      for (let i = 0; i < 200 && ws.readyState === WebSocket.OPEN; i++) ws.send(Buffer.alloc(1000, 0x61));
      await closed;
    } finally {
      server.close();
    }
  });

  it('refuses connections past the number still logging in, at once', async () => {
    await restartBroker({ maxPendingConnections: 2, connectTimeoutMs: 60000 });
    const silent = [net.connect(port, '127.0.0.1'), net.connect(port, '127.0.0.1')];
    for (const s of silent) s.on('error', () => undefined);
    await waitFor(() => broker.pendingConnections() === 2, 'two connections waiting to log in');
    await rawSocket(Buffer.from([0x10, 0x00]));
    assert.deepEqual(
      silent.map((s) => s.destroyed),
      [false, false],
      'the third closed while the first two still wait',
    );
    assert.ok(
      logged.some((l) => /refused: 2 connections are still logging in/.test(l)),
      logged.join('\n'),
    );
    for (const s of silent) s.destroy();
    await waitFor(() => broker.pendingConnections() === 0, 'the waiting ones gone');
    await connect(); // and then there is room again
  });

  it('closes a connection that sends no CONNECT within the deadline', async () => {
    await restartBroker({ connectTimeoutMs: 200 });
    const silent = net.connect(port, '127.0.0.1');
    silent.on('error', () => undefined);
    await new Promise<void>((resolve) => silent.once('close', () => resolve()));
    assert.equal(broker.pendingConnections(), 0);
  });
});
