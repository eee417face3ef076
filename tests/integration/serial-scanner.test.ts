// A serial scanner for real (issue 15): a pseudo-terminal pair made by socat stands for the
// scanner's cable. The scanner is registered with its port like a machine; the shipped job-status
// flow's serial scanners node reads the port, and a line written on the scanner's side is stored
// under the registered machine, with its default operations, and applied to its job. The port
// disappearing shows on the machines page.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { updateScannerSettings } from '../../store/scanner-settings';
import { machinesBoard } from '../../store/dashboards';
import { FlowKit, startFlowKit } from '../support/flow-kit';
import { addJobs, jobOperations } from '../support/job-status-fixtures';
import { tempDir } from '../support/runtime-process';

describe('serial scanner on a pseudo-terminal pair', function () {
  this.timeout(60000);
  let kit: FlowKit;
  let socat: ChildProcess | undefined;
  let dir: string;

  /** socat links two pseudo-terminals: what is written to `scanner` is read from `port`. */
  async function startSocat(): Promise<{ scanner: string; port: string }> {
    const scanner = path.join(dir, 'scanner');
    const port = path.join(dir, 'port');
    socat = spawn('socat', [`pty,raw,echo=0,link=${scanner}`, `pty,raw,echo=0,link=${port}`], {
      stdio: 'ignore',
    });
    const missing = new Promise<never>((_, reject) =>
      socat!.once('error', (err) =>
        reject(new Error(`this test needs socat from Debian (apt-get install socat): ${err.message}`)),
      ),
    );
    missing.catch(() => undefined);
    await Promise.race([missing, new Promise((r) => setTimeout(r, 200))]);
    await kit.waitFor(() => fs.existsSync(scanner) && fs.existsSync(port), 'socat pseudo-terminals');
    return { scanner, port };
  }

  beforeEach(async () => {
    dir = tempDir('floorflow-serial-');
    kit = await startFlowKit({ flows: ['flows/job-status.json'] });
    await addJobs(kit.pool, ['7_7']);
  });
  afterEach(async () => {
    socat?.kill('SIGTERM');
    socat = undefined;
    await kit.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a line written on the scanner side is stored under the registered machine and applied to its job; the port vanishing shows', async () => {
    const { scanner, port } = await startSocat();
    await kit.addMachine('wedge-1', 'scanner');
    // As `floorflow machine add wedge-1 --kind scanner --serial <port>` and `machine set --default-operations`.
    await updateScannerSettings(kit.pool, 'wedge-1', {
      serial_port: port,
      default_operations: ['coating', 'kiss_cut'],
    });
    await kit.clock.advance(5000); // the node reads the registry again
    const online = async () =>
      (await machinesBoard(kit.pool)).machines.find((m) => m.machine_id === 'wedge-1');
    await kit.waitFor(async () => (await online())?.online === true, 'wedge-1 online with its port open');

    fs.writeFileSync(scanner, '7_7_1\r\n');
    const row = await kit.waitFor(async () => {
      const r = await kit.pool.query(
        `SELECT machine_id, code_text, operations FROM jobmanager.scanned_codes WHERE machine_id = 'wedge-1'`,
      );
      return r.rows[0] as { machine_id: string; code_text: string; operations: string[] } | undefined;
    }, 'the scan stored');
    assert.deepEqual(row, { machine_id: 'wedge-1', code_text: '7_7_1', operations: ['coating', 'kiss_cut'] });
    await kit.waitFor(async () => {
      const ops = await jobOperations(kit.pool, '7_7');
      return ops.coating === true && ops.kiss_cut === true;
    }, 'the default operations applied to job 7_7');

    socat!.kill('SIGTERM'); // the cable is pulled: the pseudo-terminal disappears
    const gone = await kit.waitFor(async () => {
      const m = await online();
      return m && !m.online && m;
    }, 'wedge-1 offline');
    assert.equal(gone.state, 'offline');
    assert.match(String(gone.last_status?.reason), /serial port .*port (disappeared|closed)/);
  });

  it('a registered port that is not there is shown on the machines page and tried again', async () => {
    await kit.addMachine('wedge-2', 'scanner');
    await updateScannerSettings(kit.pool, 'wedge-2', { serial_port: path.join(dir, 'missing') });
    await kit.clock.advance(5000);
    const status = await kit.waitFor(async () => {
      const m = (await machinesBoard(kit.pool)).machines.find((x) => x.machine_id === 'wedge-2');
      return m?.last_status && m;
    }, 'the port problem recorded');
    assert.equal(status.online, false);
    assert.match(String(status.last_status!.reason), /serial port .*missing cannot be opened/);
    const { port } = await (async () => {
      // The port appears (the scanner is plugged in): the next rescan opens it.
      const p = await startSocat();
      await updateScannerSettings(kit.pool, 'wedge-2', { serial_port: p.port });
      return p;
    })();
    await kit.clock.advance(5000);
    await kit.waitFor(
      async () =>
        (await machinesBoard(kit.pool)).machines.find((x) => x.machine_id === 'wedge-2')?.online === true,
      `wedge-2 online on ${port}`,
    );
  });
});
