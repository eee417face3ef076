// Presence per machine, not per connection (issue 15), at MQTT level with the broker wired as the
// runtime wires it (inbox writer attached): a machine with two connections stays online while one
// is up, a will speaks only for its own connection, "last seen" moves with every message, and the
// silent-machine alert is only for machines that are truly silent.
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { DEFAULT_ALERT_RULES, evaluateAlerts } from '../../core/alerts';
import { EmbeddedBroker } from '../../runtime/broker';
import { attachInbox } from '../../runtime/broker-access';
import { alertReadings } from '../../store/alerts';
import { systemClock } from '../../nodes/common/services';
import { InboxWriter } from '../../store/inbox-writer';
import { MachineStore } from '../../store/machines';
import { createTestDatabase, TestDatabase, waitFor } from '../support/db';

const STATUS = 'floorflow/machines/scanner-1/status';

describe('machine presence', function () {
  this.timeout(30000);
  let db: TestDatabase;
  let machines: MachineStore;
  let broker: EmbeddedBroker;
  let port: number;
  let secret: string;
  const logged: string[] = [];
  const clients: mqtt.MqttClient[] = [];

  async function connect(clientId: string, options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      username: 'scanner-1',
      password: secret,
      clientId,
      reconnectPeriod: 0,
      ...options,
    });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    // The broker records the connection just after its CONNACK; the tests speak of connections
    // both the broker and the database know (a disconnect recorded in between was read once as
    // the machine offline, in a fresh-clone run, before the newer connection's row was in).
    await waitFor(async () => {
      const r = await db.pool.query(
        'SELECT 1 FROM floorflow.machine_sessions WHERE client_id = $1 AND disconnected_at IS NULL',
        [clientId],
      );
      return (r.rowCount ?? 0) > 0;
    }, `the session of ${clientId} recorded`);
    return client;
  }

  /** Waits until the broker and the database both know the connection `clientId` is over. */
  async function sessionEnded(clientId: string): Promise<void> {
    await waitFor(async () => {
      const r = await db.pool.query(
        'SELECT 1 FROM floorflow.machine_sessions WHERE client_id = $1 AND disconnected_at IS NOT NULL',
        [clientId],
      );
      return r.rowCount === 1;
    }, `the session of ${clientId} recorded as ended`);
  }

  /** The retained status a display connecting now would get. */
  async function retainedState(): Promise<string> {
    const watcher = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      username: 'floorflow-runtime',
      password: 'internal-pass',
      clientId: `watcher-${clients.length}`,
      reconnectPeriod: 0,
    });
    clients.push(watcher);
    return new Promise<string>((resolve) => {
      watcher.on('message', (_t, payload) => resolve(JSON.parse(payload.toString()).state as string));
      watcher.on('connect', () => watcher.subscribe(STATUS));
    });
  }

  async function silentAlerts(minutesLater: number): Promise<string[]> {
    const now = new Date(Date.now() + minutesLater * 60000);
    const readings = await alertReadings(db.pool, now, 24);
    return evaluateAlerts(DEFAULT_ALERT_RULES, readings, now)
      .filter((c) => c.rule === 'machine_silent')
      .map((c) => c.message);
  }

  beforeEach(async () => {
    db = await createTestDatabase();
    machines = new MachineStore(db.pool, 'test-seal-key');
    secret = await machines.add('scanner-1', 'scanner');
    logged.length = 0;
    broker = await EmbeddedBroker.create({
      machines,
      topicPrefix: 'floorflow',
      internalPassword: 'internal-pass',
      runtimeId: 'test',
      maxPayloadBytes: 64 * 1024,
      maxConnections: 20,
      log: (level, message) => logged.push(`${level}: ${message}`),
    });
    attachInbox(broker, new InboxWriter(db.pool), systemClock);
    port = await broker.listen(0, '127.0.0.1');
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true);
    await broker.close();
    await db.drop();
  });

  it('a second connection of the machine closing cleanly leaves the machine online, with no alert', async () => {
    const main = await connect('scanner-1');
    await main.publishAsync(STATUS, '{"state":"idle"}', { qos: 1, retain: true });
    // As the README's mosquitto_pub: a short-lived client of the same machine publishes and leaves.
    const once = await connect('scanner-1/pub');
    await once.publishAsync(STATUS, '{"state":"idle"}', { qos: 1, retain: true });
    await once.endAsync();
    await sessionEnded('scanner-1/pub');
    const machine = (await machines.get('scanner-1'))!;
    assert.equal(machine.online, true, 'scanner-1 keeps its long-lived connection');
    assert.equal(await retainedState(), 'idle');
    assert.deepEqual(await silentAlerts(6), [], 'a connected machine is not silent');
    assert.ok(main.connected);
  });

  it("a second connection's offline will is not published while the machine's other connection is up", async () => {
    await connect('scanner-1');
    const once = await connect('scanner-1/pub', {
      will: { topic: STATUS, payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: true },
    });
    await once.publishAsync(STATUS, '{"state":"busy"}', { qos: 1, retain: true });
    once.stream.destroy(); // an unclean drop: the broker would publish its will
    await sessionEnded('scanner-1/pub');
    await waitFor(
      () => logged.some((l) => /will of connection scanner-1\/pub is not published/.test(l)),
      'the will refused',
    );
    const machine = (await machines.get('scanner-1'))!;
    assert.equal(machine.online, true);
    assert.equal(
      (machine.last_status as { state?: string }).state,
      'busy',
      'the will was not stored as the status',
    );
    assert.equal(await retainedState(), 'busy', 'a display connecting now sees busy, not offline');
    assert.deepEqual(await silentAlerts(6), []);
  });

  it('the short-lived connection closing first or last: the machine is offline only when both are gone', async () => {
    const main = await connect('scanner-1');
    const once = await connect('scanner-1/pub');
    await main.endAsync();
    await sessionEnded('scanner-1');
    assert.equal((await machines.get('scanner-1'))!.online, true, 'the newer connection is still up');
    await once.endAsync();
    await sessionEnded('scanner-1/pub');
    assert.equal((await machines.get('scanner-1'))!.online, false);
    assert.equal(
      await retainedState(),
      'offline',
      'the broker says offline once the last connection is gone',
    );
    assert.deepEqual(await silentAlerts(0), [], 'just seen: not silent yet');
    assert.deepEqual(await silentAlerts(6), ['machine scanner-1 silent for 6 min']);
  });

  it('last seen is the last message of any kind: a scan from a scanner that connects per scan moves it', async () => {
    const client = await connect('scanner-1');
    await client.endAsync();
    await sessionEnded('scanner-1');
    await db.pool.query(
      `UPDATE floorflow.machines SET last_seen_at = now() - interval '10 minutes' WHERE machine_id = 'scanner-1'`,
    );
    assert.equal((await silentAlerts(0)).length, 1, 'silent for 10 minutes');
    const again = await connect('scanner-1/scan-2');
    await again.endAsync();
    await sessionEnded('scanner-1/scan-2');
    const afterConnection = (await machines.get('scanner-1'))!.last_seen_at!;
    assert.ok(Date.now() - afterConnection.getTime() < 60000, 'a connection is a sign of life');
    await db.pool.query(
      `UPDATE floorflow.machines SET last_seen_at = now() - interval '10 minutes' WHERE machine_id = 'scanner-1'`,
    );
    // An event and a scan are messages too (a status already was).
    const third = await connect('scanner-1/scan-3');
    await db.pool.query(
      `UPDATE floorflow.machines SET last_seen_at = now() - interval '10 minutes' WHERE machine_id = 'scanner-1'`,
    );
    await third.publishAsync('floorflow/machines/scanner-1/scan', '{"code":"J-1","operations":["coating"]}', {
      qos: 1,
    });
    const seen = (await machines.get('scanner-1'))!.last_seen_at!;
    assert.ok(Date.now() - seen.getTime() < 60000, `a scan moves last seen (it says ${seen.toISOString()})`);
    await third.endAsync();
    await sessionEnded('scanner-1/scan-3');
    assert.deepEqual(await silentAlerts(0), []);
  });
});
