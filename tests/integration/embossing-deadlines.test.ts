import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  applyMachineReport,
  cancelJob,
  createJob,
  getJob,
  markOverdue,
  markSent,
  retryJob,
  selectablePlates,
} from '../../store/embossing';
import { MachineStore } from '../../store/machines';
import { TestDatabase, createTestDatabase } from '../support/db';

describe('embossing deadlines (store)', () => {
  let db: TestDatabase;
  const start = new Date('2026-01-05T08:00:00Z');
  const at = (seconds: number) => ({ at: new Date(start.getTime() + seconds * 1000), source: 'test' });
  const reason = (job: { id: string; machine_id: string }) =>
    `no answer from ${job.machine_id} for ${job.id}`;

  beforeEach(async () => {
    db = await createTestDatabase({ poolSize: 20 });
    await new MachineStore(db.pool, crypto.randomBytes(16).toString('hex')).add('EMB-1', 'embosser');
  });
  afterEach(async () => {
    await db.drop();
  });

  async function sentJob(): Promise<{ jobId: string; plateId: string }> {
    const row = await db.pool.query<{ id: string }>(
      `INSERT INTO embossing.plates (plate_number, status) VALUES ('X-' || floor(random() * 1e6), 'ready_for_embossing') RETURNING id::text AS id`,
    );
    const plateId = row.rows[0].id;
    const { job } = await createJob(db.pool, { plateIds: [plateId], machineId: 'EMB-1' }, at(0));
    assert.equal((await markSent(db.pool, job.id, { type: 'emboss' }, at(0), 120000)).job.status, 'sent');
    return { jobId: job.id, plateId };
  }

  it('a job past its deadline needs attention with the reason and keeps its plates; in_progress moves the deadline on', async () => {
    const { jobId, plateId } = await sentJob();
    assert.deepEqual(await markOverdue(db.pool, at(119), reason), [], 'not before its deadline');
    await applyMachineReport(db.pool, jobId, { status: 'accepted' }, at(100));
    await applyMachineReport(db.pool, jobId, { status: 'in_progress' }, at(110));
    // A repeated in_progress is the machine's heartbeat: no transition, a later deadline.
    const beat = await applyMachineReport(db.pool, jobId, { status: 'in_progress' }, at(200));
    assert.deepEqual(beat.transitions, [], 'applied, with no transition');
    assert.equal((await getJob(db.pool, jobId))?.status, 'in_progress');
    assert.deepEqual(await markOverdue(db.pool, at(319), reason), [], 'the heartbeat moved the deadline');

    const overdue = await markOverdue(db.pool, at(320), reason);
    assert.deepEqual(
      overdue.map((c) => [c.job.id, c.job.status, c.job.last_error]),
      [[jobId, 'needs_attention', `no answer from EMB-1 for ${jobId}`]],
    );
    const job = await getJob(db.pool, jobId);
    assert.equal(job?.plates[0].status, 'embossing_in_progress', 'the machine may have embossed it: held');
    assert.ok(!(await selectablePlates(db.pool)).some((p) => p.id === plateId));
    assert.deepEqual(await markOverdue(db.pool, at(1000), reason), [], 'handled once');

    // The machine turns out to have finished: its late report still counts.
    const late = await applyMachineReport(db.pool, jobId, { status: 'completed' }, at(1100));
    assert.equal(late.job.status, 'completed');
    assert.equal((await getJob(db.pool, jobId))?.plates[0].status, 'embossed');
  });

  it('a retry of a job that needs attention keeps its plates and continues the attempt count', async () => {
    const { jobId } = await sentJob();
    await markOverdue(db.pool, at(121), reason);
    const retried = await retryJob(db.pool, jobId, at(130));
    assert.equal(retried.job.status, 'queued');
    const queued = await getJob(db.pool, jobId);
    assert.equal(queued?.status, 'queued');
    assert.equal(queued?.attempts, 1);
    assert.equal(queued?.plates[0].status, 'queued_for_embossing');
    await markSent(db.pool, jobId, {}, at(140), 120000);
    assert.equal((await getJob(db.pool, jobId))?.attempts, 2, 'the next command is attempt 2, never 1 again');
  });

  it("a machine's failure fails the job with its reason and frees the plates; a retry continues the count", async () => {
    const { jobId, plateId } = await sentJob();
    const failed = await applyMachineReport(
      db.pool,
      jobId,
      {
        status: 'failed',
        response: { error: 'die misaligned' },
        error: 'EMB-1 reported a failure: die misaligned',
      },
      at(10),
    );
    assert.equal(failed.job.status, 'failed');
    const job = await getJob(db.pool, jobId);
    assert.equal(job?.status, 'failed');
    assert.equal(job?.last_error, 'EMB-1 reported a failure: die misaligned');
    assert.equal(job?.plates[0].status, 'ready_for_embossing');
    assert.ok((await selectablePlates(db.pool)).some((p) => p.id === plateId));
    assert.deepEqual(await markOverdue(db.pool, at(1000), reason), [], 'a failed job has no deadline');
    assert.equal((await retryJob(db.pool, jobId, at(20))).job.status, 'queued');
    await markSent(db.pool, jobId, {}, at(30), 120000);
    assert.equal((await getJob(db.pool, jobId))?.attempts, 2);
  });

  it('a job that needs attention can be cancelled and lets its plates go', async () => {
    const { jobId, plateId } = await sentJob();
    await markOverdue(db.pool, at(121), reason);
    const cancelled = await cancelJob(db.pool, jobId, at(130));
    assert.equal(cancelled.job.status, 'cancelled');
    assert.equal(cancelled.transitions[0].from, 'needs_attention');
    assert.equal((await getJob(db.pool, jobId))?.plates[0].status, 'ready_for_embossing');
    assert.ok((await selectablePlates(db.pool)).some((p) => p.id === plateId));
  });

  it('runtimes sweeping together handle each overdue job once', async () => {
    const jobs: string[] = [];
    for (let i = 0; i < 12; i++) jobs.push((await sentJob()).jobId);
    const sweeps = await Promise.all(
      Array.from({ length: 4 }, () => markOverdue(db.pool, at(200), reason, 5)),
    );
    let handled = sweeps.flat().map((c) => c.job.id);
    // A sweep that met only locked rows returns fewer: the next round of each takes the rest.
    while (handled.length < jobs.length) {
      const more = await markOverdue(db.pool, at(200), reason, 5);
      if (more.length === 0) break;
      handled = handled.concat(more.map((c) => c.job.id));
    }
    assert.equal(new Set(handled).size, handled.length, 'no job handled twice');
    assert.deepEqual([...handled].sort(), [...jobs].sort());
    const audited = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM floorflow.lifecycle_transitions WHERE action = 'attention'`,
    );
    assert.equal(Number(audited.rows[0].n), jobs.length);
  });
});
