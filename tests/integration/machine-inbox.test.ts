// The durable inbox through the embedded broker and the shipped flows: every scan, event and
// status is committed before its PUBACK, a poison scan never blocks its scanner, each domain reads
// only its own machines' events, and a burst of events for one job is applied in order.
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { EmbosserSimulator } from '../../cli/embosser-simulator';
import { FlowKit, startFlowKit } from '../support/flow-kit';

describe('durable machine inbox through the broker', () => {
  let kit: FlowKit;
  const simulators: EmbosserSimulator[] = [];

  afterEach(async () => {
    for (const s of simulators.splice(0)) await s.stop().catch(() => undefined);
    await kit.stop();
  });

  async function machine(
    id: string,
    kind: 'scanner' | 'embosser' | 'engraver',
  ): Promise<{ client: MqttClient; secret: string }> {
    const secret = await kit.addMachine(id, kind);
    return { client: await kit.connectMachine(id, secret), secret };
  }

  describe('without a flow consuming them', () => {
    beforeEach(async () => {
      kit = await startFlowKit({ flows: [] });
    });

    it('a scanner that sends scans the database cannot hold is acknowledged each time, and its next 20 scans are stored', async () => {
      const { client } = await machine('scanner-1', 'scanner');
      const topic = 'floorflow/machines/scanner-1/scan';
      const poison = [
        '{"code": "RL-\\u0000", "operations": ["coating"], "msg_id": "p1"}',
        '{"code": "RL-1", "operations": ["coat\\u0000ing"], "msg_id": "p2"}',
        '{"code": "RL-1", "operations": ["coating"], "user_id": "\\u0000", "msg_id": "p3"}',
        '{"code": "RL-1", "operations": ["coating"], "msg_id": "\\u0000"}',
        '{"code": "RL-\\udc00", "operations": ["coating"], "msg_id": "p5"}',
        '{"code": "RL-1", "operations": ["coating"], "scanned_at": "+099999-01-01T00:00:00Z", "msg_id": "p6"}',
      ];
      // Each publish resolves on its PUBACK: none of them may hang.
      for (const payload of poison) await client.publishAsync(topic, payload, { qos: 1 });
      const good = Array.from({ length: 20 }, (_, i) =>
        client.publishAsync(
          topic,
          JSON.stringify({ code: `RL-${i}`, operations: ['coating'], msg_id: `g${i}` }),
          {
            qos: 1,
          },
        ),
      );
      await Promise.all(good);

      const rejected = await kit.pool.query<{ payload: string; reason: string }>(
        'SELECT payload, reason FROM jobmanager.rejected_scans ORDER BY id',
      );
      assert.equal(rejected.rows.length, poison.length);
      rejected.rows.forEach((row, i) => {
        assert.equal(row.payload, poison[i], 'kept as it arrived (JSON text holds its escapes already)');
        assert.match(row.reason, /NUL|surrogate|1970 and 9999/);
      });
      const stored = await kit.pool.query('SELECT msg_id FROM jobmanager.scanned_codes ORDER BY scan_id');
      assert.deepEqual(
        stored.rows.map((r) => r.msg_id),
        good.map((_, i) => `g${i}`),
      );
    });

    it('an event and a status are committed before their PUBACK, whether or not a flow reads them', async () => {
      const { client } = await machine('EMB-1', 'embosser');
      await client.publishAsync('floorflow/machines/EMB-1/event', '{"job_id": 3, "status": "accepted"}', {
        qos: 1,
      });
      const events = await kit.pool.query(
        'SELECT machine_id, machine_kind, payload FROM floorflow.machine_events',
      );
      assert.deepEqual(events.rows, [
        { machine_id: 'EMB-1', machine_kind: 'embosser', payload: { job_id: 3, status: 'accepted' } },
      ]);
      await client.publishAsync('floorflow/machines/EMB-1/status', '{"state": "busy"}', {
        qos: 1,
        retain: true,
      });
      const status = await kit.pool.query(
        `SELECT last_status FROM floorflow.machines WHERE machine_id = 'EMB-1'`,
      );
      assert.deepEqual(status.rows[0].last_status, { state: 'busy' });
    });
  });

  describe('with the embossing and engraving flows', () => {
    beforeEach(async () => {
      kit = await startFlowKit({ flows: ['flows/embossing.json', 'flows/engraving.json'] });
    });

    async function sentJob(): Promise<{ jobId: string; client: MqttClient }> {
      const { client, secret } = await machine('EMB-1', 'embosser');
      const simulator = new EmbosserSimulator({
        machineId: 'EMB-1',
        secret,
        url: `mqtt://127.0.0.1:${kit.mqttPort}`,
        workMs: 0,
      });
      simulators.push(simulator);
      await simulator.start();
      simulator.setMode('silent');
      await kit.waitFor(async () => {
        const row = await kit.pool.query(`SELECT online FROM floorflow.machines WHERE machine_id = 'EMB-1'`);
        return row.rows[0]?.online;
      }, 'EMB-1 online');
      const plate = await kit.pool.query<{ id: string }>(
        `INSERT INTO embossing.plates (plate_number, batch_code, status) VALUES ('AB-1', 'B-7', 'ready_for_embossing') RETURNING id::text AS id`,
      );
      const res = await kit
        .request()
        .post('/api/embossing-jobs')
        .send({ plate_ids: [plate.rows[0].id], machine_id: 'EMB-1' })
        .expect(202);
      const jobId = String(res.body.data.id);
      await kit.waitFor(() => simulator.received.length === 1, 'the command at the machine');
      return { jobId, client };
    }

    async function appliedLog(jobId: string): Promise<string[]> {
      const rows = await kit.pool.query<{ result: string }>(
        `SELECT result FROM embossing.machine_messages WHERE job_id = $1 AND direction = 'in' ORDER BY id`,
        [jobId],
      );
      return rows.rows.map((r) => r.result);
    }

    it('a burst of events for one job is applied in the order the machine sent it, each once', async () => {
      const { jobId, client } = await sentJob();
      const topic = 'floorflow/machines/EMB-1/event';
      // Three QoS 1 publishes in flight at once: they arrive in one read and are stored in one flush.
      await Promise.all(
        ['accepted', 'in_progress', 'completed'].map((status) =>
          client.publishAsync(topic, JSON.stringify({ job_id: Number(jobId), status }), { qos: 1 }),
        ),
      );
      await kit.waitFor(async () => (await appliedLog(jobId)).length === 3, 'three events applied');
      assert.deepEqual(await appliedLog(jobId), [
        'applied: accepted',
        'applied: in_progress',
        'applied: completed',
      ]);
      const ledger = await kit.pool.query(
        `SELECT source_id, outcome FROM jobmanager.processed_source_records WHERE source_type = 'embossing_event' ORDER BY source_id`,
      );
      assert.deepEqual(
        ledger.rows.map((r) => r.outcome),
        ['applied', 'applied', 'applied'],
      );
    });

    it("an engraver's event never reaches the embossing flow", async () => {
      const { jobId } = await sentJob();
      const { client } = await machine('ENG-1', 'engraver');
      await client.publishAsync(
        'floorflow/machines/ENG-1/event',
        JSON.stringify({ job_id: Number(jobId), status: 'completed' }),
        { qos: 1 },
      );
      // The engraving flow reads it (and finds no engraving job of that id); embossing never does.
      await kit.waitFor(async () => {
        const rows = await kit.pool.query(
          `SELECT outcome FROM jobmanager.processed_source_records WHERE source_type = 'engraving_event'`,
        );
        return rows.rows[0]?.outcome === 'skipped';
      }, 'the engraving flow to record the event');
      const embossing = await kit.pool.query(
        `SELECT 1 FROM jobmanager.processed_source_records WHERE source_type = 'embossing_event'`,
      );
      assert.equal(embossing.rows.length, 0);
      assert.deepEqual(await appliedLog(jobId), []);
      const job = await kit.request().get(`/api/embossing-jobs/${jobId}`).expect(200);
      assert.equal(job.body.data.status, 'sent');
    });
  });
});
