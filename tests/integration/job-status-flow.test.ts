import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import type { PoolClient } from 'pg';
import { FlowKit, startFlowKit } from '../support/flow-kit';
import {
  addImposition,
  addJobs,
  addPrintOs,
  addRunlist,
  fileId,
  jobOperationRow,
  jobOperations,
} from '../support/job-status-fixtures';

const FLOW = 'flows/job-status.json';
const SCAN_TOPIC = 'floorflow/machines/scanner-1/scan';

describe('job-status flow (presses and scanners)', () => {
  let kit: FlowKit;

  beforeEach(async () => {
    kit = await startFlowKit({ flows: [FLOW] });
    await addJobs(kit.pool, ['4604_5889', '4604_5890', '7_7']);
    await addImposition(kit.pool, 'IMP-A', [fileId('4604_5889', 1), fileId('4604_5890', 1)]);
    await addImposition(kit.pool, 'IMP-B', [fileId('4604_5889', 2)]);
    await addImposition(kit.pool, 'IMP-7', [fileId('7_7', 1)]);
    await addRunlist(kit.pool, 'RL-100', ['IMP-A', 'IMP-B']);
  });
  afterEach(async () => {
    await kit.stop();
  });

  /**
   * Rows the printer app or a scanner wrote while no poller listened (insert triggers off for this
   * transaction only), so an HTTP trigger finds them waiting.
   */
  async function backlog(work: (client: PoolClient) => Promise<unknown>): Promise<void> {
    const client = await kit.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await work(client);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  }

  async function scanner(): Promise<MqttClient> {
    const secret = await kit.addMachine('scanner-1', 'scanner');
    return kit.connectMachine('scanner-1', secret);
  }

  async function scanRows(): Promise<
    Array<{ scan_id: string; code_text: string; machine_id: string; msg_id: string | null }>
  > {
    return (
      await kit.pool.query(
        'SELECT scan_id, code_text, machine_id, msg_id FROM jobmanager.scanned_codes ORDER BY scan_id',
      )
    ).rows;
  }

  describe('HTTP routes', () => {
    it('POST /api/process-print-os applies new rows and answers processed_count, jobs_updated and last_marker', async () => {
      await backlog((c) =>
        addPrintOs(c, [
          { name: 'IMP-A', status: 'PRINTED', marker: 11 },
          { name: 'IMP-B', status: 'PRINTED', marker: 12 },
        ]),
      );
      const res = await kit.request().post('/api/process-print-os').send({}).expect(200);
      assert.deepEqual(res.body, { processed_count: 2, jobs_updated: 2, last_marker: 12 });
      assert.equal((await jobOperations(kit.pool, '4604_5889')).print, true);
      const again = await kit.request().post('/api/process-print-os').send({ force: true }).expect(200);
      assert.equal(again.body.processed_count, 0, 'force re-reads, but nothing takes effect twice');
    });

    it('POST /api/process-status-updates processes the chosen sources', async () => {
      await backlog(async (c) => {
        await addPrintOs(c, [{ name: 'IMP-7', status: 'PRINTED', marker: 1 }]);
        await c.query(
          `INSERT INTO jobmanager.scanned_codes (code_text, operations, machine_id) VALUES ('RL-100', '["coating"]', 'm1')`,
        );
      });
      const res = await kit
        .request()
        .post('/api/process-status-updates')
        .send({ source: 'both' })
        .expect(200);
      assert.deepEqual(res.body, { print_os_processed: 1, scanner_processed: 1, jobs_updated: 3 });
    });

    it('rejects bad bodies with 400 and the reason', async () => {
      const bad = [
        ['/api/process-print-os', { force: 'yes' }, /force must be true or false/],
        ['/api/process-status-updates', { source: 'fax' }, /source must be/],
        ['/api/process-status-updates', [1], /JSON object/],
        ['/api/admin/job-status/reprocess', { source: 'print_os' }, /from_marker/],
      ] as const;
      for (const [url, body, reason] of bad) {
        const res = await kit.request().post(url).send(body).expect(400);
        assert.equal(res.body.success, false);
        assert.match(res.body.error, reason);
      }
    });

    it('GET /api/job-status/:jobId answers the current status and history, 404 for an unknown job', async () => {
      await backlog((c) => addPrintOs(c, [{ name: 'IMP-A', status: 'PRINTED', marker: 1 }]));
      await kit.request().post('/api/process-print-os').send({}).expect(200);
      const res = await kit.request().get('/api/job-status/4604_5890').expect(200);
      assert.equal(res.body.job_id, '4604_5890');
      assert.deepEqual(res.body.current_status, { print: true });
      assert.equal(res.body.update_history[0].operation_type, 'print');
      assert.equal(res.body.update_history[0].status, 'completed');
      assert.equal(res.body.update_history[0].source_type, 'print_os');
      const missing = await kit.request().get('/api/job-status/nope').expect(404);
      assert.deepEqual(missing.body, { success: false, error: 'job nope not found' });
    });

    it('the admin reprocess route retries skipped records once their data exists, and the gap report shows them before', async () => {
      await backlog((c) =>
        addPrintOs(c, [
          { name: 'IMP-LATE', status: 'PRINTED', marker: 1 },
          { name: 'IMP-7', status: 'PRINTED', marker: 4 },
        ]),
      );
      await kit.request().post('/api/process-print-os').send({}).expect(200);
      const gaps = await kit.request().get('/api/admin/job-status/gaps?source=print_os').expect(200);
      assert.deepEqual(gaps.body.gaps, [{ from: 2, to: 3 }]);
      assert.match(gaps.body.skipped[0].reason, /unknown imposition "IMP-LATE"/);
      await addImposition(kit.pool, 'IMP-LATE', [fileId('7_7', 9)]);
      const res = await kit
        .request()
        .post('/api/admin/job-status/reprocess')
        .send({ source: 'print_os', from_marker: 0 })
        .expect(200);
      assert.equal(res.body.retried_skipped, 1);
      assert.equal(res.body.processed_count, 1);
    });
  });

  describe('pollers', () => {
    it('the print OS poller wakes on the insert NOTIFY and applies the row', async () => {
      await addPrintOs(kit.pool, [
        { name: 'IMP-A', status: 'PRINTED', marker: 1 },
        { name: 'IMP-B', status: 'PRINTED', marker: 2 },
      ]);
      await kit.waitFor(
        async () => (await jobOperations(kit.pool, '4604_5889')).print === true,
        'print=true from the poller',
      );
      const row = await jobOperationRow(kit.pool, '4604_5889', 'print');
      assert.equal(row.completed_by, 'print_os');
    });

    it('a trigger message makes the poller catch up and send its summary', async () => {
      await backlog((c) => addPrintOs(c, [{ name: 'IMP-7', status: 'ABORTED', marker: 3 }]));
      const summary = kit.nextMessage('job-status-batches');
      kit.receive('job-status-print-os-poller', { payload: {} });
      const msg = await summary;
      const payload = msg.payload as { source: string; last_marker: number };
      assert.equal(payload.source, 'print_os');
      assert.equal(payload.last_marker, 3);
    });
  });

  describe('scans over MQTT', () => {
    it('a QoS 1 scan is committed with the authenticated machine id before its PUBACK, then mapped to the runlist jobs', async () => {
      const client = await scanner();
      await client.publishAsync(
        SCAN_TOPIC,
        JSON.stringify({ code: 'RL-100', operations: ['coating'], msg_id: 'a1' }),
        { qos: 1 },
      );
      const rows = await scanRows();
      assert.equal(rows.length, 1, 'the row exists as soon as the publish is acknowledged');
      assert.equal(rows[0].machine_id, 'scanner-1');
      await kit.waitFor(
        async () => (await jobOperations(kit.pool, '4604_5890')).coating === true,
        'coating on the runlist jobs',
      );
      assert.equal((await jobOperations(kit.pool, '4604_5889')).coating, true);
      assert.equal((await jobOperationRow(kit.pool, '4604_5889', 'op003')).completed_by, 'scanner');
    });

    it('a machine id in the payload is ignored; the connection says who scanned', async () => {
      const client = await scanner();
      await client.publishAsync(
        SCAN_TOPIC,
        JSON.stringify({ code: '7_7_1', operations: ['coating'], machine_id: 'press-9' }),
        { qos: 1 },
      );
      assert.equal((await scanRows())[0].machine_id, 'scanner-1');
    });

    it('a repeated msg_id is stored once', async () => {
      const client = await scanner();
      const scan = JSON.stringify({ code: '7_7_1', operations: ['coating'], msg_id: 'same' });
      await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
      await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
      assert.equal((await scanRows()).length, 1);
    });

    it('without msg_id the same code within the window is stored once, and again after it', async () => {
      const client = await scanner();
      const scan = JSON.stringify({ code: '7_7_1', operations: ['coating'] });
      await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
      await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
      assert.equal((await scanRows()).length, 1);
      await kit.clock.advance(2001);
      await client.publishAsync(SCAN_TOPIC, scan, { qos: 1 });
      assert.equal((await scanRows()).length, 2);
    });

    it('a malformed scan is acknowledged, not stored, and kept as rejected with the reason', async () => {
      const client = await scanner();
      const rejected = kit.nextMessage('job-status-rejected');
      await client.publishAsync(SCAN_TOPIC, '{"operations": ["coating"]}', { qos: 1 });
      assert.equal((await scanRows()).length, 0);
      const row = await kit.pool.query('SELECT machine_id, reason FROM jobmanager.rejected_scans');
      assert.deepEqual(row.rows, [{ machine_id: 'scanner-1', reason: 'the scan has no code' }]);
      assert.equal(((await rejected).payload as { reason: string }).reason, 'the scan has no code');
    });

    it('a serial scan given to scan ingest is stored under its serial machine id and mapped', async () => {
      kit.receive('job-status-scan-ingest', { payload: '{"code": "7_7_1", "operations": ["kiss_cut"]}\r\n' });
      await kit.waitFor(
        async () => (await jobOperations(kit.pool, '7_7')).kiss_cut === true,
        'serial scan mapped',
      );
      assert.equal((await scanRows())[0].machine_id, 'serial-scanner');
    });
  });
});
