import assert from 'node:assert/strict';
import express from 'express';
import supertest from 'supertest';
import { hashSecret } from '../../core/secrets';
import { createFrontApp } from '../../runtime/http';
import { mountTraceRoute } from '../../runtime/trace-route';
import type { TraceEvent } from '../../store/trace';
import { TestDatabase, createTestDatabase } from '../support/db';

const TOKEN = 'trace-test-token-0123456789';

interface TraceBody {
  success: boolean;
  kind: string;
  id: string;
  events: TraceEvent[];
  error?: string;
}

describe('GET /api/trace/:kind/:id', function () {
  this.timeout(30000);
  let db: TestDatabase;
  let app: express.Express;

  const get = (path: string) => supertest(app).get(path).set('Authorization', `Bearer ${TOKEN}`);

  before(async () => {
    db = await createTestDatabase();
    app = createFrontApp({ draining: false, inFlight: 0 }, hashSecret(TOKEN), []);
    mountTraceRoute(app, db.pool);
    const q = (sql: string, params: unknown[] = []) => db.pool.query(sql, params);

    // A job: printed by the press (imposition IMP-7), then coated according to a scan.
    await q(`INSERT INTO jobmanager.jobs (job_id, version_tag, operations, created_at)
             VALUES ('4604_5889', '3', '{"print": true, "coating": true}', '2026-01-05T07:00:00Z')`);
    await q(`INSERT INTO jobmanager."print OS" (id, name, status, marker, job_complete_time, created_at)
             VALUES (11, 'IMP-7', 'PRINTED', 500, '2026-01-05T08:00:00Z', '2026-01-05T08:00:05Z')`);
    await q(`INSERT INTO jobmanager.scanned_codes (scan_id, code_text, scanned_at, machine_id, operations, msg_id)
             VALUES (21, '4604_5889_3', '2026-01-05T09:00:00Z', 'scanner-1', '["coating"]', 'm-1'),
                    (22, '9999_1111_1', '2026-01-05T09:01:00Z', 'scanner-1', '["coating"]', 'm-2')`);
    await q(`INSERT INTO jobmanager.rejected_scans (machine_id, payload, reason, received_at)
             VALUES ('scanner-2', '{"code": "4604_5889_3", "operations": 7}', 'operations must be a list or an object', '2026-01-05T08:59:00Z')`);
    await q(`INSERT INTO jobmanager.job_status_updates (job_id, operation_type, status, source_type, source_id, flow_version, created_at)
             VALUES ('4604_5889', 'print', 'completed', 'print_os', 11, '1.0.2', '2026-01-05T08:00:10Z'),
                    ('4604_5889', 'coating', 'completed', 'scanner', 21, '1.0.3', '2026-01-05T09:00:01Z')`);
    await q(`INSERT INTO logs.job_operations (job_operation_id, job_id, version_tag, operation_id, completed_at, completed_by, source_id, status, flow_version)
             VALUES ('jo-1', '4604_5889', '3', 'op003', '2026-01-05T09:00:01Z', 'scanner', 21, 'completed', '1.0.3')`);

    // A product moved to past.
    await q(
      `INSERT INTO trackopz.products (id, name, created_at) VALUES (5, 'trophy', '2026-01-05T07:00:00Z')`,
    );
    await q(`INSERT INTO trackopz.jobs (id, product_id, state, created_at) VALUES (50, 5, 'ON', '2026-01-05T07:00:01Z'),
             (51, 5, 'OFF', '2026-01-05T10:00:00Z')`);
    await q(`INSERT INTO trackopz.product_transitions (product_id, job_id, from_state, to_state, action, reason, source, flow_version, created_at)
             VALUES (5, 51, 'ON', 'OFF', 'move_to_past', 'dispatched', 'dispatch', '2.1.0', '2026-01-05T10:00:00Z')`);

    // A plate embossed by a job that failed once on the machine.
    await q(
      `INSERT INTO embossing.plates (id, plate_number, status, created_at) VALUES (3, 'P-3', 'embossed', '2026-01-05T06:00:00Z')`,
    );
    await q(`INSERT INTO embossing.embossing_jobs (id, machine_id, status, attempts, created_at, sent_at, completed_at)
             VALUES (30, 'emb-1', 'completed', 2, '2026-01-05T06:10:00Z', '2026-01-05T06:11:00Z', '2026-01-05T06:20:00Z')`);
    await q(`INSERT INTO embossing.embossing_job_plates (job_id, plate_id, previous_status, created_at, released_at)
             VALUES (30, 3, 'ready_for_embossing', '2026-01-05T06:10:00Z', '2026-01-05T06:20:00Z')`);
    await q(`INSERT INTO embossing.machine_messages (direction, machine_id, job_id, channel, topic, payload, result, flow_version, created_at)
             VALUES ('out', 'emb-1', 30, 'mqtt', 'floorflow/machines/emb-1/cmd', '{"type": "emboss"}', 'sent', '1.4.0', '2026-01-05T06:11:00Z'),
                    ('in', 'emb-1', 30, 'mqtt', 'floorflow/machines/emb-1/event', '{"status": "failed"}', 'retry', '1.4.0', '2026-01-05T06:12:00Z')`);

    // An order confirmed and processed, with a stage log.
    await q(`INSERT INTO processing.orders (id, order_number, status, confirmed_at, created_at)
             VALUES (8, 'ORD-8', 'confirmed', '2026-01-05T11:00:00Z', '2026-01-05T10:59:00Z')`);
    await q(
      `INSERT INTO processing.processing_jobs (id, order_id, status, created_at) VALUES (80, 8, 'processing', '2026-01-05T11:00:00Z')`,
    );
    await q(`INSERT INTO processing.processing_job_logs (job_id, level, stage, message, flow_version, created_at)
             VALUES (80, 'info', 'validation', 'validated', '3.0.0', '2026-01-05T11:00:02Z')`);

    // An engraving job that failed QA once.
    await q(`INSERT INTO engraving.items (id, name, stock_available, max_lines) VALUES ('cup', 'cup', 3, 3)`);
    await q(`INSERT INTO engraving.engraving_jobs (id, customer_id, item_id, due_date, status, created_at)
             VALUES (90, 'c-1', 'cup', '2026-01-10T00:00:00Z', 'qa', '2026-01-05T12:00:00Z')`);
    await q(`INSERT INTO engraving.qa_results (job_id, attempt, passed, flow_version, created_at)
             VALUES (90, 1, false, '1.1.0', '2026-01-05T13:00:00Z')`);
  });

  after(async () => {
    await db.drop();
  });

  it('answers "why is this job coated?": the scan, the status update and the flow version, in time order', async () => {
    const response = await get('/api/trace/job/4604_5889').expect(200);
    const body = response.body as TraceBody;
    assert.equal(body.success, true);
    assert.deepEqual([body.kind, body.id], ['job', '4604_5889']);
    assert.deepEqual(
      body.events.map((e) => [e.at, e.source, e.type, e.flow_version]),
      [
        ['2026-01-05T07:00:00.000Z', 'jobmanager.jobs', 'job_created', null],
        ['2026-01-05T08:00:00.000Z', 'jobmanager."print OS"', 'press_record', null],
        ['2026-01-05T08:00:10.000Z', 'jobmanager.job_status_updates', 'status_update', '1.0.2'],
        ['2026-01-05T08:59:00.000Z', 'jobmanager.rejected_scans', 'scan_rejected', null],
        ['2026-01-05T09:00:00.000Z', 'jobmanager.scanned_codes', 'scan', null],
        ['2026-01-05T09:00:01.000Z', 'jobmanager.job_status_updates', 'status_update', '1.0.3'],
        ['2026-01-05T09:00:01.000Z', 'logs.job_operations', 'operation_completed', '1.0.3'],
      ],
    );
    const coating = body.events[5];
    assert.deepEqual(coating.detail, {
      update_id: coating.detail.update_id,
      job_id: '4604_5889',
      operation: 'coating',
      status: 'completed',
      source_type: 'scanner',
      source_id: 21,
    });
    assert.deepEqual(body.events[4].detail.machine_id, 'scanner-1');
    assert.equal(body.events[3].detail.reason, 'operations must be a list or an object');
  });

  it('traces an imposition from its press record to the status updates it caused', async () => {
    const body = (await get('/api/trace/imposition/IMP-7').expect(200)).body as TraceBody;
    assert.deepEqual(
      body.events.map((e) => e.type),
      ['press_record', 'status_update'],
    );
  });

  it('traces a plate through its embossing job and every machine message', async () => {
    const body = (await get('/api/trace/plate/3').expect(200)).body as TraceBody;
    assert.deepEqual(
      body.events.map((e) => e.type),
      [
        'plate_created',
        'assigned_to_embossing_job',
        'embossing_job_created',
        'embossing_job_sent',
        'machine_message',
        'machine_message',
        'released_from_embossing_job',
        'embossing_job_completed',
      ],
    );
    assert.deepEqual(body.events[5].detail.result, 'retry');
    assert.equal(body.events[5].flow_version, '1.4.0');
  });

  it('traces a product, an order and an engraving job', async () => {
    const product = (await get('/api/trace/product/5').expect(200)).body as TraceBody;
    assert.deepEqual(
      product.events.map((e) => [e.type, e.flow_version]),
      [
        ['product_created', null],
        ['job_state', null],
        ['job_state', null],
        ['transition', '2.1.0'],
      ],
    );
    const order = (await get('/api/trace/order/8').expect(200)).body as TraceBody;
    assert.deepEqual(
      order.events.map((e) => e.type),
      ['order_created', 'order_confirmed', 'processing_job_created', 'log_info'],
    );
    const engraving = (await get('/api/trace/engraving-job/90').expect(200)).body as TraceBody;
    assert.deepEqual(
      engraving.events.map((e) => [e.type, e.detail.passed ?? null]),
      [
        ['engraving_job_created', null],
        ['qa_result', false],
      ],
    );
  });

  it('answers 404 for an unknown kind, naming the kinds there are', async () => {
    const body = (await get('/api/trace/pallet/1').expect(404)).body as TraceBody;
    assert.deepEqual(body.success, false);
    assert.match(String(body.error), /no trace for kind "pallet": use one of job, imposition, plate/);
  });

  it('answers 400 for an id that cannot be one', async () => {
    assert.match(
      String((await get('/api/trace/plate/abc').expect(400)).body.error),
      /plate id must be a positive whole number/,
    );
    assert.match(String((await get('/api/trace/job/%20x').expect(400)).body.error), /job id must be/);
  });

  it('answers 404 when nothing is recorded for the entity', async () => {
    assert.match(
      String((await get('/api/trace/order/404').expect(404)).body.error),
      /nothing is recorded for order 404/,
    );
  });

  it('needs the API bearer token', async () => {
    await supertest(app).get('/api/trace/job/4604_5889').expect(401);
  });
});
