// Scans with the shipped job-status flow, over MQTT: the double-send window compares code and
// operations, and a scanner's own settings in the registry (default operations for code-only
// scans, its double-send window) apply to what it sends (issue 15).
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import helper from 'node-red-node-test-helper';
import { updateScannerSettings } from '../../store/scanner-settings';
import { FlowKit, startFlowKit } from '../support/flow-kit';
import { addJobs, addScanRow, jobOperations } from '../support/job-status-fixtures';

const FLOW = 'flows/job-status.json';
const SCAN_TOPIC = 'floorflow/machines/scanner-1/scan';

describe('scanner settings and the double-send window', () => {
  let kit: FlowKit;

  beforeEach(async () => {
    kit = await startFlowKit({ flows: [FLOW] });
    await addJobs(kit.pool, ['7_7', '8_8']);
  });
  afterEach(async () => {
    await kit.stop();
  });

  async function scanner(): Promise<MqttClient> {
    const secret = await kit.addMachine('scanner-1', 'scanner');
    return kit.connectMachine('scanner-1', secret);
  }

  async function scanRows(): Promise<Array<{ code_text: string; operations: unknown; metadata: unknown }>> {
    return (
      await kit.pool.query(
        'SELECT code_text, operations, metadata FROM jobmanager.scanned_codes ORDER BY scan_id',
      )
    ).rows;
  }

  it('a kiss_cut scan within the window after a coating scan of the same code is a second scan, and both apply', async () => {
    const client = await scanner();
    await client.publishAsync(SCAN_TOPIC, JSON.stringify({ code: '7_7_1', operations: ['coating'] }), {
      qos: 1,
    });
    await client.publishAsync(SCAN_TOPIC, JSON.stringify({ code: '7_7_1', operations: ['kiss_cut'] }), {
      qos: 1,
    });
    assert.deepEqual(
      (await scanRows()).map((r) => r.operations),
      [['coating'], ['kiss_cut']],
    );
    await kit.waitFor(async () => {
      const ops = await jobOperations(kit.pool, '7_7');
      return ops.coating === true && ops.kiss_cut === true;
    }, 'coating and kiss_cut on job 7_7');
  });

  it('the same code and operations within the window are still one scan sent twice', async () => {
    const client = await scanner();
    const scan = JSON.stringify({ code: '7_7_1', operations: ['coating'] });
    await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
    await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
    assert.equal((await scanRows()).length, 1);
  });

  it('a code-only scan from a scanner with default operations updates its job', async () => {
    const client = await scanner();
    await updateScannerSettings(kit.pool, 'scanner-1', { default_operations: ['coating', 'kiss_cut'] });
    await client.publishAsync(SCAN_TOPIC, '8_8_1', { qos: 1 });
    const [row] = await scanRows();
    assert.deepEqual(row.operations, ['coating', 'kiss_cut']);
    assert.deepEqual(row.metadata, { operations_from: 'scanner settings' });
    await kit.waitFor(async () => {
      const ops = await jobOperations(kit.pool, '8_8');
      return ops.coating === true && ops.kiss_cut === true;
    }, 'the default operations applied to job 8_8');
  });

  it("a scan that names its operations keeps them whatever the scanner's defaults", async () => {
    const client = await scanner();
    await updateScannerSettings(kit.pool, 'scanner-1', { default_operations: ['coating', 'kiss_cut'] });
    await client.publishAsync(SCAN_TOPIC, JSON.stringify({ code: '8_8_1', operations: ['coating'] }), {
      qos: 1,
    });
    assert.deepEqual((await scanRows())[0].operations, ['coating']);
  });

  it("a scanner's own double-send window replaces the flow's", async () => {
    const client = await scanner();
    await updateScannerSettings(kit.pool, 'scanner-1', { double_send_window_ms: 10000 });
    const scan = JSON.stringify({ code: '7_7_1', operations: ['coating'] });
    await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
    await kit.clock.advance(5000);
    await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
    assert.equal((await scanRows()).length, 1, 'within its 10 s window: one scan');
    await updateScannerSettings(kit.pool, 'scanner-1', { double_send_window_ms: 0 });
    await kit.clock.advance(1001); // the runtime reads the registry again a second later
    await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
    await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
    assert.equal((await scanRows()).length, 3, 'a window of 0: every scan counts');
  });

  it('a scan the scanner poller skips (stored while no flow ran) is logged with its machine and code', async () => {
    const client = await kit.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica'); // no NOTIFY: waits for the poller
      await addScanRow(client, { code: '9999_2_1', operations: ['coating'], machine_id: 'scanner-9' });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const summary = kit.nextMessage('job-status-batches');
    kit.receive('job-status-scan-poller', { payload: {} });
    await summary;
    const log = helper.log() as unknown as { args: Array<[{ level: number; msg: unknown }]>; WARN: number };
    const warnings = log.args.filter(([e]) => e.level === log.WARN).map(([e]) => String(e.msg));
    assert.ok(
      warnings.some((w) => w === 'scan from scanner-9 of code "9999_2_1" not applied: unknown job 9999_2'),
      warnings.join('\n'),
    );
  });
});
