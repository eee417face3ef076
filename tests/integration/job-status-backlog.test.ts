// Catching up a "print OS" backlog: per-job print counts (migration 015) that follow the job's
// files, and batches that grow while a backlog lasts, each row still applied exactly once.
import assert from 'node:assert/strict';
import { catchUp, processBatch, type BatchOptions } from '../../store/job-status';
import { createTestDatabase, type TestDatabase } from '../support/db';
import {
  addImposition,
  addJobs,
  addPrintOs,
  fileId,
  jobOperations,
  markerOf,
  processedRecords,
  statusUpdates,
} from '../support/job-status-fixtures';

const NOW = new Date('2026-01-05T08:00:00Z');
const options = (extra: Partial<BatchOptions> = {}): BatchOptions => ({
  batchSize: 100,
  lookBack: 1000,
  now: NOW,
  flowVersion: '1.0.0',
  ...extra,
});

describe('job-status backlog (per-job counts, growing batches)', function () {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  it('a file mapped to a job after its first print counts in its next verdict', async () => {
    await addJobs(db.pool, ['4604_5889']);
    await addImposition(db.pool, 'IMP-A', [fileId('4604_5889', 1), fileId('4604_5889', 2)]);
    await addPrintOs(db.pool, [{ name: 'IMP-A', status: 'PRINTED', marker: 1 }]);
    await processBatch(db.pool, 'print_os', options());
    assert.equal((await jobOperations(db.pool, '4604_5889')).print, true);

    // The planner adds a third file of the job on another imposition, which is then aborted.
    await addImposition(db.pool, 'IMP-C', [fileId('4604_5889', 3)]);
    await addPrintOs(db.pool, [{ name: 'IMP-C', status: 'ABORTED', marker: 2 }]);
    await processBatch(db.pool, 'print_os', options());
    const history = await statusUpdates(db.pool, '4604_5889');
    assert.equal(history[1].status, 'partial');
    assert.match(history[1].notes ?? '', /partially printed: 2 of 3 files, 1 aborted/);
    assert.equal((await jobOperations(db.pool, '4604_5889')).print, false);
  });

  it('a job removed and created again is judged from its files again', async () => {
    await addJobs(db.pool, ['1_1']);
    await addImposition(db.pool, 'IMP-1', [fileId('1_1', 1)]);
    await addImposition(db.pool, 'IMP-2', [fileId('1_1', 2)]);
    await addPrintOs(db.pool, [{ name: 'IMP-1', status: 'PRINTED', marker: 1 }]);
    await processBatch(db.pool, 'print_os', options());
    await db.pool.query(`DELETE FROM jobmanager.job_operation_claims WHERE job_id = '1_1'`);
    await db.pool.query(`DELETE FROM jobmanager.job_status_updates WHERE job_id = '1_1'`);
    await db.pool.query(`DELETE FROM jobmanager.jobs WHERE job_id = '1_1'`);
    // While the job is gone, its second imposition prints (a record skipped for the unknown job
    // still marks its files printed, as one record at a time would).
    await addPrintOs(db.pool, [{ name: 'IMP-2', status: 'PRINTED', marker: 2 }]);
    await processBatch(db.pool, 'print_os', options());
    await addJobs(db.pool, ['1_1']);
    await addPrintOs(db.pool, [{ name: 'IMP-1', status: 'PRINTED', marker: 3 }]);
    await processBatch(db.pool, 'print_os', options());
    const [update] = await statusUpdates(db.pool, '1_1');
    assert.equal(update.status, 'completed');
    assert.match(update.notes ?? '', /all 2 files printed/);
  });

  it('a backlog is caught up in batches that grow, every row applied once, and the marker at the end', async () => {
    const jobs = Array.from({ length: 10 }, (_, i) => `${i + 1}_1`);
    await addJobs(db.pool, jobs);
    for (const [i, job] of jobs.entries()) await addImposition(db.pool, `IMP-${i}`, [fileId(job, 1)]);
    await addPrintOs(
      db.pool,
      Array.from({ length: 40 }, (_, m) => ({
        name: `IMP-${m % 10}`,
        status: 'PRINTED' as const,
        marker: m + 1,
      })),
    );
    const result = await catchUp(db.pool, 'print_os', options({ batchSize: 2, backlogBatchSize: 8 }));
    assert.equal(result.processed, 40);
    assert.equal(result.applied, 40);
    assert.equal(await markerOf(db.pool, 'print_os'), 40);
    const records = await processedRecords(db.pool, 'print_os');
    assert.equal(records.length, 40);
    for (const job of jobs) assert.equal((await jobOperations(db.pool, job)).print, true);
    // One status row per (record, job): each job's imposition was printed four times.
    assert.equal((await statusUpdates(db.pool)).length, 40);
  });
});
