import assert from 'node:assert/strict';
import express from 'express';
import supertest from 'supertest';
import { signedCallback } from '../../cli/embosser-simulator';
import { idempotencyKeys } from '../../runtime/idempotency';
import { FlowKit, startFlowKit } from '../support/flow-kit';

describe('Idempotency-Key on POST routes (the HTTP layer in front of the flows)', () => {
  let kit: FlowKit;
  let api: () => supertest.Agent;
  /** Moves only the idempotency layer's time on (the flows' timers stay where they are). */
  let later = 0;

  beforeEach(async () => {
    kit = await startFlowKit({ flows: ['flows/embossing.json'] });
    const app = express();
    later = 0;
    app.use(idempotencyKeys(kit.pool, { now: () => new Date(kit.clock.now().getTime() + later) }));
    app.use(kit.httpApp());
    api = () => supertest.agent(app);
  });
  afterEach(async () => {
    await kit.stop();
  });

  async function plate(number: string): Promise<string> {
    const row = await kit.pool.query<{ id: string }>(
      `INSERT INTO embossing.plates (plate_number, status) VALUES ($1, 'ready_for_embossing') RETURNING id::text AS id`,
      [number],
    );
    return row.rows[0].id;
  }
  const jobCount = async () =>
    Number((await kit.pool.query('SELECT count(*) AS n FROM embossing.embossing_jobs')).rows[0].n);

  it('a replayed POST with the same key gets the first answer and writes once; another body or route is refused', async () => {
    await kit.addMachine('EMB-1', 'embosser');
    const [p1, p2] = [await plate('AB-1'), await plate('AB-2')];
    const body = { plate_ids: [p1], machine_id: 'EMB-1' };
    const first = await api().post('/api/embossing-jobs').set('Idempotency-Key', 'order-77').send(body);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const again = await api()
      .post('/api/embossing-jobs')
      .set('Idempotency-Key', 'order-77')
      .send({ machine_id: 'EMB-1', plate_ids: [p1] });
    assert.equal(again.status, 202);
    assert.deepEqual(again.body, first.body, 'the same answer, the same job');
    assert.equal(again.get('Idempotent-Replayed'), 'true');
    assert.equal(await jobCount(), 1, 'written once');

    const otherBody = await api()
      .post('/api/embossing-jobs')
      .set('Idempotency-Key', 'order-77')
      .send({ plate_ids: [p2], machine_id: 'EMB-1' });
    assert.equal(otherBody.status, 422);
    assert.deepEqual(otherBody.body, {
      success: false,
      error: 'this Idempotency-Key was used with another body',
    });
    const otherRoute = await api()
      .post(`/api/embossing-jobs/${String(first.body.data.id)}/cancel`)
      .set('Idempotency-Key', 'order-77')
      .send({});
    assert.equal(otherRoute.status, 422);
    assert.equal(await jobCount(), 1);
    assert.equal(
      (await kit.request().get(`/api/embossing-jobs/${String(first.body.data.id)}`)).body.data.status,
      'queued',
    );

    const bad = await api().post('/api/embossing-jobs').set('Idempotency-Key', 'bad key').send(body);
    assert.equal(bad.status, 400);
  });

  it('an error answer is replayed too, and a key answered more than 24 h ago is forgotten', async () => {
    await kit.addMachine('EMB-1', 'embosser');
    const missing = await api().post('/api/embossing-jobs/999/retry').set('Idempotency-Key', 'k-1').send({});
    assert.equal(missing.status, 404);
    const replay = await api().post('/api/embossing-jobs/999/retry').set('Idempotency-Key', 'k-1').send({});
    assert.equal(replay.status, 404);
    assert.equal(replay.get('Idempotent-Replayed'), 'true');
    later = 24 * 3600 * 1000 + 1000;
    const afterWindow = await api()
      .post('/api/embossing-jobs/999/retry')
      .set('Idempotency-Key', 'k-1')
      .send({});
    assert.equal(afterWindow.get('Idempotent-Replayed'), undefined, 'a new request after the window');
  });

  it('a replayed signed callback answers as the first delivery did and writes once', async () => {
    const secret = await kit.addMachine('EMB-H', 'embosser');
    await kit.pool.query(
      `UPDATE floorflow.machines SET profile = 'http', settings = '{"api_url": "http://127.0.0.1:9"}' WHERE machine_id = 'EMB-H'`,
    );
    const p = await plate('H-1');
    // Sent by hand: the job at the machine, attempt 1.
    const { rows } = await kit.pool.query<{ id: string }>(
      `INSERT INTO embossing.embossing_jobs (machine_id, status, attempts, sent_at, next_attempt_at) VALUES ('EMB-H', 'sent', 1, now(), 'infinity') RETURNING id::text AS id`,
    );
    const jobId = rows[0].id;
    await kit.pool.query(
      `INSERT INTO embossing.embossing_job_plates (job_id, plate_id, previous_status) VALUES ($1, $2, 'ready_for_embossing')`,
      [jobId, p],
    );
    await kit.pool.query(`UPDATE embossing.plates SET status = 'embossing_in_progress' WHERE id = $1`, [p]);
    const path = `/api/embossing-jobs/callback/${jobId}`;
    const raw = JSON.stringify({ status: 'completed', attempt: 1, response: { serial: 'H-1-001' } });
    const post = (headers: Record<string, string>) =>
      api().post(path).set('Content-Type', 'application/json').set(headers).send(raw);
    const timestamp = Math.floor(kit.clock.now().getTime() / 1000);
    const first = await post({
      ...signedCallback({ machineId: 'EMB-H', secret, path, body: raw, timestamp }),
      'Idempotency-Key': 'cb-1',
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    // The machine lost our answer and sends the callback again, signed anew (a new nonce).
    const again = await post({
      ...signedCallback({ machineId: 'EMB-H', secret, path, body: raw, timestamp }),
      'Idempotency-Key': 'cb-1',
    });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);
    const withoutKey = await post(signedCallback({ machineId: 'EMB-H', secret, path, body: raw, timestamp }));
    assert.equal(withoutKey.status, 200, 'the same report of the current attempt, without a key');
    assert.deepEqual(withoutKey.body, first.body);
    const transitions = await kit.pool.query(
      `SELECT count(*) AS n FROM floorflow.lifecycle_transitions WHERE lifecycle = 'embossing-job' AND entity_id = $1`,
      [jobId],
    );
    assert.equal(Number(transitions.rows[0].n), 1, 'completed once');
  });
});
