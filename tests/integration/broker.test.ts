// The embedded broker against a real database: presence with session numbers, the
// broker-published offline will, durable handlers that gate the PUBACK, and limits.
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { EmbeddedBroker } from '../../runtime/broker';
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

  beforeEach(async () => {
    broker = await EmbeddedBroker.create({
      machines,
      topicPrefix: 'floorflow',
      internalPassword: 'internal-pass',
      runtimeId: 'test',
      maxPayloadBytes: 1024,
      maxConnections: 3,
      log: () => undefined,
    });
    port = await broker.listen(0, '127.0.0.1');
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
});
