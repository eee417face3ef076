import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SimulateUsageError, brokerOf, simulateCommand } from '../../cli/simulate';

describe('floorflow simulate', () => {
  it('names what is missing: the machine kind and id, or the secret', async () => {
    await assert.rejects(simulateCommand([], {}), (err: Error) => {
      assert.ok(err instanceof SimulateUsageError);
      assert.match(err.message, /embosser.*<machine_id>/);
      return true;
    });
    await assert.rejects(
      simulateCommand(['embosser', 'EMB-1'], {}),
      /--secret or set FLOORFLOW_MACHINE_SECRET/,
    );
  });

  it('refuses a fail share outside 0..1 and a negative work time', async () => {
    const env = { FLOORFLOW_MACHINE_SECRET: 's' };
    await assert.rejects(simulateCommand(['embosser', 'EMB-1', '--fail-share', '2'], env), /--fail-share/);
    await assert.rejects(simulateCommand(['embosser', 'EMB-1', '--work-ms', '-5'], env), /--work-ms/);
  });

  it('takes the broker from --url, MQTT_URL or MQTT_PORT, else from the running runtime, never a guess at 1883', () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-sim-'));
    try {
      assert.equal(brokerOf('mqtt://h:1', {}).url, 'mqtt://h:1');
      assert.equal(brokerOf(undefined, { MQTT_URL: 'mqtt://b:2' }).url, 'mqtt://b:2');
      assert.equal(brokerOf(undefined, { MQTT_PORT: '1999' }).url, 'mqtt://127.0.0.1:1999');
      assert.throws(
        () => brokerOf(undefined, { FLOORFLOW_DATA_DIR: dataDir }),
        /no floorflow runtime is running on .*runtime\.json is missing/,
      );
      // A runtime that was killed leaves its file: its pid no longer runs.
      fs.writeFileSync(
        path.join(dataDir, 'runtime.json'),
        JSON.stringify({ pid: 2 ** 22 + 7, mqtt: 'mqtt://127.0.0.1:1', http: 'x', startedAt: 'x' }),
      );
      assert.throws(() => brokerOf(undefined, { FLOORFLOW_DATA_DIR: dataDir }), /names a stopped one/);
      fs.writeFileSync(
        path.join(dataDir, 'runtime.json'),
        JSON.stringify({ pid: process.pid, mqtt: 'mqtt://127.0.0.1:4242', http: 'x', startedAt: 'x' }),
      );
      const found = brokerOf(undefined, { FLOORFLOW_DATA_DIR: dataDir });
      assert.equal(found.url, 'mqtt://127.0.0.1:4242');
      assert.match(found.from, new RegExp(`pid ${process.pid}`));
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
