import assert from 'node:assert/strict';
import http from 'node:http';
import helper from 'node-red-node-test-helper';
import { EmbosserSimulator, signedCallback } from '../../cli/embosser-simulator';
import { FlowKit, LOCAL_BROKER_ID, startFlowKit } from '../support/flow-kit';

type Job = {
  id: string;
  status: string;
  attempts: number;
  last_error: string | null;
  sent_at: string;
  plates: Array<{ id: string; status: string }>;
};

const FLOW = 'flows/embossing.json';

describe('embossing flow with the machine simulator', () => {
  let kit: FlowKit;
  const simulators: EmbosserSimulator[] = [];

  async function addPlates(...numbers: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const n of numbers) {
      const row = await kit.pool.query<{ id: string }>(
        `INSERT INTO embossing.plates (plate_number, batch_code, status) VALUES ($1, 'B-7', 'ready_for_embossing') RETURNING id::text AS id`,
        [n],
      );
      ids.push(row.rows[0].id);
    }
    return ids;
  }

  async function machine(
    id: string,
    options: Partial<ConstructorParameters<typeof EmbosserSimulator>[0]> = {},
  ): Promise<{ simulator: EmbosserSimulator; secret: string }> {
    const secret = await kit.addMachine(id, 'embosser');
    const simulator = new EmbosserSimulator({
      machineId: id,
      secret,
      url: `mqtt://127.0.0.1:${kit.mqttPort}`,
      workMs: 0,
      ...options,
    });
    simulators.push(simulator);
    await simulator.start();
    await kit.waitFor(async () => (await presence(id)).online, `${id} online`);
    return { simulator, secret };
  }

  async function presence(id: string): Promise<{ online: boolean }> {
    const row = await kit.pool.query<{ online: boolean }>(
      'SELECT online FROM floorflow.machines WHERE machine_id = $1',
      [id],
    );
    return row.rows[0];
  }

  async function job(id: string): Promise<Job> {
    const res = await kit.request().get(`/api/embossing-jobs/${id}`).expect(200);
    return (res.body as { data: Job }).data;
  }

  async function createJob(plateIds: string[], machineId: string): Promise<Job> {
    const res = await kit
      .request()
      .post('/api/embossing-jobs')
      .send({ plate_ids: plateIds, machine_id: machineId });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return (res.body as { data: Job }).data;
  }

  const pendingRetries = async () =>
    Number((await kit.pool.query('SELECT count(*) AS n FROM floorflow.pending_retries')).rows[0].n);

  async function selectable(): Promise<string[]> {
    const res = await kit.request().get('/api/plates').expect(200);
    return (res.body as { data: Array<{ id: string }> }).data.map((p) => p.id);
  }

  /**
   * A full deploy stops every node (timers, in-memory state) and starts them from the flow
   * files again: what a runtime restart does to the flows, on the same database.
   */
  async function restartFlows(clientsAfter = 2): Promise<void> {
    const running = helper.getNode(LOCAL_BROKER_ID) as unknown as { credentials: Record<string, string> };
    const flows = (
      helper as unknown as { _redNodes: { getFlows(): { flows: unknown[] } } }
    )._redNodes.getFlows().flows;
    await helper.setFlows(flows as Parameters<typeof helper.setFlows>[0], 'full', {
      [LOCAL_BROKER_ID]: { ...running.credentials },
    } as Parameters<typeof helper.setFlows>[2]);
    await kit.waitFor(
      () => kit.clock.pending > 0 && helper.getNode('embossing-retry-backoff') !== null,
      'the flows again',
    );
    await kit.waitFor(
      () => (kit.broker?.aedes.connectedClients ?? 0) >= clientsAfter,
      'the flow connected to the broker again',
    );
  }

  beforeEach(async () => {
    kit = await startFlowKit({ flows: [FLOW] });
  });

  afterEach(async () => {
    for (const s of simulators.splice(0)) await s.stop().catch(() => undefined);
    await kit.stop();
  });

  it('embosses several plates: jobs complete, plates end embossed and every machine message is logged', async () => {
    await machine('EMB-1');
    const [p1, p2, p3] = await addPlates('AB-101', 'AB-101', 'CD-202');
    assert.deepEqual((await selectable()).sort(), [p1, p2, p3].sort());

    const first = await createJob([p1, p2], 'EMB-1');
    const second = await createJob([p3], 'EMB-1');
    assert.equal(first.status, 'queued');
    assert.deepEqual(await selectable(), [], 'plates held by a job are not selectable');

    for (const created of [first, second]) {
      const done = await kit.waitFor(async () => {
        const j = await job(created.id);
        return j.status === 'completed' && j;
      }, `job ${created.id} completed`);
      assert.ok(done.plates.every((p) => p.status === 'embossed'));
    }
    const logs = await kit.request().get(`/api/embossing-jobs/${first.id}/logs`).expect(200);
    const entries = (
      logs.body as { data: Array<{ direction: string; result: string; payload: { status?: string } }> }
    ).data;
    assert.equal(entries[0].direction, 'out');
    assert.deepEqual(
      entries.filter((e) => e.direction === 'in').map((e) => [e.payload.status, e.result]),
      [
        ['accepted', 'applied: accepted'],
        ['in_progress', 'applied: in_progress'],
        ['completed', 'applied: completed'],
      ],
    );
  });

  it('a plate already taken gives 409 and creates nothing', async () => {
    await machine('EMB-1', { fails: () => false });
    const [p1, p2] = await addPlates('AB-1', 'AB-2');
    await kit.pool.query("UPDATE embossing.plates SET unavailable_reason = 'damaged' WHERE id = $1", [p2]);
    const res = await kit
      .request()
      .post('/api/embossing-jobs')
      .send({ plate_ids: [p1, p2], machine_id: 'EMB-1' });
    assert.equal(res.status, 409);
    assert.equal(res.body.success, false);
    const count = await kit.pool.query('SELECT count(*) AS n FROM embossing.embossing_jobs');
    assert.equal(Number(count.rows[0].n), 0);
    assert.deepEqual(await selectable(), [p1]);
    const bad = await kit.request().post('/api/embossing-jobs').send({ plate_ids: 'x', machine_id: 'EMB-1' });
    assert.equal(bad.status, 400);
  });

  it("a machine-reported failure is not re-sent: the job fails with the machine's reason, and a person's retry sends attempt 2", async () => {
    const { simulator } = await machine('EMB-1', { fails: (_job, attempt) => attempt === 1 });
    const [plate] = await addPlates('AB-1');
    const created = await createJob([plate], 'EMB-1');

    const failed = await kit.waitFor(async () => {
      const j = await job(created.id);
      return j.status === 'failed' && j;
    }, 'the job failed');
    assert.equal(failed.last_error, 'EMB-1 reported a failure: die misaligned');
    assert.equal(failed.plates[0].status, 'ready_for_embossing', 'the plate is free for a person to decide');
    assert.equal(await pendingRetries(), 0, 'no automatic retry stored');
    await kit.clock.advance(60000);
    assert.equal(simulator.received.length, 1, 'the command was not sent again');

    await kit.request().post(`/api/embossing-jobs/${created.id}/retry`).expect(202);
    const done = await kit.waitFor(async () => {
      const j = await job(created.id);
      return j.status === 'completed' && j;
    }, 'completed after the retry');
    assert.equal(done.attempts, 2);
    assert.deepEqual(
      simulator.received.map((r) => r.command.attempt),
      [1, 2],
      'the attempt number goes on after a retry, it never starts again at 1',
    );
  });

  it('a machine offline past the last attempt: dead letter, job failed, plates selectable, and a manual retry works', async () => {
    const { simulator } = await machine('EMB-1');
    await simulator.goOffline();
    await kit.waitFor(async () => !(await presence('EMB-1')).online, 'EMB-1 offline');
    const [plate] = await addPlates('AB-1');
    const created = await createJob([plate], 'EMB-1');

    // Watch the stored retry's row id, not the count: a retry that fires and fails again
    // at once stores the next one, so the count may never be seen at 0.
    const storedRetryId = async () =>
      (await kit.pool.query<{ id: string }>('SELECT id FROM floorflow.pending_retries')).rows[0]?.id;
    for (const wait of [5000, 15000, 45000]) {
      const stored = await kit.waitFor(storedRetryId, 'a stored retry');
      await kit.clock.advance(wait);
      await kit.waitFor(async () => (await storedRetryId()) !== stored, 'the retry taken');
    }
    // Time goes on while the last attempt runs: the queue worker also claims on its interval,
    // so a claim that missed the retry's poke (seen once in a fresh-clone run) still happens.
    const failed = await kit.waitFor(async () => {
      const j = await job(created.id);
      if (j.status !== 'failed') await kit.clock.advance(1000);
      return j.status === 'failed' && j;
    }, 'the job failed');
    assert.equal(simulator.received.length, 0);
    assert.deepEqual(await selectable(), [plate], 'the plate is selectable again');
    assert.equal(failed.plates[0].status, 'ready_for_embossing');
    assert.equal(failed.last_error, 'not sent after 4 attempts: machine EMB-1 is offline');

    await simulator.comeBack();
    await kit.waitFor(async () => (await presence('EMB-1')).online, 'EMB-1 back');
    const retried = await kit.request().post(`/api/embossing-jobs/${created.id}/retry`).expect(202);
    assert.equal(retried.body.data.status, 'queued');
    await kit.waitFor(
      async () => (await job(created.id)).status === 'completed',
      'the retried job completed',
    );
    const again = await kit.request().post(`/api/embossing-jobs/${created.id}/retry`);
    assert.equal(again.status, 409, 'a completed job cannot be retried');
  });

  it('forged, expired, wrong-machine and replayed callbacks change nothing; a signed one completes the job', async () => {
    const { simulator, secret } = await machine('EMB-1');
    const other = await machine('EMB-2');
    simulator.setMode('silent');
    const [plate] = await addPlates('AB-1');
    const created = await createJob([plate], 'EMB-1');
    await kit.waitFor(async () => (await job(created.id)).status === 'sent', 'the job sent');

    const url = `/api/embossing-jobs/callback/${created.id}`;
    const body = JSON.stringify({ status: 'completed', attempt: 1, response: { die: 'ok' } });
    const now = () => Math.floor(kit.clock.now().getTime() / 1000);
    const send = (headers: Record<string, string>, raw = body, to = url) =>
      kit.request().post(to).set('Content-Type', 'application/json').set(headers).send(raw);
    const post = (machineId: string, key: string, timestamp: number, raw = body) =>
      send(signedCallback({ machineId, secret: key, path: url, body: raw, timestamp }), raw);

    assert.equal((await post('EMB-1', 'not-the-secret', now())).status, 401, 'forged');
    assert.equal((await post('EMB-1', secret, now() - 301)).status, 401, 'expired');
    assert.equal((await post('EMB-1', secret, now() + 31)).status, 401, 'from the future');
    assert.equal((await post('EMB-2', other.secret, now())).status, 403, 'another machine');
    const unsigned = await kit.request().post(url).set('Content-Type', 'application/json').send(body);
    assert.equal(unsigned.status, 401, 'unsigned');
    const signed = signedCallback({ machineId: 'EMB-1', secret, path: url, body, timestamp: now() });
    const tampered = await send(
      signed,
      JSON.stringify({ status: 'completed', attempt: 1, response: { die: 'forged' } }),
    );
    assert.equal(tampered.status, 401, 'a body other than the signed one');
    const elsewhere = await send(signed, body, `/api/embossing-jobs/callback/${Number(created.id) + 1000}`);
    assert.equal(elsewhere.status, 401, "a signature posted to another job's path");
    const stale = JSON.stringify({ status: 'completed', attempt: 2, response: { die: 'ok' } });
    assert.equal((await post('EMB-1', secret, now(), stale)).status, 409, 'an attempt that is not current');
    assert.equal((await job(created.id)).status, 'sent', 'nothing changed');

    const first = signedCallback({ machineId: 'EMB-1', secret, path: url, body, timestamp: now() });
    const accepted = await send(first);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    const done = await job(created.id);
    assert.equal(done.status, 'completed');
    assert.equal(done.plates[0].status, 'embossed');

    const repeat = await send(first);
    assert.equal(repeat.status, 200, 'an exact repeat gets the first answer');
    assert.deepEqual(repeat.body, accepted.body);
    const replay = await post('EMB-1', secret, now());
    assert.equal(replay.status, 200, 'the same report with a new nonce gets the first answer');
    assert.deepEqual(replay.body, accepted.body);
    const reused = await send(first, JSON.stringify({ status: 'failed', attempt: 1 }));
    assert.equal(reused.status, 401, 'the nonce of an accepted callback with another body');
    assert.deepEqual(await job(created.id), done, 'the repeats changed nothing');
    const logged = await kit.pool.query<{ result: string }>(
      `SELECT result FROM embossing.machine_messages WHERE job_id = $1 AND channel = 'http' ORDER BY id`,
      [created.id],
    );
    assert.equal(logged.rows.filter((r) => r.result.startsWith('rejected')).length, 7);
  });

  it('an HTTP embosser gets the job POSTed to its API and completes it with a signed callback', async () => {
    const secret = await kit.addMachine('EMB-H', 'embosser');
    const posted: Array<{ url: string; body: { job_id: string; attempt: number; callback_path: string } }> =
      [];
    const api = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posted.push({ url: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"queued":true}');
      });
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    try {
      const port = (api.address() as { port: number }).port;
      await kit.pool.query(
        `UPDATE floorflow.machines SET profile = 'http', settings = $2 WHERE machine_id = $1`,
        ['EMB-H', { api_url: `http://127.0.0.1:${port}` }],
      );
      const [plate] = await addPlates('H-1');
      const created = await createJob([plate], 'EMB-H');
      await kit.waitFor(() => posted.length === 1, 'the job POSTed to the machine API');
      assert.equal(posted[0].url, '/jobs');
      assert.equal(posted[0].body.job_id, created.id);
      await kit.waitFor(async () => (await job(created.id)).status === 'sent', 'the job sent');

      assert.equal(posted[0].body.attempt, 1, 'the command names its attempt');
      const raw = JSON.stringify({
        status: 'completed',
        attempt: posted[0].body.attempt,
        response: { serial: 'H-1-001' },
      });
      const timestamp = Math.floor(kit.clock.now().getTime() / 1000);
      const answer = await kit
        .request()
        .post(posted[0].body.callback_path)
        .set('Content-Type', 'application/json')
        .set(
          signedCallback({
            machineId: 'EMB-H',
            secret,
            path: posted[0].body.callback_path,
            body: raw,
            timestamp,
          }),
        )
        .send(raw);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const done = await job(created.id);
      assert.equal(done.status, 'completed');
      assert.equal(done.plates[0].status, 'embossed');
    } finally {
      api.close();
    }
  });

  /** Moves the clock on in sweep-sized steps until the job is in `status` (the sweep re-arms after each round). */
  async function sweepUntil(jobId: string, status: string, stepMs = 1000): Promise<Job> {
    return kit.waitFor(async () => {
      const j = await job(jobId);
      if (j.status === status) return j;
      await kit.clock.advance(stepMs);
      return false;
    }, `job ${jobId} ${status}`);
  }

  it('a machine that does not answer by the deadline: the job needs attention, is not re-sent, and a cancel tells the machine', async () => {
    const { simulator } = await machine('EMB-1');
    simulator.setMode('silent');
    const [plate] = await addPlates('AB-1');
    const created = await createJob([plate], 'EMB-1');
    await kit.waitFor(() => simulator.received.length === 1, 'the command at the machine');
    await kit.clock.advance(119000);
    assert.equal((await job(created.id)).status, 'sent', 'not before the deadline');
    const waiting = await sweepUntil(created.id, 'needs_attention');
    assert.match(waiting.last_error ?? '', /^no answer from EMB-1 within 120 s \(attempt 1\)/);
    assert.equal(waiting.plates[0].status, 'embossing_in_progress', 'held: the machine may have embossed it');
    assert.equal(await pendingRetries(), 0);
    await kit.clock.advance(60000);
    assert.equal(simulator.received.length, 1, 'not sent again');

    const cancelled = await kit.request().post(`/api/embossing-jobs/${created.id}/cancel`).expect(200);
    assert.equal(cancelled.body.data.status, 'cancelled');
    await kit.waitFor(() => simulator.cancelled.includes(created.id), 'the cancel command at the machine');
    assert.deepEqual(await selectable(), [plate], 'the plate is free again');
  });

  it('in_progress events move the deadline on: a long job is not given up while the machine works', async () => {
    const { simulator, secret } = await machine('EMB-1');
    simulator.setMode('silent');
    const [plate] = await addPlates('AB-1');
    const created = await createJob([plate], 'EMB-1');
    await kit.waitFor(() => simulator.received.length === 1, 'the command at the machine');
    const client = await kit.connectMachine('EMB-1', secret);
    const heard = async () =>
      Number(
        (
          await kit.pool.query(
            `SELECT count(*) AS n FROM embossing.machine_messages WHERE job_id = $1 AND result = 'applied: in_progress'`,
            [created.id],
          )
        ).rows[0].n,
      );
    const event = (status: string) =>
      client.publishAsync('floorflow/machines/EMB-1/event', JSON.stringify({ job_id: created.id, status }), {
        qos: 1,
      });
    for (let minute = 0; minute < 5; minute++) {
      await kit.clock.advance(60000);
      await event('in_progress');
      await kit.waitFor(async () => (await heard()) === minute + 1, `heartbeat ${minute + 1} applied`);
    }
    await kit.clock.advance(2000);
    assert.equal((await job(created.id)).status, 'in_progress', 'five minutes in, still working');
    await event('completed');
    await kit.waitFor(async () => (await job(created.id)).status === 'completed', 'completed');
  });

  it('a retry pending when the flows restart still fires on the same database', async () => {
    const { simulator } = await machine('EMB-1');
    await simulator.goOffline();
    await kit.waitFor(async () => !(await presence('EMB-1')).online, 'EMB-1 offline');
    const [plate] = await addPlates('AB-1');
    const created = await createJob([plate], 'EMB-1');
    await kit.waitFor(async () => (await pendingRetries()) === 1, 'the retry stored');
    await simulator.comeBack();
    await kit.waitFor(async () => (await presence('EMB-1')).online, 'EMB-1 back');

    await restartFlows();

    await kit.clock.advance(5000);
    await kit.waitFor(
      async () => (await job(created.id)).status === 'completed',
      'completed after the restart',
    );
    assert.deepEqual(
      simulator.received.map((r) => r.command.attempt),
      [1],
      'sent once: the attempt while offline never reached it',
    );
  });

  it('a job whose embosser vanishes across a restart needs attention within its deadline and can be cancelled', async () => {
    const { simulator } = await machine('EMB-1');
    simulator.setMode('silent');
    const [plate] = await addPlates('AB-1');
    const created = await createJob([plate], 'EMB-1');
    await kit.waitFor(async () => (await job(created.id)).status === 'sent', 'the job sent');
    await simulator.goOffline();
    await restartFlows(1);
    await kit.clock.advance(60000);
    assert.equal((await job(created.id)).status, 'sent');
    const waiting = await sweepUntil(created.id, 'needs_attention', 5000);
    assert.match(waiting.last_error ?? '', /^no answer from EMB-1 within 120 s/);
    await kit.request().post(`/api/embossing-jobs/${created.id}/cancel`).expect(200);
    assert.deepEqual(await selectable(), [plate]);
  });

  it("an engraver's event never touches an embossing job of the same number", async () => {
    const { simulator } = await machine('EMB-1');
    simulator.setMode('silent');
    const [plate] = await addPlates('AB-1');
    const created = await createJob([plate], 'EMB-1');
    await kit.waitFor(async () => (await job(created.id)).status === 'sent', 'the job sent');
    const engraverSecret = await kit.addMachine('ENG-1', 'engraver');
    const engraver = await kit.connectMachine('ENG-1', engraverSecret);
    await engraver.publishAsync(
      'floorflow/machines/ENG-1/event',
      JSON.stringify({ job_id: Number(created.id), status: 'completed' }),
      { qos: 1 },
    );
    // Through the embosser's own input too, as if an engraver's events had been wired to it.
    kit.receive('embossing-embosser', {
      topic: 'floorflow/machines/ENG-1/event',
      payload: { job_id: created.id, status: 'completed' },
    });
    const stored = await kit.waitFor(
      async () =>
        Number(
          (
            await kit.pool.query(
              `SELECT count(*) AS n FROM floorflow.machine_events WHERE machine_id = 'ENG-1'`,
            )
          ).rows[0].n,
        ) === 1,
      "the engraver's event in the inbox",
    );
    assert.ok(stored);
    assert.equal((await job(created.id)).status, 'sent', 'the embossing job is untouched');
    const logged = await kit.waitFor(async () => {
      const rows = await kit.pool.query(
        `SELECT machine_id, job_id, result FROM embossing.machine_messages WHERE direction = 'in'`,
      );
      return rows.rowCount === 1 && rows;
    }, 'the ignored event logged under its machine');
    assert.deepEqual(logged.rows, [
      { machine_id: 'ENG-1', job_id: null, result: 'ignored: ENG-1 is an engraver, not an embosser' },
    ]);
  });

  it('two workers never send the same job', async () => {
    await kit.stop();
    kit = await startFlowKit({
      flows: [FLOW],
      extraNodes: [
        {
          id: 'embossing-worker-2',
          type: 'floorflow-queue-worker',
          z: 'embossing-tab',
          queue: 'embossing',
          db: 'floorflow-db-main',
          interval: 5,
          maxConcurrency: 3,
          stuckAfter: 0,
          monitorInterval: 60,
          schemaVersion: 1,
          wires: [['embossing-retry-backoff']],
        },
      ],
    });
    const { simulator } = await machine('EMB-1');
    const plates = await addPlates('P1', 'P2', 'P3', 'P4', 'P5', 'P6', 'P7', 'P8');
    const jobs: Job[] = [];
    for (const plate of plates) jobs.push(await createJob([plate], 'EMB-1'));
    for (let round = 0; round < 3; round++) await kit.clock.advance(5000);
    for (const j of jobs) {
      await kit.waitFor(async () => (await job(j.id)).status === 'completed', `job ${j.id} completed`);
    }
    const sent = simulator.received.map((r) => r.jobId).sort();
    assert.deepEqual(sent, jobs.map((j) => j.id).sort(), 'each job reached the machine exactly once');
  });
});
