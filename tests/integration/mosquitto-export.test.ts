// `floorflow machine export --mosquitto <dir>` against Debian's mosquitto loaded with the files it
// writes: a machine logs in with the secret `machine add` printed, publishes its own topics and
// not another machine's, reads only its own commands; the runtime's account (MQTT_URL's user)
// takes the machine topics through the shared subscription the ingest sessions use.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { type Mosquitto, mosquittoAvailable, startMosquitto } from '../support/mosquitto';
import { runCli, runtimeEnv, tempDir } from '../support/runtime-process';

describe('floorflow machine export --mosquitto', function () {
  this.timeout(60000);
  let db: TestDatabase;
  let broker: Mosquitto | undefined;
  const clients: mqtt.MqttClient[] = [];

  before(async function () {
    if (!mosquittoAvailable())
      throw new Error("these tests need Debian's mosquitto (apt-get install mosquitto)");
    db = await createTestDatabase();
  });
  after(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => undefined);
    await broker?.stop();
    await db?.drop();
  });

  const connect = (username: string | undefined, password: string | undefined, clientId = `${username}`) =>
    new Promise<mqtt.MqttClient>((resolve, reject) => {
      const c = mqtt.connect(broker!.url, {
        username,
        password,
        clientId,
        protocolVersion: 5,
        reconnectPeriod: 0,
      });
      c.once('connect', () => {
        clients.push(c);
        resolve(c);
      });
      c.once('error', (err) => {
        c.end(true);
        reject(err);
      });
    });

  it("writes files mosquitto loads: a machine publishes its own topics, not another machine's, and reads only its cmd", async () => {
    const dataDir = tempDir();
    const env = runtimeEnv(dataDir, 0, {
      DATABASE_URL: db.url,
      MQTT_URL: 'mqtt://ff-runtime:runtime-secret-1@127.0.0.1:1883',
    });
    const secretOf = (id: string, kind: string) => {
      const added = runCli(['machine', 'add', id, '--kind', kind], env);
      assert.equal(added.status, 0, added.stderr);
      return /MQTT password \(shown once, stored hashed\): (\S+)/.exec(added.stdout)![1];
    };
    const scanner = secretOf('scan-1', 'scanner');
    const embosser = secretOf('emb-1', 'embosser');
    const dir = path.join(tempDir(), 'mosquitto');
    const exported = runCli(['machine', 'export', '--mosquitto', dir], env);
    assert.equal(exported.status, 0, exported.stderr);
    assert.match(exported.stdout, /2 machines written for Mosquitto/);
    // The password file is written 0640 for its owner's group; mosquitto started as root reads it
    // as the mosquitto user here (a plant chowns it to that group).
    fs.chmodSync(path.join(dir, 'passwd'), 0o644);
    broker = await startMosquitto({
      config: ['allow_anonymous false', `password_file ${dir}/passwd`, `acl_file ${dir}/acl`],
    });

    await assert.rejects(
      connect(undefined, undefined, 'stranger'),
      /Not authorized|Bad User Name or Password/i,
    );
    await assert.rejects(connect('scan-1', 'wrong-secret'), /Not authorized|Bad User Name or Password/i);
    const runtime = await connect('ff-runtime', 'runtime-secret-1', 'floorflow-ingest-test');
    const received: string[] = [];
    runtime.on('message', (topic) => received.push(topic));
    await runtime.subscribeAsync(
      ['$share/floorflow/floorflow/machines/+/scan/#', 'floorflow/machines/+/cmd'],
      {
        qos: 1,
      },
    );

    const scan = await connect('scan-1', scanner);
    const emb = await connect('emb-1', embosser);
    // Refused publishes are not delivered; the allowed one after them is, so once it has arrived
    // anything delivered before it would be there too.
    await scan
      .publishAsync('floorflow/machines/emb-1/scan', '{"code":"forged"}', { qos: 1 })
      .catch(() => undefined);
    await scan
      .publishAsync('floorflow/machines/scan-1/cmd', '{"type":"forged"}', { qos: 1 })
      .catch(() => undefined);
    await scan.publishAsync('floorflow/machines/scan-1/scan', '{"code":"4604_1"}', { qos: 1 });
    const deadline = Date.now() + 10000;
    while (!received.includes('floorflow/machines/scan-1/scan') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(received, ['floorflow/machines/scan-1/scan']);

    // Mosquitto grants any subscription and checks the read rule on each delivery: a machine
    // subscribed to another machine's cmd receives nothing from it, and its own cmd arrives.
    const embGot: string[] = [];
    const scanGot: string[] = [];
    emb.on('message', (topic) => embGot.push(topic));
    scan.on('message', (topic) => scanGot.push(topic));
    await emb.subscribeAsync('floorflow/machines/emb-1/cmd', { qos: 1 });
    await scan.subscribeAsync(['floorflow/machines/emb-1/cmd', 'floorflow/machines/scan-1/cmd'], { qos: 1 });
    await runtime.publishAsync('floorflow/machines/emb-1/cmd', '{"type":"emboss","job_id":"1"}', { qos: 1 });
    await runtime.publishAsync('floorflow/machines/scan-1/cmd', '{"type":"ping","job_id":"-"}', { qos: 1 });
    const until = Date.now() + 10000;
    while ((embGot.length === 0 || scanGot.length === 0) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(embGot, ['floorflow/machines/emb-1/cmd']);
    assert.deepEqual(scanGot, ['floorflow/machines/scan-1/cmd']);
  });
});
