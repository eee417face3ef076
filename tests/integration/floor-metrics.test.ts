import assert from 'node:assert/strict';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import mqtt from 'mqtt';
import supertest from 'supertest';
import { registerFloorMetrics, unregisterFloorMetricsSource } from '../../runtime/floor-metrics';
import { registry } from '../../runtime/metrics';
import { ManualClock } from '../../nodes/common/services';
import { EmbeddedBroker, INTERNAL_MQTT_USER } from '../../runtime/broker';
import { createFrontApp } from '../../runtime/http';
import { beginAlert } from '../../store/alerts';
import { createJob } from '../../store/embossing';
import { MachineStore } from '../../store/machines';
import { seedFloor } from '../support/dashboard-fixtures';
import { type TestDatabase, createTestDatabase, waitFor } from '../support/db';

/** The metric's samples as "name{label="value",...}" → value. */
async function samples(name: string): Promise<Map<string, number>> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `${name} is registered`);
  const read = (await metric.get()) as MetricObjectWithValues<MetricValue<string>>;
  return new Map(
    read.values.map((v) => {
      const labels = Object.entries(v.labels)
        .map(([k, l]) => `${k}="${l}"`)
        .join(',');
      const full = (v as { metricName?: string }).metricName ?? name;
      return [labels ? `${full}{${labels}}` : full, v.value];
    }),
  );
}

describe('floor metrics on /metrics (runtime/floor-metrics)', function () {
  this.timeout(30000);
  let db: TestDatabase;
  // Midday, so every fixture time falls on the same UTC day.
  const clock = new ManualClock(new Date('2026-01-05T12:00:00Z'));

  before(async () => {
    db = await createTestDatabase();
    await seedFloor(db.pool, clock.now());
    registerFloorMetrics({ pool: db.pool, clock, cacheMs: 5000 });
  });
  after(async () => {
    unregisterFloorMetricsSource();
    await db.drop();
  });

  it('reports queue, processing, completed-today, retries and dead letters per domain from the database', async () => {
    const queue = await samples('floorflow_jobs_in_queue');
    assert.equal(queue.get('floorflow_jobs_in_queue{domain="embossing"}'), 0);
    assert.equal(queue.get('floorflow_jobs_in_queue{domain="processing"}'), 1);
    assert.equal(queue.get('floorflow_jobs_in_queue{domain="engraving"}'), 0);
    const processing = await samples('floorflow_jobs_processing');
    assert.equal(processing.get('floorflow_jobs_processing{domain="processing"}'), 1);
    assert.equal(processing.get('floorflow_jobs_processing{domain="engraving"}'), 2);
    const completed = await samples('floorflow_jobs_completed_today');
    assert.equal(completed.get('floorflow_jobs_completed_today{domain="processing"}'), 1);
    assert.equal(completed.get('floorflow_jobs_completed_today{domain="engraving"}'), 1);
    assert.equal(completed.get('floorflow_jobs_completed_today{domain="embossing"}'), 0);
    const dead = await samples('floorflow_dead_letters');
    assert.equal(dead.get('floorflow_dead_letters{domain="embossing"}'), 1);
    assert.equal(dead.get('floorflow_dead_letters{domain="processing"}'), 1);
    const retries = await samples('floorflow_job_retries_waiting');
    assert.equal(retries.get('floorflow_job_retries_waiting{domain="flows"}'), 0);
  });

  it('reports the QA pass rate, poller lag and machines online', async () => {
    assert.equal((await samples('floorflow_qa_pass_rate')).get('floorflow_qa_pass_rate'), 50);
    const qa = await samples('floorflow_qa_results');
    assert.equal(qa.get('floorflow_qa_results{result="passed"}'), 1);
    assert.equal(qa.get('floorflow_qa_results{result="failed"}'), 1);
    const lag = await samples('floorflow_poller_lag');
    assert.equal(lag.get('floorflow_poller_lag{source="print_os"}'), 1);
    assert.equal(lag.get('floorflow_poller_lag{source="scanner"}'), 0);
    assert.equal((await samples('floorflow_machines_online')).get('floorflow_machines_online'), 2);
    assert.equal((await samples('floorflow_machines_registered')).get('floorflow_machines_registered'), 3);
  });

  it('puts each job completed today in the completion-time histogram, in seconds', async () => {
    const h = await samples('floorflow_job_completion_seconds');
    assert.equal(h.get('floorflow_job_completion_seconds_count{domain="processing"}'), 1);
    assert.equal(h.get('floorflow_job_completion_seconds_sum{domain="processing"}'), 12 * 60);
    assert.equal(h.get('floorflow_job_completion_seconds_sum{domain="engraving"}'), 46 * 60);
    assert.equal(h.get('floorflow_job_completion_seconds_bucket{le="900",domain="processing"}'), 1);
    assert.equal(h.get('floorflow_job_completion_seconds_bucket{le="300",domain="processing"}'), 0);
  });

  it('after a job is queued and an alert opens, the gauges show them once the few-second cache has passed', async () => {
    const plates = await db.pool.query<{ id: string }>(
      `SELECT id::text AS id FROM embossing.plates WHERE plate_number = 'AB-1001'`,
    );
    await createJob(db.pool, { plateIds: [plates.rows[0].id], machineId: 'embosser-1' }, { at: clock.now() });
    await beginAlert(
      db.pool,
      {
        key: 'queue_depth:embossing',
        rule: 'queue_depth',
        severity: 'warning',
        message: 'test',
        details: {},
      },
      clock.now(),
    );
    const cached = await samples('floorflow_jobs_in_queue');
    assert.equal(
      cached.get('floorflow_jobs_in_queue{domain="embossing"}'),
      0,
      'one read serves scrapes for 5 s',
    );
    await clock.advance(5000);
    const fresh = await samples('floorflow_jobs_in_queue');
    assert.equal(fresh.get('floorflow_jobs_in_queue{domain="embossing"}'), 1);
    const alerts = await samples('floorflow_alerts_open');
    assert.equal(alerts.get('floorflow_alerts_open{rule="queue_depth"}'), 1);
  });

  it('counts HTTP requests by route and status, and /metrics serves every floor metric by name', async () => {
    const app = createFrontApp({ draining: false, inFlight: 0 }, 'sha256$x$x', []);
    // The counter is made at the first request.
    await supertest(app).get('/healthz').expect(200);
    const before = (await samples('floorflow_http_requests_total')).get(
      'floorflow_http_requests_total{route="/healthz",status="200"}',
    );
    await supertest(app).get('/healthz').expect(200);
    const text = (await supertest(app).get('/metrics').expect(200)).text;
    const after = (await samples('floorflow_http_requests_total')).get(
      'floorflow_http_requests_total{route="/healthz",status="200"}',
    );
    assert.equal(after, before! + 1);
    for (const name of [
      'floorflow_jobs_in_queue',
      'floorflow_jobs_processing',
      'floorflow_jobs_completed_today',
      'floorflow_job_completion_seconds',
      'floorflow_qa_pass_rate',
      'floorflow_job_retries_waiting',
      'floorflow_dead_letters',
      'floorflow_poller_lag',
      'floorflow_machines_online',
      'floorflow_http_requests_total',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} on /metrics`);
    }
  });

  it('counts MQTT messages in from machines by kind and out to them', async () => {
    const machines = new MachineStore(db.pool, 'k'.repeat(64));
    const broker = await EmbeddedBroker.create({
      machines,
      topicPrefix: 'floorflow',
      internalPassword: 'internal-pass',
      runtimeId: 'metrics-test',
      maxPayloadBytes: 4096,
      maxConnections: 10,
      log: () => undefined,
    });
    const port = await broker.listen(0, '127.0.0.1');
    const secret = await machines.add('press-9', 'press');
    const machine = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: 'press-9',
      password: secret,
      clientId: 'press-9',
      reconnectPeriod: 0,
    });
    const runtime = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: INTERNAL_MQTT_USER,
      password: 'internal-pass',
      reconnectPeriod: 0,
    });
    try {
      // The broker makes its counters at the first message.
      const count = async (name: string, key: string) =>
        registry.getSingleMetric(name) ? ((await samples(name)).get(key) ?? 0) : 0;
      const inBefore = await count(
        'floorflow_mqtt_messages_in_total',
        'floorflow_mqtt_messages_in_total{kind="status"}',
      );
      const outBefore = await count('floorflow_mqtt_messages_out_total', 'floorflow_mqtt_messages_out_total');
      await machine.publishAsync('floorflow/machines/press-9/status', '{"state":"idle"}', { qos: 1 });
      await machine.subscribeAsync('floorflow/machines/press-9/cmd', { qos: 1 });
      const received = new Promise<void>((resolve) => machine.once('message', () => resolve()));
      await runtime.publishAsync('floorflow/machines/press-9/cmd', '{"type":"ping","job_id":1}', { qos: 1 });
      await received;
      assert.equal(
        await count('floorflow_mqtt_messages_in_total', 'floorflow_mqtt_messages_in_total{kind="status"}'),
        inBefore + 1,
      );
      await waitFor(
        async () =>
          (await count('floorflow_mqtt_messages_out_total', 'floorflow_mqtt_messages_out_total')) > outBefore,
        'the delivery to the machine counted',
      );
    } finally {
      await machine.endAsync(true);
      await runtime.endAsync(true);
      await broker.close();
    }
  });
});
