// The job mapper in the shipped job-status flow: records that arrive while a batch is in flight
// are applied together, each message is done once its batch has committed, and a record that
// fails on its own does not keep the others of its batch from being applied.
import assert from 'node:assert/strict';
import type { NodeMessage } from 'node-red';
import { parseScan } from '../../core/scan-code';
import { FlowKit, startFlowKit } from '../support/flow-kit';
import { statusesOf } from '../support/node-status';
import {
  addImposition,
  addJobs,
  addScanRow,
  fileId,
  jobOperations,
  processedRecords,
} from '../support/job-status-fixtures';

const FLOW = 'flows/job-status.json';

describe('job mapper batches (job-status flow)', () => {
  let kit: FlowKit;
  const completed: Array<NodeMessage & { scan_id?: number }> = [];

  beforeEach(async () => {
    completed.length = 0;
    kit = await startFlowKit({
      flows: [FLOW],
      extraNodes: [
        // A Complete node scoped to the job mapper: it fires when the mapper calls done() for a message.
        {
          id: 'test-mapper-done',
          type: 'complete',
          z: 'job-status-tab',
          scope: ['job-status-job-mapper'],
          uncaught: false,
          wires: [['test-done']],
        },
        { id: 'test-done', type: 'helper', z: 'job-status-tab' },
        // A second job mapper with a batch spacing, fed directly by the tests that use it.
        {
          id: 'test-spaced-mapper',
          type: 'floorflow-job-mapper',
          z: 'job-status-tab',
          name: '',
          db: '',
          filePattern: '',
          batchSpacingMs: 1000,
          schemaVersion: 1,
          wires: [['test-spaced-out']],
        },
        { id: 'test-spaced-out', type: 'helper', z: 'job-status-tab' },
      ],
    });
    kit.node('test-done').on('input', (msg: NodeMessage & { scan_id?: number }) => completed.push(msg));
    await addJobs(kit.pool, ['1_1', '2_2', '3_3', '4_4', '7_7']);
    for (const job of ['1_1', '2_2', '3_3', '4_4', '7_7'])
      await addImposition(kit.pool, `IMP-${job}`, [fileId(job, 1)]);
  });
  afterEach(async () => {
    await kit.stop();
  });

  /** Stores scans and hands them to the scan parser all at once, as scan ingest does in a burst. */
  async function burst(codes: string[]): Promise<number[]> {
    const ids: number[] = [];
    for (const code of codes) ids.push(await addScanRow(kit.pool, { code, operations: ['coating'] }));
    codes.forEach((code, i) =>
      kit.receive('job-status-scan-parser', { payload: { code, operations: ['coating'] }, scan_id: ids[i] }),
    );
    return ids;
  }

  it('each message of a burst is done once, after the batch holding it committed', async () => {
    const codes = ['1_1_1', '2_2_1', '3_3_1', '4_4_1', '7_7_1'];
    const ids = await burst(codes);
    await kit.waitFor(() => completed.length === codes.length, 'every message done');
    assert.deepEqual(completed.map((m) => m.scan_id).sort(), [...ids].sort());
    for (const msg of completed) {
      // When done() was called, the message's effects and ledger row had been committed.
      const row = await kit.pool.query(
        `SELECT outcome FROM jobmanager.processed_source_records WHERE source_type = 'scanner' AND source_id = $1`,
        [msg.scan_id],
      );
      assert.equal(row.rows[0]?.outcome, 'applied');
      assert.equal((msg.payload as { applied: number }).applied, 1);
    }
    for (const job of ['1_1', '2_2', '3_3', '4_4', '7_7'])
      assert.equal((await jobOperations(kit.pool, job)).coating, true);
  });

  it('with a batch spacing, the scans that follow a batch within it are applied together, the first at once', async () => {
    const out: NodeMessage[] = [];
    kit.node('test-spaced-out').on('input', (msg: NodeMessage) => out.push(msg));
    const send = async (code: string) => {
      const scanId = await addScanRow(kit.pool, { code, operations: ['coating'] });
      return () =>
        kit.receive('test-spaced-mapper', {
          payload: parseScan({ code, operations: ['coating'] }),
          scan_id: scanId,
        });
    };
    const first = await send('1_1_1');
    const rest = await Promise.all(['2_2_1', '3_3_1', '4_4_1'].map(send));
    first();
    await kit.waitFor(() => out.length === 1, 'the first scan applied');
    // Within the spacing of the first batch: without it, the first of these would go alone.
    for (const next of rest) next();
    await kit.waitFor(() => out.length === 4, 'the other three applied');
    const texts = statusesOf(kit.node('test-spaced-mapper')).map((s) => s.text);
    assert.deepEqual(
      texts.filter((t) => t?.startsWith('applying')),
      ['applying 1', 'applying 3'],
    );
    for (const job of ['1_1', '2_2', '3_3', '4_4'])
      assert.equal((await jobOperations(kit.pool, job)).coating, true);
  });

  it('a record that fails applies the others of its batch, is recorded as failed with the reason, and reaches Catch', async () => {
    // Job 7_7's status rows are refused by the database: its scan fails, the others must not.
    await kit.pool.query(`CREATE FUNCTION public.refuse_7_7() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.job_id = '7_7' THEN RAISE EXCEPTION 'job 7_7 is under audit'; END IF;
        RETURN NEW;
      END $$`);
    await kit.pool.query(`CREATE TRIGGER refuse_7_7 BEFORE INSERT ON jobmanager.job_status_updates
      FOR EACH ROW EXECUTE FUNCTION public.refuse_7_7()`);
    // The first scan's batch waits on job 1_1, held here, so the other four queue behind it and
    // form one batch together.
    const holder = await kit.pool.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM jobmanager.jobs WHERE job_id = '1_1' FOR UPDATE`);
    const caught = kit.nextMessage('job-status-errors', 20000);
    const ids = await burst(['1_1_1', '2_2_1', '7_7_1', '3_3_1', '4_4_1']);
    const failing = ids[2];
    await kit.waitFor(
      () => statusesOf(kit.node('job-status-scan-parser')).some((s) => s.text === '5 parsed, 0 rejected'),
      'the five scans parsed and sent on',
    );
    await holder.query('ROLLBACK');
    holder.release();

    const error = (await caught) as NodeMessage & { scan_id?: number; error: { message: string } };
    assert.equal(error.scan_id, failing);
    assert.match(error.error.message, /job 7_7 is under audit/);
    await kit.waitFor(() => completed.length === 4, 'the four other messages done');
    const records = await processedRecords(kit.pool, 'scanner');
    assert.deepEqual(
      records.map((r) => [r.source_id, r.outcome]),
      ids.map((id) => [id, id === failing ? 'failed' : 'applied']),
    );
    assert.match(records[2].reason ?? '', /job 7_7 is under audit/);
    for (const job of ['1_1', '2_2', '3_3', '4_4'])
      assert.equal((await jobOperations(kit.pool, job)).coating, true);
    assert.equal((await jobOperations(kit.pool, '7_7')).coating, undefined);
    assert.ok(
      statusesOf(kit.node('job-status-job-mapper')).some((s) => s.text === 'applying 4'),
      'the four scans that arrived while the first was applied formed one batch',
    );
  });
});
