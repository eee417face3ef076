// Issue 15, engraving half, against the shipped flows/engraving.json: every wait on an engraver
// has a deadline in its row that survives a restart of the runtime, a job past it goes to a state
// the floor can act on (needs_attention, the reason in plain words) and frees the engraver, an
// operator can cancel a job in any state that is not final (the engraver is told where it has a
// cancel command), and only a command the engraver never acknowledged is sent again on its own.
// Engravers here are plain MQTT clients, so the test decides every event they send.
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { ManualClock } from '../../nodes/common/services';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { type FlowKit, startFlowKit } from '../support/flow-kit';

interface JobView {
  id: number;
  status: string;
  reason: string | null;
  machine_id: string | null;
  deadline_at: string | null;
}

interface Engraver {
  client: MqttClient;
  commands: Array<Record<string, unknown>>;
  report(jobId: number, status: string, response?: Record<string, unknown>): Promise<void>;
}

const MINUTE = 60 * 1000;

describe('engraver deadlines, cancel and failures (issue 15)', function () {
  this.timeout(90000);
  let db: TestDatabase;
  let clock: ManualClock;
  let kit: FlowKit | undefined;
  const secrets = new Map<string, string>();

  beforeEach(async () => {
    db = await createTestDatabase();
    clock = new ManualClock();
    secrets.clear();
    await start();
    await db.pool.query(
      `INSERT INTO engraving.items (id, name, stock_available, max_lines) VALUES ('cup-10', 'Cup 10 in', 10, 3)`,
    );
  });

  afterEach(async () => {
    await kit?.stop();
    kit = undefined;
    await db.drop();
  });

  /** The runtime (the engraving flow) over the test's database; a second call is a restart. */
  async function start(): Promise<FlowKit> {
    kit = await startFlowKit({ flows: ['flows/engraving.json'], database: db, clock });
    return kit;
  }

  async function restart(): Promise<FlowKit> {
    await kit!.stop();
    kit = undefined;
    return start();
  }

  /** Registers (once) and connects an engraver; `cancel` gives it a cancel command in its settings. */
  async function engraver(machineId: string, settings: Record<string, unknown> = {}): Promise<Engraver> {
    if (!secrets.has(machineId)) {
      secrets.set(machineId, await kit!.addMachine(machineId, 'engraver'));
      await db.pool.query(`UPDATE floorflow.machines SET settings = $2 WHERE machine_id = $1`, [
        machineId,
        settings,
      ]);
    }
    const client = await kit!.connectMachine(machineId, secrets.get(machineId)!);
    const commands: Array<Record<string, unknown>> = [];
    client.on('message', (_topic, payload) => commands.push(JSON.parse(payload.toString())));
    await client.subscribeAsync(`floorflow/machines/${machineId}/cmd`, { qos: 1 });
    await kit!.waitFor(
      async () =>
        (await db.pool.query(`SELECT online FROM floorflow.machines WHERE machine_id = $1`, [machineId]))
          .rows[0]?.online,
      `${machineId} online`,
    );
    return {
      client,
      commands,
      async report(jobId, status, response) {
        await client.publishAsync(
          `floorflow/machines/${machineId}/event`,
          JSON.stringify({ job_id: jobId, status, ...(response ? { response } : {}) }),
          { qos: 1 },
        );
      },
    };
  }

  const create = async (fields: Record<string, unknown> = {}): Promise<number> =>
    (
      await kit!
        .request()
        .post('/api/engraving-jobs')
        .send({
          customer_id: 'cust-1',
          item_id: 'cup-10',
          text: ['Club Champion'],
          due_date: '2026-01-20',
          ...fields,
        })
        .expect(202)
    ).body.data.id as number;

  async function job(id: number): Promise<JobView> {
    return (await kit!.request().get(`/api/engraving-jobs/${id}`).expect(200)).body.data as JobView;
  }

  const untilStatus = (id: number, status: string) =>
    kit!.waitFor(async () => {
      const j = await job(id);
      return j.status === status ? j : undefined;
    }, `job ${id} ${status}`);

  const commandFor = (e: Engraver, type: string, id: number) =>
    kit!.waitFor(
      () => e.commands.find((c) => c.type === type && c.job_id === id),
      `${type} command for job ${id}`,
    );

  async function accepted(id: number): Promise<void> {
    await kit!.waitFor(
      async () =>
        (await db.pool.query(`SELECT accepted_at FROM engraving.engraving_jobs WHERE id = $1`, [id])).rows[0]
          ?.accepted_at,
      `job ${id} accepted`,
    );
  }

  const stock = async () =>
    (await db.pool.query(`SELECT stock_available FROM engraving.items WHERE id = 'cup-10'`)).rows[0]
      .stock_available as number;

  it('a job whose engraver accepted it and went silent reaches needs_attention after a restart, frees the engraver, and can be cancelled (the engraver is told)', async () => {
    let a = await engraver('engraver-a', { cancel_command: true });
    const id = await create();
    await commandFor(a, 'engrave', id);
    await a.report(id, 'accepted');
    await accepted(id);
    assert.equal(await stock(), 9);

    // The runtime stops with the job on the engraver; nothing of the wait lives in a process.
    await restart();
    a = await engraver('engraver-a');
    await clock.advance(14 * MINUTE);
    assert.equal((await job(id)).status, 'engraving', 'still within its deadline after 14 minutes');
    await clock.advance(2 * MINUTE);
    const stuck = await untilStatus(id, 'needs_attention');
    assert.equal(stuck.machine_id, 'engraver-a');
    // The round that sees the deadline may run at 15 or 16 min as the test clock moves on by 2 min.
    assert.match(
      stuck.reason ?? '',
      /^engraver-a accepted the job at 08:00 UTC and has not reported since 08:00 UTC \((15|16) min\); check the engraver and the item, then retry or cancel the job$/,
    );
    assert.ok(
      kit!.loggedLines().some((l) => l.msg.includes(`engraving job ${id}: engraver-a accepted the job`)),
      'one log line with the reason',
    );

    // The engraver is free: the next job goes to it.
    const next = await create({ customer_id: 'cust-2' });
    await commandFor(a, 'engrave', next);

    const cancelled = await kit!
      .request()
      .post(`/api/engraving-jobs/${id}/cancel`)
      .send({ reason: 'trophy damaged on the engraver' })
      .expect(200);
    assert.equal(cancelled.body.data.status, 'cancelled');
    assert.deepEqual(cancelled.body.data.cancel_sent_to, ['engraver-a']);
    const cancel = await commandFor(a, 'cancel', id);
    assert.equal(cancel.reason, 'trophy damaged on the engraver');
    assert.equal(await stock(), 9, 'the cancelled job gave its unit back; the next job holds one');
    const again = await kit!.request().post(`/api/engraving-jobs/${id}/cancel`).send({}).expect(409);
    assert.equal(again.body.success, false);
    assert.match(again.body.error, /is cancelled and cannot be cancelled/);
  });

  it('in_progress reports push the deadline on; silence after the last one is what counts', async () => {
    const a = await engraver('engraver-a');
    const id = await create();
    await commandFor(a, 'engrave', id);
    await a.report(id, 'accepted');
    await accepted(id);
    for (let i = 1; i <= 2; i++) {
      await clock.advance(14 * MINUTE);
      await a.report(id, 'in_progress');
      await kit!.waitFor(
        async () =>
          (
            await db.pool.query(
              `SELECT count(*)::int AS n FROM engraving.job_events WHERE job_id = $1 AND reason = 'machine in progress'`,
              [id],
            )
          ).rows[0].n === i,
        `in_progress ${i} applied`,
      );
    }
    await clock.advance(14 * MINUTE);
    assert.equal((await job(id)).status, 'engraving', '42 minutes in, 14 since the last report');
    await clock.advance(2 * MINUTE);
    const stuck = await untilStatus(id, 'needs_attention');
    // The deadline is 15 min after the last report; the monitor round that sees it may run at
    // 15 or 16 min as the test clock moves on by 2 min.
    assert.match(stuck.reason ?? '', /has not reported since 08:28 UTC \((15|16) min\)/);
    // A late completed from the same engraver still counts: the item goes to QA.
    await a.report(id, 'completed');
    await untilStatus(id, 'qa');
  });

  it('a command the engraver never acknowledged goes to another engraver, and the first is told not to start it', async () => {
    const silent = await engraver('engraver-a', { cancel_command: true });
    const id = await create();
    await commandFor(silent, 'engrave', id);
    const b = await engraver('engraver-b');
    await clock.advance(MINUTE);
    assert.equal((await job(id)).status, 'engraving');
    await clock.advance(MINUTE + 15 * 1000);
    await commandFor(b, 'engrave', id);
    const cancel = await commandFor(silent, 'cancel', id);
    assert.match(String(cancel.reason), /not acknowledged/);
    const events = await db.pool.query(
      `SELECT reason, details->>'reason' AS said FROM engraving.job_events WHERE job_id = $1 AND reason LIKE 'ENGRAVER_NO_ANSWER%'`,
      [id],
    );
    assert.deepEqual(events.rows, [
      {
        reason: 'ENGRAVER_NO_ANSWER: reassign',
        said: 'engraver-a did not acknowledge the job within 2 min; it goes to the next free engraver',
      },
    ]);
  });

  it('a failure the engraver reports is not sent again: the job needs attention with the machine words, and a retry by an operator goes to the other engraver', async () => {
    const a = await engraver('engraver-a');
    const id = await create();
    await commandFor(a, 'engrave', id);
    const b = await engraver('engraver-b');
    await a.report(id, 'accepted');
    await a.report(id, 'failed', { error: 'laser power fault' });
    const failed = await untilStatus(id, 'needs_attention');
    assert.equal(
      failed.reason,
      'engraver-a reported a failure: laser power fault; check the engraver and the item, then retry or cancel the job',
    );
    await clock.advance(5 * MINUTE);
    assert.equal(
      a.commands.filter((c) => c.type === 'engrave').length +
        b.commands.filter((c) => c.type === 'engrave').length,
      1,
      'sent once',
    );
    const retried = await kit!
      .requestAs({ kind: 'user', name: 'dana', role: 'operator', session: 's' })
      .post(`/api/engraving-jobs/${id}/retry`)
      .expect(200);
    assert.equal(retried.body.data.status, 'queued');
    await commandFor(b, 'engrave', id);
    const audit = await db.pool.query(
      `SELECT actor FROM engraving.job_events WHERE job_id = $1 AND reason = 'retried by an operator'`,
      [id],
    );
    assert.deepEqual(audit.rows, [{ actor: 'dana' }]);
    const wrong = await kit!.request().post(`/api/engraving-jobs/${id}/retry`).expect(409);
    assert.match(wrong.body.error, /allowed from "needs_attention"/);
  });

  it('an event for a job the engraver does not hold, or that does not exist, changes nothing and is logged with its machine', async () => {
    const a = await engraver('engraver-a');
    const b = await engraver('engraver-b');
    const id = await create();
    const holder = await kit!.waitFor(async () => (await job(id)).machine_id, 'job sent');
    const other = holder === 'engraver-a' ? b : a;
    const otherId = holder === 'engraver-a' ? 'engraver-b' : 'engraver-a';
    await other.report(id, 'completed');
    await other.report(4242, 'completed');
    await kit!.waitFor(
      () =>
        kit!
          .loggedLines()
          .some((l) =>
            l.msg.includes(
              `machine event ignored: ${otherId} reported "completed" for engraving job 4242, which does not exist`,
            ),
          ),
      'the unknown job logged with its machine',
    );
    assert.ok(
      kit!
        .loggedLines()
        .some((l) =>
          l.msg.includes(
            `machine event ignored: ${otherId} reported "completed" for engraving job ${id}, which is engraving on ${holder}`,
          ),
        ),
    );
    assert.equal((await job(id)).status, 'engraving');
    const skipped = await db.pool.query(
      `SELECT count(*)::int AS n FROM jobmanager.processed_source_records WHERE source_type = 'engraving_event' AND outcome = 'skipped'`,
    );
    assert.equal(skipped.rows[0].n, 2);
  });

  it('an operator can cancel a queued, a blocked or a waiting-for-approval job, and the stock comes back; a body it does not know is a 400 and an unknown job a 404', async () => {
    const queued = await create();
    const design = await create({ artwork_url: 'https://example.test/logo.svg' });
    assert.equal(await stock(), 8);
    for (const id of [queued, design])
      assert.equal(
        (await kit!.request().post(`/api/engraving-jobs/${id}/cancel`).expect(200)).body.data.status,
        'cancelled',
      );
    assert.equal(await stock(), 10);
    const designs = await db.pool.query(`SELECT status FROM engraving.designs WHERE job_id = $1`, [design]);
    assert.deepEqual(designs.rows, [{ status: 'cancelled' }]);
    await db.pool.query(`UPDATE engraving.items SET stock_available = 0 WHERE id = 'cup-10'`);
    const blocked = await create();
    assert.equal((await job(blocked)).status, 'blocked');
    await kit!
      .request()
      .post(`/api/engraving-jobs/${blocked}/cancel`)
      .send({ reason: 'customer withdrew' })
      .expect(200);
    assert.equal(await stock(), 0, 'a blocked job held no stock');
    const bad = await kit!
      .request()
      .post(`/api/engraving-jobs/${blocked}/cancel`)
      .send({ why: 'x' })
      .expect(400);
    assert.equal(bad.body.success, false);
    await kit!.request().post(`/api/engraving-jobs/999/cancel`).expect(404);
  });
});
