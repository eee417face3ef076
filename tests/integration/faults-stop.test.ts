// A stop after real work: the runtime with every shipped flow, after scanners have sent
// scans, drains and exits on SIGINT and leaves no database connection behind.
import assert from 'node:assert/strict';
import { Client } from 'pg';
import { createTestDatabase, TestDatabase } from '../support/db';
import { otherConnections } from '../support/faults';
import { registerMachines } from '../support/machines';
import { RuntimeProcess, startRuntimeProcess } from '../support/runtime-process';
import { startScanStream } from '../support/scan-stream';

describe('fault: stopping after work', function () {
  this.timeout(180000);
  let db: TestDatabase;
  let runtime: RuntimeProcess | undefined;

  before(async () => {
    db = await createTestDatabase({ migrate: false });
  });

  after(async () => {
    await runtime?.stop('SIGKILL');
    await db.drop();
  });

  it('exits with 0 on SIGINT after a scan stream, leaving no database connection open', async () => {
    runtime = await startRuntimeProcess({ env: { DATABASE_URL: db.url } });
    const scanners = await registerMachines(
      runtime.env,
      ['stop-scanner-1', 'stop-scanner-2', 'stop-scanner-3'],
      'scanner',
    );
    const stream = startScanStream({
      url: () => `mqtt://127.0.0.1:${runtime!.mqttPort}`,
      scanners,
      ratePerSecond: 50,
      maxScans: 60,
    });
    assert.equal(await stream.settled(60000), true, 'every scan was acknowledged');
    await stream.stop();

    const code = await runtime.stop('SIGINT');
    assert.equal(code, 0, runtime.output());
    assert.match(runtime.output(), /floorflow stopped/);
    const probe = new Client({ connectionString: db.url, application_name: 'floorflow-test' });
    await probe.connect();
    try {
      assert.equal(await otherConnections(probe), 0, 'the runtime closed every connection');
    } finally {
      await probe.end();
    }
  });
});
