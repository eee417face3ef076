// Ingest from an external broker (runtime/external-ingest.ts) against Debian's mosquitto and
// PostgreSQL: the ingest sessions are shared between runtimes through leases, a runtime that
// stops hands its sessions over with the messages queued in them, and a message is acknowledged
// to the broker only once committed, so one the database refused arrives again.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { ExternalIngest, sharedSubscriptionProblem } from '../../runtime/external-ingest';
import { LeaseKeeper } from '../../runtime/leases';
import { systemClock } from '../../nodes/common/services';
import { InboxWriter } from '../../store/inbox-writer';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db';
import { Mosquitto, mosquittoAvailable, startMosquitto } from '../support/mosquitto';

const TTL_MS = 1500;

interface TestRuntime {
  id: string;
  keeper: LeaseKeeper;
  ingest: ExternalIngest;
  committed: Set<string>;
  stop(): Promise<void>;
}

describe('ingest from an external MQTT broker (mosquitto)', function () {
  this.timeout(60000);
  let db: TestDatabase;
  let broker: Mosquitto;
  let publisher: mqtt.MqttClient;
  const runtimes: TestRuntime[] = [];

  before(async function () {
    if (!mosquittoAvailable())
      throw new Error("these tests need Debian's mosquitto (apt-get install mosquitto)");
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });
  beforeEach(async () => {
    db = await createTestDatabase({ poolSize: 20 });
    publisher = await mqtt.connectAsync(broker.url, {
      clientId: `scanner-${Math.random()}`,
      protocolVersion: 5,
    });
  });
  afterEach(async () => {
    for (const r of runtimes.splice(0)) await r.stop();
    await publisher?.endAsync();
    // The sessions outlive each test in the broker; a later test's group starts clean.
    for (let i = 0; i < 4; i++) {
      const c = await mqtt.connectAsync(broker.url, {
        clientId: `floorflow-ingest-${i}`,
        protocolVersion: 5,
        clean: true,
      });
      await c.endAsync();
    }
    await db.drop();
  });

  async function startRuntime(id: string, sessions = 4): Promise<TestRuntime> {
    const keeper = new LeaseKeeper({ pool: db.pool, runtimeId: id, ttlMs: TTL_MS, log: () => undefined });
    await keeper.start();
    const inbox = new InboxWriter(db.pool);
    const committed = new Set<string>();
    inbox.onCommitted((receipts) => {
      for (const r of receipts)
        if (r.kind === 'scan' && r.outcome === 'stored') committed.add(r.scan.msg_id!);
    });
    const ingest = new ExternalIngest({
      url: broker.url,
      sessions,
      topicPrefix: 'floorflow',
      pool: db.pool,
      runtimeId: id,
      inbox,
      clock: systemClock,
      ttlMs: TTL_MS,
      log: () => undefined,
    });
    ingest.start();
    let stopped = false;
    const runtime: TestRuntime = {
      id,
      keeper,
      ingest,
      committed,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await ingest.stop();
        await keeper.stop();
      },
    };
    runtimes.push(runtime);
    return runtime;
  }

  let sent = 0;
  async function publishScans(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const id = `m-${++sent}`;
      await publisher.publishAsync(
        `floorflow/machines/scanner-${sent % 5}/scan`,
        JSON.stringify({ code: `JOB${sent}`, operations: ['coating'], msg_id: id }),
        { qos: 1 },
      );
    }
  }

  async function storedScans(): Promise<Map<string, number>> {
    const r = await db.pool.query<{ msg_id: string; n: number }>(
      `SELECT msg_id, count(*)::int AS n FROM jobmanager.scanned_codes GROUP BY msg_id`,
    );
    return new Map(r.rows.map((row) => [row.msg_id, row.n]));
  }

  it('shares the sessions between runtimes, and a runtime that stops hands its sessions over: every scan stored once', async () => {
    sent = 0;
    const a = await startRuntime('aaaa0001');
    await waitFor(() => a.ingest.owned().length === 4, 'runtime a owns the 4 sessions');
    await waitFor(() => a.ingest.connected(), 'its sessions connected');
    await publishScans(100);
    const b = await startRuntime('bbbb0002');
    await waitFor(
      () => a.ingest.owned().length === 2 && b.ingest.owned().length === 2,
      'the sessions shared 2 and 2',
    );
    await waitFor(() => b.ingest.connected(), 'b connected');
    await publishScans(100);
    await a.stop();
    await waitFor(() => b.ingest.owned().length === 4, 'b owns all 4 sessions');
    await publishScans(100);
    const stored = await waitFor(async () => {
      const s = await storedScans();
      return s.size === 300 ? s : undefined;
    }, 'all 300 scans stored');
    assert.deepEqual(
      [...stored].filter(([, n]) => n > 1),
      [],
      'a scan stored twice',
    );
    assert.ok(
      a.committed.size > 0 && b.committed.size > 0,
      `both runtimes stored scans (${a.committed.size}, ${b.committed.size})`,
    );
    assert.ok(b.committed.size > 100, 'b stored the scans sent after a stopped');
  });

  it('acknowledges a scan only once it is committed: one the database refused arrives again', async () => {
    sent = 1000;
    const a = await startRuntime('cccc0003', 2);
    await waitFor(() => a.ingest.owned().length === 2 && a.ingest.connected(), 'the sessions connected');
    await db.pool.query(`CREATE FUNCTION pg_temp_refuse() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'the plant database refuses scans for now'; END $$`);
    await db.pool.query(
      `CREATE TRIGGER refuse BEFORE INSERT ON jobmanager.scanned_codes FOR EACH STATEMENT EXECUTE FUNCTION pg_temp_refuse()`,
    );
    await publishScans(5);
    // The ingest tries, fails, does not acknowledge, reconnects and is given them again: still none stored.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await storedScans()).size, 0);
    await db.pool.query(`DROP TRIGGER refuse ON jobmanager.scanned_codes`);
    const stored = await waitFor(
      async () => {
        const s = await storedScans();
        return s.size === 5 ? s : undefined;
      },
      'the 5 refused scans stored once the database takes them',
      20000,
    );
    assert.deepEqual([...stored.values()], [1, 1, 1, 1, 1]);
  });

  it('finds no problem with mosquitto, and says why a broker without MQTT 5 shared subscriptions will not do', async () => {
    assert.equal(await sharedSubscriptionProblem(broker.url, 'probe1'), undefined);
    const aedes = await Aedes.createBroker();
    const server = net.createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const problem = await sharedSubscriptionProblem(`mqtt://127.0.0.1:${port}`, 'probe2');
      assert.ok(problem, 'a problem is reported');
      assert.doesNotMatch(problem, /\n/);
    } finally {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      server.close();
    }
  });
});
