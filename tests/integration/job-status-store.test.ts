import assert from 'node:assert/strict';
import { Client } from 'pg';
import {
  LOCK_CLASS,
  SOURCES,
  catchUp,
  gapReport,
  jobStatus,
  processBatch,
  reprocessFrom,
  type BatchOptions,
} from '../../store/job-status';
import { applyScanRecord } from '../../store/job-status-scans';
import { insertScan, rejectScan } from '../../store/scan-ingest';
import { createPool } from '../../store/db';
import { createTestDatabase, type TestDatabase } from '../support/db';
import {
  addImposition,
  addJobs,
  addPrintOs,
  addRunlist,
  addScanRow,
  fileId,
  jobOperationRow,
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

describe('job-status store against PostgreSQL', function () {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  /** Job 4604_5889 has files in impositions IMP-A (2 files) and IMP-B (1 file). */
  async function twoImpositionJob(): Promise<void> {
    await addJobs(db.pool, ['4604_5889']);
    await addImposition(db.pool, 'IMP-A', [fileId('4604_5889', 1), fileId('4604_5889', 2)]);
    await addImposition(db.pool, 'IMP-B', [fileId('4604_5889', 3)]);
  }

  describe('print OS completion rules', () => {
    it('a job is printed only when all its files across impositions are printed', async () => {
      await twoImpositionJob();
      await addPrintOs(db.pool, [{ name: 'IMP-A', status: 'PRINTED', marker: 1 }]);
      await processBatch(db.pool, 'print_os', options());
      assert.equal((await jobOperations(db.pool, '4604_5889')).print, false);

      const [idB] = await addPrintOs(db.pool, [{ name: 'IMP-B', status: 'PRINTED', marker: 2 }]);
      const result = await processBatch(db.pool, 'print_os', options());
      assert.equal(result.processed, 1);
      assert.equal((await jobOperations(db.pool, '4604_5889')).print, true);
      const op = await jobOperationRow(db.pool, '4604_5889', 'print');
      assert.equal(op.status, 'completed');
      assert.equal(op.completed_by, 'print_os');
      assert.equal(Number(op.source_id), idB);
      const history = await statusUpdates(db.pool, '4604_5889');
      assert.deepEqual(
        history.map((h) => h.status),
        ['partial', 'completed'],
      );
      const imposition = await db.pool.query(
        `SELECT status, completed_by FROM logs.imposition_operations WHERE imposition_id = 'IMP-B' AND operation_id = 'print'`,
      );
      assert.deepEqual(imposition.rows[0], { status: 'completed', completed_by: 'print_os' });
    });

    it('a partially printed job keeps print=false and gets a note', async () => {
      await twoImpositionJob();
      await addPrintOs(db.pool, [{ name: 'IMP-A', status: 'PRINTED', marker: 1 }]);
      await processBatch(db.pool, 'print_os', options());
      assert.equal((await jobOperations(db.pool, '4604_5889')).print, false);
      const [update] = await statusUpdates(db.pool, '4604_5889');
      assert.equal(update.status, 'partial');
      assert.match(update.notes ?? '', /partially printed: 2 of 3 files/);
      const op = await jobOperationRow(db.pool, '4604_5889', 'print');
      assert.equal(op.status, null, 'a partly printed job is not completed');
      assert.match(op.notes ?? '', /partially printed/);
    });

    it('a job whose files were all aborted gets print=false and an abort note', async () => {
      await twoImpositionJob();
      await addPrintOs(db.pool, [
        { name: 'IMP-A', status: 'ABORTED', marker: 1 },
        { name: 'IMP-B', status: 'ABORTED', marker: 2 },
      ]);
      await processBatch(db.pool, 'print_os', options());
      assert.equal((await jobOperations(db.pool, '4604_5889')).print, false);
      const history = await statusUpdates(db.pool, '4604_5889');
      assert.equal(history[1].status, 'aborted');
      assert.match(history[1].notes ?? '', /all 3 files aborted/);
      assert.equal((await jobOperationRow(db.pool, '4604_5889', 'print')).status, 'aborted');
    });

    it('a file printed once stays printed when a later reprint of its imposition is aborted', async () => {
      await twoImpositionJob();
      await addPrintOs(db.pool, [
        { name: 'IMP-A', status: 'PRINTED', marker: 1 },
        { name: 'IMP-B', status: 'PRINTED', marker: 2 },
        { name: 'IMP-B', status: 'ABORTED', marker: 3 },
      ]);
      await processBatch(db.pool, 'print_os', options());
      assert.equal((await jobOperations(db.pool, '4604_5889')).print, true);
    });

    it('unknown imposition, unparseable file id and unknown job are recorded as skipped and the marker still advances', async () => {
      await addJobs(db.pool, ['1_1']);
      await addImposition(db.pool, 'IMP-BAD', ['not-a-file-id']);
      await addImposition(db.pool, 'IMP-GHOST', [fileId('9_9', 1)]);
      await addImposition(db.pool, 'IMP-OK', [fileId('1_1', 1)]);
      const ids = await addPrintOs(db.pool, [
        { name: 'IMP-NOWHERE', status: 'PRINTED', marker: 10 },
        { name: 'IMP-BAD', status: 'PRINTED', marker: 11 },
        { name: 'IMP-GHOST', status: 'PRINTED', marker: 12 },
        { name: 'IMP-OK', status: 'PRINTED', marker: 13 },
      ]);
      const result = await processBatch(db.pool, 'print_os', options());
      assert.equal(result.skipped, 3);
      assert.equal(result.applied, 1);
      assert.equal(await markerOf(db.pool, 'print_os'), 13);
      const records = await processedRecords(db.pool, 'print_os');
      assert.deepEqual(
        records.map((r) => [r.source_id, r.outcome]),
        ids.map((id, i) => [id, i < 3 ? 'skipped' : 'applied']),
      );
      assert.match(records[0].reason ?? '', /unknown imposition/);
      assert.match(records[1].reason ?? '', /no parseable file id/);
      assert.match(records[2].reason ?? '', /unknown job 9_9/);
      assert.equal((await jobOperations(db.pool, '1_1')).print, true);
    });

    it('a batch never ends between rows that share a marker', async () => {
      await addJobs(db.pool, ['1_1', '2_2']);
      await addImposition(db.pool, 'I1', [fileId('1_1', 1)]);
      await addImposition(db.pool, 'I2', [fileId('2_2', 1)]);
      await addPrintOs(db.pool, [
        { name: 'I1', status: 'PRINTED', marker: 5 },
        { name: 'I2', status: 'PRINTED', marker: 5 },
      ]);
      const result = await processBatch(db.pool, 'print_os', options({ batchSize: 1 }));
      assert.equal(result.processed, 2);
    });
  });

  describe('precedence', () => {
    it('Print OS wins for print over a later scanner claim', async () => {
      await twoImpositionJob();
      await addPrintOs(db.pool, [
        { name: 'IMP-A', status: 'PRINTED', marker: 1, job_complete_time: new Date('2026-01-05T07:00:00Z') },
      ]);
      await processBatch(db.pool, 'print_os', options());
      await addScanRow(db.pool, {
        code: '4604_5889_1',
        operations: ['print'],
        scanned_at: new Date('2026-01-05T07:30:00Z'),
      });
      await processBatch(db.pool, 'scanner', options());
      assert.equal((await jobOperations(db.pool, '4604_5889')).print, false);
      const scannerRow = (await statusUpdates(db.pool, '4604_5889')).find((u) => u.source_type === 'scanner');
      assert.match(scannerRow?.notes ?? '', /not applied: print_os has precedence/);
    });

    it('the scanner sets manual operations on the job and completes their job_operations rows', async () => {
      await twoImpositionJob();
      await addScanRow(db.pool, { code: '4604_5889_1', operations: { coating: true, kiss_cut: true } });
      await processBatch(db.pool, 'scanner', options());
      assert.deepEqual(await jobOperations(db.pool, '4604_5889'), { coating: true, kiss_cut: true });
      assert.equal((await jobOperationRow(db.pool, '4604_5889', 'op003')).completed_by, 'scanner');
    });

    it('between two claims of the same standing the later timestamp wins', async () => {
      await twoImpositionJob();
      await addPrintOs(db.pool, [
        { name: 'IMP-A', status: 'PRINTED', marker: 2, job_complete_time: new Date('2026-01-05T09:00:00Z') },
        { name: 'IMP-B', status: 'PRINTED', marker: 3, job_complete_time: new Date('2026-01-05T10:00:00Z') },
      ]);
      await processBatch(db.pool, 'print_os', options());
      assert.equal((await jobOperations(db.pool, '4604_5889')).print, true);
      // A scanner claim on print exists only where the press has not spoken; between scanners the later scan wins.
      await addJobs(db.pool, ['7_7']);
      await addScanRow(db.pool, {
        code: '7_7_1',
        operations: ['coating'],
        scanned_at: new Date('2026-01-05T11:00:00Z'),
      });
      await addScanRow(db.pool, {
        code: '7_7_1',
        operations: ['coating'],
        scanned_at: new Date('2026-01-05T10:00:00Z'),
      });
      await processBatch(db.pool, 'scanner', options());
      const claim = await db.pool.query(
        `SELECT effective_at FROM jobmanager.job_operation_claims WHERE job_id = '7_7' AND operation_name = 'coating'`,
      );
      assert.equal((claim.rows[0].effective_at as Date).toISOString(), '2026-01-05T11:00:00.000Z');
    });
  });

  describe('scans', () => {
    async function runlistPlant(): Promise<void> {
      await addJobs(db.pool, ['10_1', '10_2', '20_1']);
      await addImposition(db.pool, 'IMP-1', [fileId('10_1', 1), fileId('10_2', 1)]);
      await addImposition(db.pool, 'IMP-2', [fileId('10_2', 2)]);
      await addImposition(db.pool, 'IMP-9', [fileId('20_1', 1)]);
      await addRunlist(db.pool, 'RL-77', ['IMP-1', 'IMP-2']);
    }

    it('a runlist scan updates every job of every imposition in the runlist', async () => {
      await runlistPlant();
      await addScanRow(db.pool, { code: 'RL-77', operations: ['coating'] });
      const result = await processBatch(db.pool, 'scanner', options());
      assert.equal(result.jobs_updated, 2);
      assert.equal((await jobOperations(db.pool, '10_1')).coating, true);
      assert.equal((await jobOperations(db.pool, '10_2')).coating, true);
      assert.equal((await jobOperations(db.pool, '20_1')).coating, undefined);
      const imps = await db.pool.query(
        `SELECT imposition_id FROM logs.imposition_operations WHERE operation_id = 'op003' AND status = 'completed' ORDER BY 1`,
      );
      assert.deepEqual(
        imps.rows.map((r) => r.imposition_id),
        ['IMP-1', 'IMP-2'],
      );
    });

    it('a job scan on a runlist updates the whole runlist; a job without a runlist is updated alone', async () => {
      await runlistPlant();
      await addScanRow(db.pool, { code: '10_1_1', operations: ['kiss_cut'] });
      await addScanRow(db.pool, { code: '20_1_1', operations: ['coating'] });
      await processBatch(db.pool, 'scanner', options());
      assert.equal((await jobOperations(db.pool, '10_2')).kiss_cut, true);
      assert.deepEqual(await jobOperations(db.pool, '20_1'), { coating: true });
      assert.equal((await jobOperations(db.pool, '10_1')).coating, undefined);
    });

    it('an unknown runlist, an unknown job and an unknown operation are skipped with the reason', async () => {
      await runlistPlant();
      await addScanRow(db.pool, { code: 'RL-NONE', operations: ['coating'] });
      await addScanRow(db.pool, { code: '99_9_1', operations: ['coating'] });
      await addScanRow(db.pool, { code: 'RL-77', operations: ['polishing'] });
      const result = await processBatch(db.pool, 'scanner', options());
      assert.equal(result.skipped, 3);
      const reasons = (await processedRecords(db.pool, 'scanner')).map((r) => r.reason);
      assert.match(reasons[0] ?? '', /unknown runlist RL-NONE/);
      assert.match(reasons[1] ?? '', /unknown job 99_9/);
      assert.match(reasons[2] ?? '', /unknown operation polishing/);
      assert.equal(await markerOf(db.pool, 'scanned_codes'), 3);
    });

    it('a scan applied by the live path is not applied again by the scanner poller', async () => {
      await runlistPlant();
      const scanId = await addScanRow(db.pool, { code: '20_1_1', operations: ['coating'] });
      const live = await applyScanRecord(
        db.pool,
        { scan_id: scanId, code_text: '20_1_1', operations: ['coating'], scanned_at: NOW },
        options(),
      );
      assert.equal(live.applied, 1);
      const polled = await processBatch(db.pool, 'scanner', options());
      assert.equal(polled.processed, 0);
      assert.equal(polled.last_marker, scanId, 'the marker passes rows the live path processed');
      assert.equal((await statusUpdates(db.pool, '20_1')).length, 1);
    });
  });

  describe('exactly once', () => {
    it('a row that commits late behind a higher marker is still applied (look-back)', async () => {
      await addJobs(db.pool, ['1_1', '2_2']);
      await addImposition(db.pool, 'I1', [fileId('1_1', 1)]);
      await addImposition(db.pool, 'I2', [fileId('2_2', 1)]);
      const slow = new Client({ connectionString: db.url });
      await slow.connect();
      try {
        await slow.query('BEGIN');
        await addPrintOs(slow, [{ name: 'I1', status: 'PRINTED', marker: 5 }]);
        await addPrintOs(db.pool, [{ name: 'I2', status: 'PRINTED', marker: 6 }]);
        const first = await processBatch(db.pool, 'print_os', options());
        assert.equal(first.processed, 1);
        assert.equal(await markerOf(db.pool, 'print_os'), 6);
        assert.equal((await jobOperations(db.pool, '1_1')).print, undefined);
        await slow.query('COMMIT');
      } finally {
        await slow.end();
      }
      const second = await processBatch(db.pool, 'print_os', options());
      assert.equal(second.processed, 1);
      assert.equal((await jobOperations(db.pool, '1_1')).print, true);
      assert.equal(await markerOf(db.pool, 'print_os'), 6);
    });

    it('replaying the same rows (force, reprocess from a marker) has no second effect', async () => {
      await twoImpositionJob();
      await addPrintOs(db.pool, [
        { name: 'IMP-A', status: 'PRINTED', marker: 1 },
        { name: 'IMP-B', status: 'PRINTED', marker: 2 },
      ]);
      await processBatch(db.pool, 'print_os', options());
      const before = await statusUpdates(db.pool);
      const forced = await catchUp(db.pool, 'print_os', options({ force: true }));
      assert.equal(forced.processed, 0);
      await reprocessFrom(db.pool, 'print_os', 1, NOW);
      assert.equal(await markerOf(db.pool, 'print_os'), 0);
      const again = await catchUp(db.pool, 'print_os', options());
      assert.equal(again.processed, 0);
      assert.equal(await markerOf(db.pool, 'print_os'), 2);
      assert.deepEqual(await statusUpdates(db.pool), before);
    });

    it('reprocessing retries skipped records, which apply once their mapping exists', async () => {
      await addJobs(db.pool, ['1_1']);
      await addPrintOs(db.pool, [{ name: 'LATE', status: 'PRINTED', marker: 1 }]);
      await processBatch(db.pool, 'print_os', options());
      assert.equal((await processedRecords(db.pool, 'print_os'))[0].outcome, 'skipped');
      await addImposition(db.pool, 'LATE', [fileId('1_1', 1)]);
      const { retried_skipped } = await reprocessFrom(db.pool, 'print_os', 1, NOW);
      assert.equal(retried_skipped, 1);
      await catchUp(db.pool, 'print_os', options());
      assert.equal((await jobOperations(db.pool, '1_1')).print, true);
    });

    it('a worker finds the source locked while another holds it, and reads nothing', async () => {
      await addPrintOs(db.pool, [{ name: 'X', status: 'PRINTED', marker: 1 }]);
      const holder = new Client({ connectionString: db.url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, SOURCES.print_os.lockKey]);
        const result = await processBatch(db.pool, 'print_os', options());
        assert.equal(result.locked, false);
        assert.equal(result.processed, 0);
        await holder.query('ROLLBACK');
      } finally {
        await holder.end();
      }
      assert.equal((await processBatch(db.pool, 'print_os', options())).processed, 1);
    });

    it('two pollers on one database apply every row exactly once', async () => {
      const jobs = Array.from({ length: 40 }, (_, i) => `${i + 1}_1`);
      await addJobs(db.pool, jobs);
      for (const [i, job] of jobs.entries())
        await addImposition(db.pool, `I${i}`, [fileId(job, 1), fileId(job, 2)]);
      await addPrintOs(
        db.pool,
        jobs.map((_, i) => ({ name: `I${i}`, status: 'PRINTED' as const, marker: i + 1 })),
      );
      // The second poller: its own pool on the same database, as a second runtime would have.
      const secondPool = createPool(db.url, { max: 2 });
      try {
        const poll = async (pool: typeof db.pool) => {
          let processed = 0;
          for (let i = 0; i < 200; i += 1) {
            const r = await processBatch(pool, 'print_os', options({ batchSize: 3, waitMs: 5000 }));
            processed += r.processed;
            if (r.locked && !r.more) break;
          }
          return processed;
        };
        const [a, b] = await Promise.all([poll(db.pool), poll(secondPool)]);
        assert.equal(a + b, 40);
      } finally {
        await secondPool.end();
      }
      assert.equal((await statusUpdates(db.pool)).length, 40);
      assert.equal(await markerOf(db.pool, 'print_os'), 40);
      for (const job of jobs) assert.equal((await jobOperations(db.pool, job)).print, true);
    });

    it('a batch that fails midway applies nothing and leaves the marker where it was', async () => {
      await twoImpositionJob();
      await addJobs(db.pool, ['5_5']);
      await addImposition(db.pool, 'IMP-5', [fileId('5_5', 1)]);
      await addPrintOs(db.pool, [
        { name: 'IMP-A', status: 'PRINTED', marker: 1 },
        { name: 'IMP-B', status: 'PRINTED', marker: 2 },
        { name: 'IMP-5', status: 'PRINTED', marker: 3 },
      ]);
      // The crash: the status-update insert (a late step of the batch) fails.
      await db.pool.query(`CREATE FUNCTION pg_temp_crash() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'simulated crash'; END $$`);
      await db.pool.query(`CREATE TRIGGER crash BEFORE INSERT ON jobmanager.job_status_updates
        FOR EACH STATEMENT EXECUTE FUNCTION pg_temp_crash()`);
      await assert.rejects(processBatch(db.pool, 'print_os', options()), /simulated crash/);
      assert.equal(await markerOf(db.pool, 'print_os'), 0);
      assert.deepEqual(await processedRecords(db.pool, 'print_os'), []);
      assert.deepEqual(await jobOperations(db.pool, '4604_5889'), {});
      assert.equal(
        (await db.pool.query('SELECT count(*)::int AS n FROM jobmanager.print_file_states')).rows[0].n,
        0,
      );
      assert.equal((await jobOperationRow(db.pool, '5_5', 'print')).status, null);

      await db.pool.query('DROP TRIGGER crash ON jobmanager.job_status_updates');
      const retried = await processBatch(db.pool, 'print_os', options());
      assert.equal(retried.processed, 3);
      assert.equal((await jobOperations(db.pool, '4604_5889')).print, true);
      assert.equal(await markerOf(db.pool, 'print_os'), 3);
    });
  });

  describe('markers', () => {
    it('the gap report lists missing markers and rows not processed yet', async () => {
      await addPrintOs(db.pool, [
        { name: 'X', status: 'PRINTED', marker: 1 },
        { name: 'X', status: 'PRINTED', marker: 2 },
        { name: 'X', status: 'PRINTED', marker: 5 },
        { name: 'X', status: 'PRINTED', marker: 9 },
      ]);
      await processBatch(db.pool, 'print_os', options({ batchSize: 2 }));
      const report = await gapReport(db.pool, 'print_os', 1000);
      assert.deepEqual(report.gaps, [
        { from: 3, to: 4 },
        { from: 6, to: 8 },
      ]);
      assert.equal(report.last_marker, 2);
      assert.equal(report.lag, 7);
      assert.equal(report.unprocessed, 2);
    });
  });

  describe('scan ingest', () => {
    it('a repeated msg_id from the same machine is stored once; another machine may reuse it', async () => {
      const scan = { code_text: 'RL-1', operations: ['coating'], msg_id: 'm-1' };
      const first = await insertScan(db.pool, 'scanner-1', scan, { now: NOW, windowMs: 2000 });
      const again = await insertScan(db.pool, 'scanner-1', scan, {
        now: new Date(NOW.getTime() + 60000),
        windowMs: 2000,
      });
      const other = await insertScan(db.pool, 'scanner-2', scan, { now: NOW, windowMs: 2000 });
      assert.equal(first.stored, true);
      assert.deepEqual(again, { stored: false, duplicate: 'msg_id' });
      assert.equal(other.stored, true);
    });

    it('without msg_id the same code from the same machine within the window is stored once', async () => {
      const scan = { code_text: 'RL-1', operations: ['coating'] };
      const at = (ms: number) => ({ now: new Date(NOW.getTime() + ms), windowMs: 2000 });
      const results = await Promise.all([
        insertScan(db.pool, 'scanner-1', scan, at(0)),
        insertScan(db.pool, 'scanner-1', scan, at(0)),
      ]);
      assert.deepEqual(results.map((r) => r.stored).sort(), [false, true]);
      assert.equal((await insertScan(db.pool, 'scanner-1', scan, at(1500))).stored, false);
      assert.equal(
        (await insertScan(db.pool, 'scanner-1', { ...scan, code_text: 'RL-2' }, at(1500))).stored,
        true,
      );
      assert.equal((await insertScan(db.pool, 'scanner-2', scan, at(1500))).stored, true);
      assert.equal(
        (await insertScan(db.pool, 'scanner-1', scan, at(2500))).stored,
        true,
        'after the window it is a new scan',
      );
    });

    it('a rejected scan is kept with its reason', async () => {
      await rejectScan(db.pool, 'scanner-1', '{bad', 'not JSON', NOW);
      const rows = await db.pool.query('SELECT machine_id, payload, reason FROM jobmanager.rejected_scans');
      assert.deepEqual(rows.rows, [{ machine_id: 'scanner-1', payload: '{bad', reason: 'not JSON' }]);
    });
  });

  it('job status returns the operations and the update history, and nothing for an unknown job', async () => {
    await twoImpositionJob();
    await addPrintOs(db.pool, [{ name: 'IMP-A', status: 'PRINTED', marker: 1 }]);
    await processBatch(db.pool, 'print_os', options());
    const status = await jobStatus(db.pool, '4604_5889');
    assert.equal(status?.current_status.print, false);
    assert.equal(status?.update_history[0].operation_type, 'print');
    assert.equal(status?.update_history[0].source_type, 'print_os');
    assert.equal(await jobStatus(db.pool, 'nope'), undefined);
  });
});
