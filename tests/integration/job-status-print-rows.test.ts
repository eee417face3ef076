// A print batch's ledger and status rows (migration 131): both inserted without a conflict probe.
// The rows something outside the appliers wrote for a record are left as they are, as INSERT ...
// ON CONFLICT DO NOTHING left them, and a record another transaction records meanwhile still makes
// the batch try again without it.
import assert from 'node:assert/strict';
import { Client } from 'pg';
import { processBatch, type BatchOptions } from '../../store/job-status';
import { applyPrintOsRecords } from '../../store/job-status-print';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db';
import {
  addImposition,
  addJobs,
  addPrintOs,
  fileId,
  processedRecords,
  statusUpdates,
} from '../support/job-status-fixtures';

const NOW = new Date('2026-01-05T08:00:00Z');
const options: BatchOptions = { batchSize: 100, lookBack: 1000, now: NOW, flowVersion: '1.0.0' };

describe('job-status print batches: status rows', function () {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  it('a status row written for a record before it is applied is kept, and the record writes the rest', async () => {
    await addJobs(db.pool, ['10_1', '10_2', '10_3']);
    await addImposition(db.pool, 'IMP-1', [fileId('10_1', 1), fileId('10_2', 1)]);
    await addImposition(db.pool, 'IMP-2', [fileId('10_3', 1)]);
    const [first, second] = await addPrintOs(db.pool, [
      { name: 'IMP-1', status: 'PRINTED', marker: 1 },
      { name: 'IMP-2', status: 'PRINTED', marker: 2 },
    ]);
    // A row for the first record and job 10_2, written by hand (as an import or a repair would).
    await db.pool.query(
      `INSERT INTO jobmanager.job_status_updates (job_id, operation_type, status, source_type, source_id, notes)
       VALUES ('10_2', 'print', 'aborted', 'print_os', $1, 'written by hand')`,
      [first],
    );

    const result = await processBatch(db.pool, 'print_os', options);

    assert.equal(result.applied, 2);
    assert.deepEqual(
      (await statusUpdates(db.pool)).map((u) => [u.job_id, Number(u.source_id), u.status, u.notes]),
      [
        ['10_2', first, 'aborted', 'written by hand'],
        ['10_1', first, 'completed', 'all 1 files printed'],
        ['10_3', second, 'completed', 'all 1 files printed'],
      ],
    );
    assert.deepEqual(
      (await processedRecords(db.pool, 'print_os')).map((r) => r.outcome),
      ['applied', 'applied'],
    );
  });

  it('a batch whose records have no status rows yet writes one per record and job, in record order', async () => {
    await addJobs(db.pool, ['20_1', '20_2']);
    await addImposition(db.pool, 'IMP-A', [fileId('20_2', 1), fileId('20_1', 1)]);
    await addImposition(db.pool, 'IMP-B', [fileId('20_1', 2)]);
    const [a, b] = await addPrintOs(db.pool, [
      { name: 'IMP-A', status: 'PRINTED', marker: 1 },
      { name: 'IMP-B', status: 'ABORTED', marker: 2 },
    ]);

    await processBatch(db.pool, 'print_os', options);

    assert.deepEqual(
      (await statusUpdates(db.pool)).map((u) => [u.job_id, Number(u.source_id), u.status]),
      [
        ['20_1', a, 'partial'],
        ['20_2', a, 'completed'],
        ['20_1', b, 'partial'],
      ],
    );
  });

  it('a record another transaction records while the batch waits is left to it: the batch is tried again without it', async () => {
    await addJobs(db.pool, ['30_1', '30_2']);
    await addImposition(db.pool, 'IMP-X', [fileId('30_1', 1)]);
    await addImposition(db.pool, 'IMP-Y', [fileId('30_2', 1)]);
    const [x, y] = await addPrintOs(db.pool, [
      { name: 'IMP-X', status: 'PRINTED', marker: 1 },
      { name: 'IMP-Y', status: 'PRINTED', marker: 2 },
    ]);
    // The other transaction has recorded x and not committed yet.
    const other = new Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO jobmanager.processed_source_records (source_type, source_id, marker, outcome, processed_at)
         VALUES ('print_os', $1, 1, 'applied', $2)`,
        [x, NOW],
      );
      const applying = applyPrintOsRecords(
        db.pool,
        [
          { id: x, marker: 1, name: 'IMP-X', status: 'PRINTED' },
          { id: y, marker: 2, name: 'IMP-Y', status: 'PRINTED' },
        ],
        { now: NOW },
      );
      await waitFor(async () => {
        const waiting = await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return waiting.rows[0].n > 0;
      }, 'the batch to wait for the other transaction');
      await other.query('COMMIT');
      const result = await applying;

      assert.deepEqual(
        result.records.map((r) => [r.source_id, r.outcome]),
        [
          [x, 'seen'],
          [y, 'applied'],
        ],
      );
    } finally {
      await other.end();
    }
    assert.deepEqual(
      (await statusUpdates(db.pool)).map((u) => [u.job_id, Number(u.source_id)]),
      [['30_2', y]],
    );
  });
});
