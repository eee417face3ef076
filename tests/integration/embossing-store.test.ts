import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  applyMachineReport,
  cancelJob,
  claimJobs,
  createJob,
  failJob,
  getJob,
  markSent,
  retryJob,
  selectablePlates,
} from '../../store/embossing';
import { MachineStore } from '../../store/machines';
import { TestDatabase, createTestDatabase } from '../support/db';

describe('embossing store', () => {
  let db: TestDatabase;
  const at = new Date('2026-01-05T08:00:00Z');
  const by = { at, source: 'test' };

  before(async () => {
    db = await createTestDatabase({ poolSize: 20 });
    await new MachineStore(db.pool, crypto.randomBytes(16).toString('hex')).add('EMB-1', 'embosser');
  });
  after(async () => {
    await db.drop();
  });

  async function plates(statuses: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const status of statuses) {
      const row = await db.pool.query<{ id: string }>(
        `INSERT INTO embossing.plates (plate_number, status) VALUES ('X-' || floor(random() * 1e6), $1) RETURNING id::text AS id`,
        [status],
      );
      ids.push(row.rows[0].id);
    }
    return ids;
  }

  it('lists only plates that may be selected: never embossed, held or unavailable ones', async () => {
    const [free, ready, embossed, damaged, held] = await plates([
      'in_production',
      'ready_for_embossing',
      'embossed',
      'in_production',
      'in_production',
    ]);
    await db.pool.query("UPDATE embossing.plates SET unavailable_reason = 'damaged' WHERE id = $1", [
      damaged,
    ]);
    await createJob(db.pool, { plateIds: [held], machineId: 'EMB-1' }, by);
    const ids = (await selectablePlates(db.pool)).map((p) => p.id);
    assert.ok(ids.includes(free) && ids.includes(ready));
    assert.ok(!ids.includes(embossed) && !ids.includes(damaged) && !ids.includes(held));
    assert.deepEqual(
      (await selectablePlates(db.pool, ['ready_for_embossing']))
        .map((p) => p.id)
        .filter((id) => id === ready),
      [ready],
    );
  });

  it('of two concurrent jobs for the same plate one is created and the other is a conflict that creates nothing', async () => {
    const [plate] = await plates(['in_production']);
    const before = Number(
      (await db.pool.query('SELECT count(*) AS n FROM embossing.embossing_jobs')).rows[0].n,
    );
    const results = await Promise.allSettled(
      [1, 2].map(() => createJob(db.pool, { plateIds: [plate], machineId: 'EMB-1' }, by)),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((rejected.reason as { code: string }).code, 'FF_CONFLICT');
    const after = Number(
      (await db.pool.query('SELECT count(*) AS n FROM embossing.embossing_jobs')).rows[0].n,
    );
    assert.equal(after, before + 1);
  });

  it('a report the job state does not allow is refused and changes nothing', async () => {
    const [plate] = await plates(['in_production']);
    const { job } = await createJob(db.pool, { plateIds: [plate], machineId: 'EMB-1' }, by);
    await assert.rejects(applyMachineReport(db.pool, job.id, { status: 'completed' }, by), {
      code: 'FF_TRANSITION_INVALID',
    });
    assert.deepEqual(await getJob(db.pool, job.id), job);
  });

  it('sent → completed marks the plates embossed and lets them go; a replayed completion is refused', async () => {
    const [plate] = await plates(['ready_for_embossing']);
    const { job } = await createJob(db.pool, { plateIds: [plate], machineId: 'EMB-1' }, by);
    assert.equal((await markSent(db.pool, job.id, { type: 'emboss' }, by, 120000)).job.status, 'sent');
    const done = await applyMachineReport(
      db.pool,
      job.id,
      { status: 'completed', response: { ok: true } },
      by,
    );
    assert.equal(done.job.status, 'completed');
    const completed = await getJob(db.pool, job.id);
    assert.equal(completed?.status, 'completed');
    assert.equal(completed?.plates[0].status, 'embossed');
    await assert.rejects(applyMachineReport(db.pool, job.id, { status: 'completed' }, by), {
      code: 'FF_TRANSITION_INVALID',
    });
  });

  it('cancel puts the plates back to their previous status, also for a job at the machine; a finished job cannot be cancelled', async () => {
    const [a, b] = await plates(['in_production', 'ready_for_embossing']);
    const { job } = await createJob(db.pool, { plateIds: [a, b], machineId: 'EMB-1' }, by);
    const cancelled = await cancelJob(db.pool, job.id, by);
    assert.equal(cancelled.job.status, 'cancelled');
    assert.deepEqual(
      (await getJob(db.pool, job.id))?.plates.map((p) => p.status),
      ['in_production', 'ready_for_embossing'],
    );
    const [c] = await plates(['in_production']);
    const second = await createJob(db.pool, { plateIds: [c], machineId: 'EMB-1' }, by);
    await markSent(db.pool, second.job.id, {}, by, 120000);
    const atMachine = await cancelJob(db.pool, second.job.id, by);
    assert.equal(atMachine.job.status, 'cancelled');
    assert.equal(atMachine.transitions[0].from, 'sent');
    assert.equal((await getJob(db.pool, second.job.id))?.plates[0].status, 'in_production');
    await assert.rejects(
      cancelJob(db.pool, second.job.id, by),
      { code: 'FF_TRANSITION_INVALID' },
      'a cancelled job is final',
    );
  });

  it('a failed job frees its plates; retry takes them back unless another job has them', async () => {
    const [plate] = await plates(['in_production']);
    const { job } = await createJob(db.pool, { plateIds: [plate], machineId: 'EMB-1' }, by);
    await failJob(db.pool, job.id, 'gave up', by);
    assert.ok((await selectablePlates(db.pool)).some((p) => p.id === plate));
    const other = await createJob(db.pool, { plateIds: [plate], machineId: 'EMB-1' }, by);
    await assert.rejects(retryJob(db.pool, job.id, by), { code: 'FF_CONFLICT' });
    assert.equal((await getJob(db.pool, job.id))?.status, 'failed', 'the refused retry changed nothing');
    await cancelJob(db.pool, other.job.id, by);
    const retried = await retryJob(db.pool, job.id, by);
    assert.equal(retried.job.status, 'queued');
    assert.equal((await getJob(db.pool, job.id))?.plates[0].status, 'queued_for_embossing');
  });

  it('concurrent claims never hand out the same job twice', async () => {
    const created: string[] = [];
    for (let i = 0; i < 30; i++) {
      const [plate] = await plates(['in_production']);
      created.push((await createJob(db.pool, { plateIds: [plate], machineId: 'EMB-1' }, by)).job.id);
    }
    const claims = await Promise.all(
      Array.from({ length: 8 }, () => claimJobs(db.pool, { max: 5, now: new Date(at.getTime() + 1000) })),
    );
    const ids = claims.flat().map((j) => j.id);
    assert.equal(new Set(ids).size, ids.length, 'no job claimed twice');
    assert.ok(
      created.every((id) => ids.includes(id)),
      'every due job claimed by one of the workers',
    );
    const again = await claimJobs(db.pool, { max: 100, now: new Date(at.getTime() + 1000) });
    assert.ok(
      again.every((j) => !ids.includes(j.id)),
      'held jobs are not claimed again',
    );
  });
});
