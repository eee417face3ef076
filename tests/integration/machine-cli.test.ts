// `floorflow machine add … --serial`, `machine set` and `machine list` for a scanner's own
// settings, as an engineer runs them against the runtime's database (issue 15).
import assert from 'node:assert/strict';
import { createTestDatabase, TestDatabase } from '../support/db';
import { runCli, runtimeEnv, tempDir } from '../support/runtime-process';

describe('floorflow machine: scanner settings', function () {
  this.timeout(120000);
  let db: TestDatabase;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    db = await createTestDatabase();
    env = runtimeEnv(tempDir(), 0, { DATABASE_URL: db.url }, false);
  });
  after(async () => {
    await db.drop();
  });

  it('registers a serial scanner with its port and defaults, changes them, and lists them', async () => {
    const added = runCli(
      [
        'machine',
        'add',
        'wedge-1',
        '--kind',
        'scanner',
        '--serial',
        '/dev/ttyUSB0',
        '--default-operations',
        'coating',
      ],
      env,
    );
    assert.equal(added.status, 0, added.stderr);
    const set = runCli(
      ['machine', 'set', 'wedge-1', '--default-operations', 'coating,kiss_cut', '--double-send-window', '2s'],
      env,
    );
    assert.equal(set.status, 0, set.stderr);
    assert.match(
      set.stdout,
      /scanner wedge-1: default operations coating,kiss_cut, double-send window 2s, serial \/dev\/ttyUSB0/,
    );
    const listed = runCli(['machine', 'list'], env);
    assert.match(
      listed.stdout,
      /wedge-1\tscanner\toffline\tstatus -\tdefault operations coating,kiss_cut, double-send window 2s, serial \/dev\/ttyUSB0/,
    );
    const row = await db.pool.query(`SELECT settings FROM floorflow.machines WHERE machine_id = 'wedge-1'`);
    assert.deepEqual(row.rows[0].settings, {
      serial_port: '/dev/ttyUSB0',
      default_operations: ['coating', 'kiss_cut'],
      double_send_window_ms: 2000,
    });
  });

  it('refuses settings for a machine that is not a scanner, an unknown machine, and a bad window', () => {
    assert.equal(
      runCli(['machine', 'add', 'press-1', '--kind', 'press', '--serial', '/dev/ttyS0'], env).status,
      2,
    );
    assert.equal(runCli(['machine', 'add', 'press-2', '--kind', 'press'], env).status, 0);
    const press = runCli(['machine', 'set', 'press-2', '--double-send-window', '2s'], env);
    assert.equal(press.status, 1);
    assert.match(press.stderr, /press-2 is a press: only scanners have scan settings/);
    assert.equal(runCli(['machine', 'set', 'nobody', '--double-send-window', '2s'], env).status, 1);
    const bad = runCli(['machine', 'set', 'wedge-1', '--double-send-window', 'soon'], env);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--double-send-window: "soon" is not a time/);
  });
});
