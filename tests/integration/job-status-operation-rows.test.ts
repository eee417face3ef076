// The plant's own operation ids as the shipped defaults (print is 'print' in both
// imposition_operations and job_operations), and a status update whose planned operation row is
// missing reported as a skipped record, never silent (issue 17).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  gapReport,
  processBatch,
  reprocessFrom,
  skippedRecords,
  type BatchOptions,
} from '../../store/job-status';
import { createTestDatabase, type TestDatabase } from '../support/db';
import {
  addImposition,
  addJobs,
  addPrintOs,
  addScanRow,
  fileId,
  jobOperationRow,
  jobOperations,
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

/** A job in jobmanager.jobs with no planned operation rows at all. */
async function addBareJob(db: TestDatabase, jobId: string): Promise<void> {
  await db.pool.query(`INSERT INTO jobmanager.jobs (job_id, version_tag) VALUES ($1, '1')`, [jobId]);
}

describe('job-status operation rows (the plant’s operation ids, missing rows reported)', function () {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  it('the shipped catalog uses the plant’s ids: print, op003 coating, op006 kiss_cut', async () => {
    const rows = await db.pool.query<{ operation_name: string; operation_id: string }>(
      `SELECT operation_name, operation_id FROM logs.operation_catalog
       WHERE operation_name IN ('print', 'coating', 'kiss_cut') ORDER BY operation_name`,
    );
    assert.deepEqual(
      rows.rows.map((r) => [r.operation_name, r.operation_id]),
      [
        ['coating', 'op003'],
        ['kiss_cut', 'op006'],
        ['print', 'print'],
      ],
    );
  });

  it('plant data with print rows gets print status with the shipped defaults', async () => {
    // The rows as the print OS writes them (docs/job-status.md): operation_id 'print' at both levels.
    await db.pool.query(`
      INSERT INTO jobmanager.jobs (job_id, version_tag) VALUES ('4604_5889', '1');
      INSERT INTO logs.job_operations (job_operation_id, job_id, version_tag, operation_id, sequence_order)
      VALUES ('jo-1', '4604_5889', '1', 'print', 1), ('jo-2', '4604_5889', '1', 'op003', 2);
      INSERT INTO logs.imposition_file_mapping (imposition_id, file_id)
      VALUES ('IMP-1', 'FILE_1_Labex_4604_5889_80'), ('IMP-1', 'FILE_1_Labex_4604_5889_81');
      INSERT INTO logs.imposition_operations (imposition_operation_id, imposition_id, operation_id, sequence_order)
      VALUES ('io-1', 'IMP-1', 'print', 1);`);
    const [id] = await addPrintOs(db.pool, [{ name: 'IMP-1', status: 'PRINTED', marker: 1 }]);
    const result = await processBatch(db.pool, 'print_os', options());
    assert.equal(result.applied, 1);
    assert.equal((await jobOperations(db.pool, '4604_5889')).print, true);
    const op = await jobOperationRow(db.pool, '4604_5889', 'print');
    assert.equal(op.status, 'completed');
    assert.equal(op.completed_by, 'print_os');
    assert.equal(Number(op.source_id), id);
    const imposition = await db.pool.query(
      `SELECT status, completed_by, source_id FROM logs.imposition_operations WHERE imposition_operation_id = 'io-1'`,
    );
    assert.deepEqual(imposition.rows[0], {
      status: 'completed',
      completed_by: 'print_os',
      source_id: String(id),
    });
  });

  it('a print record whose job has no planned print row is skipped with the reason, listed, and applied by a reprocess once the row exists', async () => {
    await addBareJob(db, '5_5');
    await addImposition(db.pool, 'IMP-5', [fileId('5_5', 1)]);
    const [id] = await addPrintOs(db.pool, [{ name: 'IMP-5', status: 'PRINTED', marker: 1 }]);
    const result = await processBatch(db.pool, 'print_os', options());
    assert.equal(result.skipped, 1);
    assert.match(
      result.skips[0].reason,
      /no planned print operation \(operation_id print\) in logs\.job_operations for job 5_5/,
    );
    const [record] = await processedRecords(db.pool, 'print_os');
    assert.equal(record.outcome, 'skipped');
    assert.equal((await jobOperations(db.pool, '5_5')).print, undefined, 'a skipped record takes no effect');
    assert.deepEqual(await statusUpdates(db.pool, '5_5'), []);
    const listed = await skippedRecords(db.pool, 'print_os');
    assert.deepEqual(
      listed.map((s) => s.source_id),
      [id],
    );
    assert.equal((await gapReport(db.pool, 'print_os', 1000)).unprocessed, 0);

    await db.pool.query(
      `INSERT INTO logs.job_operations (job_operation_id, job_id, version_tag, operation_id) VALUES ('5:print', '5_5', '1', 'print')`,
    );
    await reprocessFrom(db.pool, 'print_os', 1, NOW);
    const again = await processBatch(db.pool, 'print_os', options());
    assert.equal(again.applied, 1);
    assert.equal((await jobOperations(db.pool, '5_5')).print, true);
    assert.equal((await jobOperationRow(db.pool, '5_5', 'print')).status, 'completed');
  });

  it('a job without its planned print row beside one with it: the record applies to the planned job and names the other', async () => {
    await addJobs(db.pool, ['1_1']);
    await addBareJob(db, '2_2');
    await addImposition(db.pool, 'IMP-12', [fileId('1_1', 1), fileId('2_2', 1)]);
    await addPrintOs(db.pool, [{ name: 'IMP-12', status: 'PRINTED', marker: 1 }]);
    const result = await processBatch(db.pool, 'print_os', options());
    assert.equal(result.applied, 1);
    assert.equal(result.jobs_updated, 1);
    assert.equal((await jobOperations(db.pool, '1_1')).print, true);
    assert.equal((await jobOperations(db.pool, '2_2')).print, undefined);
    const [update] = await statusUpdates(db.pool, '1_1');
    assert.match(update.notes ?? '', /jobs without a planned print operation skipped: 2_2/);
  });

  it('a scan whose job has no planned row for the operation is skipped with the reason', async () => {
    await addBareJob(db, '7_7');
    await db.pool.query(
      `INSERT INTO logs.job_operations (job_operation_id, job_id, version_tag, operation_id) VALUES ('7:print', '7_7', '1', 'print')`,
    );
    await addScanRow(db.pool, { code: '7_7_1', operations: ['coating'] });
    await addScanRow(db.pool, { code: '7_7_1', operations: ['coating', 'print'] });
    const result = await processBatch(db.pool, 'scanner', options());
    const records = await processedRecords(db.pool, 'scanner');
    assert.equal(records[0].outcome, 'skipped');
    assert.match(
      records[0].reason ?? '',
      /no planned operation in logs\.job_operations for coating of job 7_7/,
    );
    // The second scan's print is planned: it applies, and its note names what it left out.
    assert.equal(records[1].outcome, 'applied');
    assert.equal(result.skipped, 1);
    const ops = await jobOperations(db.pool, '7_7');
    assert.equal(ops.coating, undefined);
    assert.equal(ops.print, true);
    const updates = await statusUpdates(db.pool, '7_7');
    assert.deepEqual(
      updates.map((u) => u.operation_type),
      ['print'],
    );
    assert.match(updates[0].notes ?? '', /not planned in logs\.job_operations, skipped: coating of job 7_7/);
  });

  it('a database whose planned rows already use op001 for print keeps that mapping (migration 013)', async () => {
    const sql = fs.readFileSync(
      path.join(__dirname, '../../store/migrations/013_seed_operation_names.sql'),
      'utf8',
    );
    await db.pool.query(
      `UPDATE logs.operation_catalog SET operation_id = 'op001' WHERE operation_name = 'print'`,
    );
    await db.pool.query(
      `INSERT INTO logs.job_operations (job_operation_id, job_id, operation_id) VALUES ('old:op001', '1_1', 'op001')`,
    );
    await db.pool.query(sql);
    const kept = await db.pool.query(
      `SELECT operation_id FROM logs.operation_catalog WHERE operation_name = 'print'`,
    );
    assert.equal(kept.rows[0].operation_id, 'op001');

    await db.pool.query(`DELETE FROM logs.job_operations`);
    await db.pool.query(sql);
    const moved = await db.pool.query(
      `SELECT operation_id FROM logs.operation_catalog WHERE operation_name = 'print'`,
    );
    assert.equal(moved.rows[0].operation_id, 'print');
  });
});
