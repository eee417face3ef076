// The engraving process against the shipped flows/engraving.json: real PostgreSQL, the embedded broker,
// simulated engravers over MQTT and the manual clock. Includes the acceptance tests
// of the engraving process.
import assert from 'node:assert/strict';
import { EngraverSimulator } from '../../cli/engraver-simulator';
import { type FlowKit, startFlowKit } from '../support/flow-kit';

interface JobView {
  id: number;
  status: string;
  reason: string | null;
  retry_count: number;
  machine_id: string | null;
  queue_position: number | null;
  design: { status: string } | null;
}

describe('engraving flow', function () {
  this.timeout(60000);
  let kit: FlowKit;
  let simulators: EngraverSimulator[];
  const busEvents: Array<{ channel: string; body: Record<string, unknown> }> = [];

  beforeEach(async () => {
    simulators = [];
    busEvents.length = 0;
    kit = await startFlowKit({ flows: ['flows/engraving.json'] });
    for (const channel of ['engraving', 'alert', 'lifecycle'])
      kit.services.events.on(channel, (body: Record<string, unknown>) => busEvents.push({ channel, body }));
    await kit.pool.query(
      `INSERT INTO engraving.items (id, name, stock_available, max_lines) VALUES ('cup-10', 'Cup 10 in', 100, 3), ('plaque-a5', 'Plaque A5', 0, 6)`,
    );
  });

  afterEach(async () => {
    for (const s of simulators) await s.stop();
    await kit.stop();
  });

  async function engraver(
    machineId: string,
    fails?: (jobId: string, attempt: number) => boolean,
  ): Promise<EngraverSimulator> {
    const secret = await kit.addMachine(machineId, 'engraver');
    const sim = new EngraverSimulator({
      machineId,
      secret,
      url: `mqtt://127.0.0.1:${kit.mqttPort}`,
      workMs: 0,
      fails,
    });
    simulators.push(sim);
    await sim.start();
    await kit.waitFor(
      async () =>
        (await kit.pool.query(`SELECT online FROM floorflow.machines WHERE machine_id = $1`, [machineId]))
          .rows[0]?.online,
      `${machineId} online`,
    );
    return sim;
  }

  const order = (fields: Record<string, unknown> = {}) => ({
    customer_id: 'cust-1',
    item_id: 'cup-10',
    text: ['Club Champion', '2026'],
    due_date: '2026-01-20',
    ...fields,
  });

  const create = (fields: Record<string, unknown> = {}) =>
    kit.request().post('/api/engraving-jobs').send(order(fields));

  async function job(id: number): Promise<JobView> {
    const res = await kit.request().get(`/api/engraving-jobs/${id}`).expect(200);
    return res.body.data as JobView;
  }

  const untilStatus = (id: number, status: string) =>
    kit.waitFor(async () => {
      const j = await job(id);
      return j.status === status ? j : undefined;
    }, `job ${id} ${status}`);

  const qa = (id: number, passed: boolean) =>
    kit.request().post(`/api/engraving-jobs/${id}/qa`).send({ passed });

  it('happy path, text only: queued, engraved by the machine, QA passed, complete', async () => {
    const sim = await engraver('engraver-1');
    const created = await create().expect(202);
    assert.equal(created.body.success, true);
    const id = created.body.data.id as number;
    await untilStatus(id, 'qa');
    assert.deepEqual(
      sim.received.map((r) => r.command.type),
      ['engrave'],
    );
    const passed = await qa(id, true).expect(200);
    assert.equal(passed.body.data.status, 'complete');
    const stock = await kit.pool.query(`SELECT stock_available FROM engraving.items WHERE id = 'cup-10'`);
    assert.equal(stock.rows[0].stock_available, 99);
    // Each status change is announced as the lifecycle-switch node announces its transitions.
    const announced = await kit.waitFor(() => {
      const actions = busEvents
        .filter(
          (e) =>
            e.channel === 'lifecycle' &&
            e.body.lifecycle === 'engraving-job' &&
            e.body.entityId === String(id),
        )
        .map((e) => e.body.action);
      return actions.length === 3 ? actions : undefined;
    }, 'three lifecycle events');
    assert.deepEqual(announced, ['send_to_machine', 'finish_engraving', 'pass_qa']);
  });

  it('design approval: a job with artwork waits in pending_approval, then approval lets it run to complete', async () => {
    await engraver('engraver-1');
    const id = (await create({ artwork_url: 'https://example.test/logo.svg' }).expect(202)).body.data
      .id as number;
    const waiting = await job(id);
    assert.equal(waiting.status, 'pending_approval');
    assert.equal(waiting.design?.status, 'pending_approval');
    const refused = await kit
      .request()
      .post(`/api/engraving-jobs/${id}/design/approve`)
      .send({ decided_by: 'customer' })
      .expect(400);
    assert.match(refused.body.error, /decided_by is not accepted/);
    await kit
      .requestAs({ kind: 'user', name: 'dana', role: 'operator', session: 's' })
      .post(`/api/engraving-jobs/${id}/design/approve`)
      .send({})
      .expect(200);
    await untilStatus(id, 'qa');
    await qa(id, true).expect(200);
    const done = await job(id);
    assert.equal(done.status, 'complete');
    assert.equal(done.design?.status, 'approved');
    const decided = await kit.pool.query(`SELECT decided_by FROM engraving.designs WHERE job_id = $1`, [id]);
    assert.deepEqual(decided.rows, [{ decided_by: 'dana' }]);
    const audit = await kit.pool.query(
      `SELECT actor FROM engraving.job_events WHERE job_id = $1 AND reason = 'design approved'`,
      [id],
    );
    assert.deepEqual(audit.rows, [{ actor: 'dana' }]);
  });

  it('a rejected design ends the job as revision_requested and returns its stock; approving it then is a 409', async () => {
    const id = (await create({ artwork_url: 'https://example.test/logo.svg' }).expect(202)).body.data
      .id as number;
    const rejected = await kit
      .request()
      .post(`/api/engraving-jobs/${id}/design/reject`)
      .send({ feedback: 'wrong logo' })
      .expect(200);
    assert.equal(rejected.body.data.status, 'revision_requested');
    const stock = await kit.pool.query(`SELECT stock_available FROM engraving.items WHERE id = 'cup-10'`);
    assert.equal(stock.rows[0].stock_available, 100);
    const late = await kit.request().post(`/api/engraving-jobs/${id}/design/approve`).send({}).expect(409);
    assert.equal(late.body.success, false);
  });

  it('approving a design needs no body: a bare POST, an empty JSON body and an empty text body all approve', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await create({ artwork_url: 'https://example.test/logo.svg' }).expect(202)).body.data.id as number,
      );
    await kit.request().post(`/api/engraving-jobs/${ids[0]}/design/approve`).expect(200);
    await kit
      .request()
      .post(`/api/engraving-jobs/${ids[1]}/design/approve`)
      .set('content-type', 'application/json')
      .send('')
      .expect(200);
    await kit
      .request()
      .post(`/api/engraving-jobs/${ids[2]}/design/approve`)
      .set('content-type', 'text/plain')
      .send('')
      .expect(200);
    for (const id of ids) assert.equal((await job(id)).design?.status, 'approved');
  });

  it('a revised design after a rejection goes back for approval as a new design, and then on to the engraver', async () => {
    const id = (await create({ artwork_url: 'https://example.test/logo.svg' }).expect(202)).body.data
      .id as number;
    await kit
      .request()
      .post(`/api/engraving-jobs/${id}/design/reject`)
      .send({ feedback: 'wrong logo' })
      .expect(200);
    const early = await kit.request().post(`/api/engraving-jobs/${id}/design/approve`).expect(409);
    assert.equal(early.body.success, false);
    const revised = await kit
      .request()
      .post(`/api/engraving-jobs/${id}/design`)
      .send({ artwork_url: 'https://example.test/logo-v2.svg', notes: 'club crest, not the old logo' })
      .expect(200);
    assert.equal(revised.body.data.status, 'pending_approval');
    assert.equal(revised.body.data.artwork_url, 'https://example.test/logo-v2.svg');
    const stock = await kit.pool.query(`SELECT stock_available FROM engraving.items WHERE id = 'cup-10'`);
    assert.equal(stock.rows[0].stock_available, 99, 'the stock the rejection returned is reserved again');
    const designs = await kit.pool.query(
      `SELECT status, preview_url FROM engraving.designs WHERE job_id = $1 ORDER BY id`,
      [id],
    );
    assert.deepEqual(designs.rows, [
      { status: 'rejected', preview_url: 'https://example.test/logo.svg' },
      { status: 'pending_approval', preview_url: 'https://example.test/logo-v2.svg' },
    ]);
    const twice = await kit.request().post(`/api/engraving-jobs/${id}/design`).send({}).expect(409);
    assert.match(twice.body.error, /allowed from "revision_requested"/);
    await kit.request().post(`/api/engraving-jobs/${id}/design/approve`).expect(200);
    await engraver('engraver-1');
    await kit.clock.advance(5000);
    await untilStatus(id, 'qa');
  });

  it('a design waiting longer than 24 hours is auto-approved and the job goes on', async () => {
    const id = (await create({ artwork_url: 'https://example.test/logo.svg' }).expect(202)).body.data
      .id as number;
    await kit.clock.advance(23 * 3600 * 1000);
    assert.equal((await job(id)).status, 'pending_approval');
    await kit.clock.advance(3600 * 1000 + 60 * 1000);
    const approved = await untilStatus(id, 'queued');
    assert.equal(approved.design?.status, 'auto_approved');
  });

  it('rush order prioritization: a rush job is first in the queue and is engraved first', async () => {
    const normal: number[] = [];
    for (const due of ['2026-01-10', '2026-01-08', '2026-01-12'])
      normal.push((await create({ due_date: due }).expect(202)).body.data.id as number);
    const rush = (await create({ rush: true, due_date: '2026-02-01' }).expect(202)).body.data.id as number;
    const queue = await kit.request().get('/api/engraving/queue').expect(200);
    assert.deepEqual(
      queue.body.data.queue.map((q: { id: number }) => q.id),
      [rush, normal[1], normal[0], normal[2]],
    );
    assert.equal((await job(rush)).queue_position, 1);
    const sim = await engraver('engraver-1');
    await kit.clock.advance(5000);
    await untilStatus(rush, 'qa');
    assert.equal(sim.received[0].jobId, String(rush));
  });

  it('QA rejection handling: a failed QA re-engraves once (retry_count 1) and the job ends complete', async () => {
    const sim = await engraver('engraver-1');
    const id = (await create().expect(202)).body.data.id as number;
    await untilStatus(id, 'qa');
    const failed = await qa(id, false).expect(200);
    assert.equal(failed.body.data.qa_outcome, 'reengrave');
    await untilStatus(id, 'qa');
    await qa(id, true).expect(200);
    const done = await job(id);
    assert.equal(done.status, 'complete');
    assert.equal(done.retry_count, 1);
    assert.deepEqual(
      sim.received.map((r) => r.attempt),
      [1, 2],
    );
  });

  it('a third QA failure escalates the job and raises an alert on the event bus', async () => {
    await engraver('engraver-1');
    const id = (await create().expect(202)).body.data.id as number;
    for (let attempt = 1; attempt <= 2; attempt++) {
      await untilStatus(id, 'qa');
      await qa(id, false).expect(200);
    }
    await untilStatus(id, 'qa');
    const third = await qa(id, false).expect(200);
    assert.equal(third.body.data.qa_outcome, 'escalate');
    assert.equal((await job(id)).status, 'escalated');
    const alert = busEvents.find((e) => e.channel === 'alert');
    assert.equal(alert?.body.name, 'engraving_job_escalated');
    assert.equal(alert?.body.jobId, id);
  });

  it('inventory depletion: without stock the job is blocked with reason no_inventory and resumes when stock arrives', async () => {
    const id = (await create({ item_id: 'plaque-a5' }).expect(202)).body.data.id as number;
    const blocked = await job(id);
    assert.equal(blocked.status, 'blocked');
    assert.equal(blocked.reason, 'no_inventory');
    const restocked = await kit
      .request()
      .post('/api/engraving/items/plaque-a5/stock')
      .send({ add: 1 })
      .expect(200);
    assert.deepEqual(restocked.body.data.resumed, [{ id, status: 'queued' }]);
    assert.equal(restocked.body.data.stock_available, 0);
  });

  it('a text with more lines than the engraving area holds is rejected with the reason and creates no job', async () => {
    const res = await create({ text: ['one', 'two', 'three', 'four'] }).expect(400);
    assert.equal(res.body.success, false);
    assert.match(res.body.error, /text has 4 lines; the item's engraving area holds at most 3/);
    const jobs = await kit.pool.query(`SELECT count(*)::int AS n FROM engraving.engraving_jobs`);
    assert.equal(jobs.rows[0].n, 0);
  });

  it('an order that breaks the schema is a 400 naming the field', async () => {
    const res = await kit
      .request()
      .post('/api/engraving-jobs')
      .send({ item_id: 'cup-10', due_date: '2026-01-20' })
      .expect(400);
    assert.match(res.body.error, /customer_id is required/);
  });

  it('a machine error is not re-sent: the job needs attention, and a retry goes to the other available engraver', async () => {
    const failing = await engraver('engraver-a', () => true);
    const id = (await create().expect(202)).body.data.id as number;
    const stuck = await untilStatus(id, 'needs_attention');
    assert.match(stuck.reason ?? '', /^engraver-a reported a failure: die misaligned;/);
    const backup = await engraver('engraver-b');
    await kit.request().post(`/api/engraving-jobs/${id}/retry`).expect(200);
    await untilStatus(id, 'qa');
    assert.equal(failing.received.length, 1);
    assert.equal(backup.received.length, 1);
    const events = await kit.pool.query(
      `SELECT to_status, reason, machine_id FROM engraving.job_events WHERE job_id = $1 AND to_status <> from_status ORDER BY id`,
      [id],
    );
    assert.deepEqual(
      events.rows.filter((e) => e.to_status === 'engraving').map((e) => e.machine_id),
      ['engraver-a', 'engraver-b'],
    );
    assert.ok(events.rows.some((e) => e.reason === 'MACHINE_ERROR'));
  });

  it('a job an engraver never accepts goes to another engraver after 2 minutes', async () => {
    // A machine that is online but does not answer its commands.
    const silentSecret = await kit.addMachine('engraver-a', 'engraver');
    await kit.connectMachine('engraver-a', silentSecret);
    await kit.waitFor(
      async () =>
        (await kit.pool.query(`SELECT online FROM floorflow.machines WHERE machine_id = 'engraver-a'`))
          .rows[0]?.online,
      'engraver-a online',
    );
    const id = (await create().expect(202)).body.data.id as number;
    const sent = await untilStatus(id, 'engraving');
    assert.equal(sent.machine_id, 'engraver-a');
    const backup = await engraver('engraver-b');
    await kit.clock.advance(60 * 1000);
    assert.equal((await job(id)).status, 'engraving', 'still waiting after 1 minute');
    await kit.clock.advance(2 * 60 * 1000);
    await untilStatus(id, 'qa');
    assert.deepEqual(
      backup.received.map((r) => r.jobId),
      [String(id)],
    );
  });

  it('10 concurrent jobs all complete with no conflicts: each sent once, one job per engraver at a time, stock taken once each', async () => {
    const sims = [await engraver('engraver-1'), await engraver('engraver-2')];
    const created = await Promise.all(
      Array.from({ length: 10 }, (_, i) => create({ customer_id: `cust-${i}` }).expect(202)),
    );
    const ids = created.map((r) => r.body.data.id as number);
    assert.equal(new Set(ids).size, 10);
    await kit.waitFor(
      async () => {
        const inQa = await kit.pool.query<{ id: string }>(
          `SELECT id::text AS id FROM engraving.engraving_jobs WHERE status = 'qa'`,
        );
        for (const row of inQa.rows) await qa(Number(row.id), true).expect(200);
        const done = await kit.pool.query(
          `SELECT count(*)::int AS n FROM engraving.engraving_jobs WHERE status = 'complete'`,
        );
        return done.rows[0].n === 10;
      },
      'all 10 jobs complete',
      30000,
    );
    const received = sims.flatMap((s) => s.received.map((r) => r.jobId)).sort();
    assert.deepEqual(received, ids.map(String).sort());
    const sends = await kit.pool.query(
      `SELECT count(*)::int AS n FROM floorflow.lifecycle_transitions WHERE lifecycle = 'engraving-job' AND action = 'send_to_machine'`,
    );
    assert.equal(sends.rows[0].n, 10);
    const stock = await kit.pool.query(`SELECT stock_available FROM engraving.items WHERE id = 'cup-10'`);
    assert.equal(stock.rows[0].stock_available, 90);
    // The metrics follow each change on the event bus.
    const metrics = await kit.waitFor(
      () =>
        busEvents.find(
          (e) => e.channel === 'engraving' && e.body.type === 'metrics' && e.body.jobs_completed_today === 10,
        ),
      'metrics with 10 jobs completed today',
    );
    assert.equal(metrics.body.qa_pass_rate, 100);
    assert.equal(metrics.body.jobs_in_queue, 0);
    assert.equal(metrics.body.jobs_processing, 0);
  });
});
