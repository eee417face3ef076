// A batch of plain scans (job codes of known, planned jobs off any runlist, naming the scanner's own
// operations) is applied by a short path of jobmanager.ff_apply_scan_records (migration 130), any
// other batch by the general path (ff_scan_apply_general). This property drives the same random
// plants and batches, most of them plain, some not, through both: one database applies every batch
// by the general path alone, the other as shipped. Every table the appliers write, and every
// result, must be the same.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Pool } from 'pg';
import { createPool } from '../../store/db';
import { applyScanRecords, type ScanRecordInput } from '../../store/job-status-scans';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { addImposition, addJobs, addRunlist, fileId } from '../support/job-status-fixtures';

const at = (h: number, m = 0) => new Date(Date.UTC(2026, 0, 5, h, m));
const RUNS = 40;

/** ff_apply_scan_records taking the general path for every batch (the one before migration 130). */
const GENERAL_ONLY = `
CREATE OR REPLACE FUNCTION jobmanager.ff_apply_scan_records(
    p_ids bigint[], p_effective timestamptz[], p_kinds text[], p_runlists text[], p_jobs text[], p_tags text[],
    p_ops text[], p_invalid text[], p_now timestamptz, p_flow_version text, p_check_files boolean)
RETURNS TABLE (r_source_id bigint, r_outcome text, r_reason text, r_jobs int, r_touched int)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT * FROM jobmanager.ff_scan_apply_general(p_ids, p_effective, p_kinds, p_runlists, p_jobs,
        p_tags, p_ops, p_invalid, p_now, p_flow_version, p_check_files);
END $$`;

/** Every table a scan batch writes, in a form that two databases built alike can be compared by. */
const TABLES: Array<[string, string]> = [
  [
    'job_status_updates',
    `SELECT job_id, operation_type, status, source_type, source_id, notes, flow_version, created_at, updated_at
     FROM jobmanager.job_status_updates ORDER BY update_id`,
  ],
  [
    'processed_source_records',
    'SELECT * FROM jobmanager.processed_source_records ORDER BY source_type, source_id',
  ],
  [
    'job_operations',
    `SELECT job_operation_id, status, completed_at, completed_by, source_id, notes, flow_version,
            CASE WHEN completed_at IS NOT NULL THEN updated_at END AS updated_at
     FROM logs.job_operations ORDER BY job_operation_id`,
  ],
  [
    'imposition_operations',
    `SELECT imposition_operation_id, status, completed_at, completed_by, source_id, notes, flow_version,
            CASE WHEN completed_at IS NOT NULL THEN updated_at END AS updated_at
     FROM logs.imposition_operations ORDER BY imposition_operation_id`,
  ],
  [
    'job_operation_claims',
    `SELECT job_id, operation_name, value, source_type, source_id, effective_at, updated_at
     FROM jobmanager.job_operation_claims ORDER BY job_id, operation_name`,
  ],
  [
    'jobs',
    `SELECT job_id, operations, CASE WHEN operations <> '{}' THEN updated_at END AS updated_at
     FROM jobmanager.jobs ORDER BY job_id`,
  ],
];

describe('scan batches: the short path for plain batches writes what the general path writes (property)', function () {
  this.timeout(300000);
  let general: TestDatabase;
  let shipped: TestDatabase;
  let shippedPool: Pool;

  before(async () => {
    general = await createTestDatabase({ poolSize: 1 });
    shipped = await createTestDatabase({ poolSize: 1 });
    await general.pool.query(GENERAL_ONLY);
    // Function calls counted, to show that both paths were taken.
    await shipped.pool.query(`ALTER DATABASE ${shipped.name} SET track_functions = 'pl'`);
    shippedPool = createPool(shipped.url, { max: 1 });
  });
  after(async () => {
    await shippedPool?.end();
    await general?.drop();
    await shipped?.drop();
  });

  async function clear(pool: Pool): Promise<void> {
    await pool.query(`TRUNCATE jobmanager.job_operation_claims, jobmanager.job_status_updates,
      jobmanager.processed_source_records, jobmanager.job_files, logs.imposition_file_mapping,
      logs.imposition_operations, logs.production_planner_paths, logs.job_operations, jobmanager.jobs CASCADE`);
  }

  const jobIds = ['10_1', '10_2', '20_1', '30_1', '40_1'];
  const ownOps = ['coating', 'kiss_cut'];
  const scanArb = (plain: boolean) =>
    plain
      ? fc.record({
          // A job code, or a file id of the job (no version tag: the job's own is matched).
          code: fc.oneof(
            { weight: 3, arbitrary: fc.constantFrom(...jobIds).map((j) => `${j}_1`) },
            { weight: 1, arbitrary: fc.constantFrom(...jobIds).map((j) => fileId(j, 3)) },
          ),
          operations: fc.subarray(ownOps, { minLength: 1 }),
          m: fc.integer({ min: 0, max: 5 }),
        })
      : fc.record({
          code: fc.oneof(
            { weight: 6, arbitrary: fc.constantFrom(...jobIds).map((j) => `${j}_1`) },
            { weight: 1, arbitrary: fc.constantFrom(...jobIds).map((j) => `${j}_2`) },
            { weight: 1, arbitrary: fc.constantFrom('RL-0', 'RL-9', '??', '99_9_1') },
          ),
          operations: fc.oneof(
            { weight: 4, arbitrary: fc.subarray(ownOps, { minLength: 1 }) },
            { weight: 1, arbitrary: fc.subarray(['coating', 'print', 'backscore', 'no_such_op']) },
          ),
          m: fc.integer({ min: 0, max: 5 }),
        });
  const plantArb = fc.record({
    known: fc.subarray(jobIds, { minLength: 1 }),
    // (job, operation id) planned rows removed.
    unplanned: fc.subarray(
      jobIds.flatMap((j) => ['op003', 'op006'].map((op) => `${j}/${op}`)),
      { maxLength: 3 },
    ),
    // Jobs with files in an imposition of runlist RL-0, and jobs with files off any runlist.
    onRunlist: fc.subarray(jobIds, { maxLength: 2 }),
    // Jobs without a version tag, and jobs whose planned rows have none.
    untagged: fc.subarray(jobIds, { maxLength: 2 }),
    untaggedPlans: fc.subarray(jobIds, { maxLength: 2 }),
    withFiles: fc.subarray(jobIds),
    stored: fc.array(
      fc.record({
        job: fc.constantFrom(...jobIds),
        op: fc.constantFrom(...ownOps),
        source: fc.constantFrom('print_os', 'scanner', 'api'),
        m: fc.integer({ min: 0, max: 5 }),
      }),
      { maxLength: 4 },
    ),
    batches: fc.array(
      fc.record({
        plain: fc.boolean(),
        size: fc.integer({ min: 1, max: 12 }),
        seed: fc.array(scanArb(true), { minLength: 12, maxLength: 12 }),
        mixed: fc.array(scanArb(false), { minLength: 12, maxLength: 12 }),
        // Scans of the batch before sent again (as a replay or a second poller would).
        again: fc.integer({ min: 0, max: 3 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  });

  type Plant = typeof plantArb extends fc.Arbitrary<infer T> ? T : never;

  async function build(pool: Pool, p: Plant): Promise<void> {
    await clear(pool);
    await addJobs(pool, p.known);
    for (const key of p.unplanned) {
      const [job, op] = key.split('/');
      await pool.query('DELETE FROM logs.job_operations WHERE job_id = $1 AND operation_id = $2', [job, op]);
    }
    await pool.query('UPDATE jobmanager.jobs SET version_tag = NULL WHERE job_id = ANY ($1)', [p.untagged]);
    await pool.query('UPDATE logs.job_operations SET version_tag = NULL WHERE job_id = ANY ($1)', [
      p.untaggedPlans,
    ]);
    if (p.withFiles.length > 0)
      await addImposition(
        pool,
        'IMP-OFF',
        p.withFiles.map((j) => fileId(j, 1)),
      );
    if (p.onRunlist.length > 0) {
      await addImposition(
        pool,
        'IMP-RL',
        p.onRunlist.map((j) => fileId(j, 2)),
      );
      await addRunlist(pool, 'RL-0', ['IMP-RL']);
    }
    const seen = new Set<string>();
    for (const c of p.stored) {
      if (!p.known.includes(c.job) || seen.has(`${c.job}/${c.op}`)) continue;
      seen.add(`${c.job}/${c.op}`);
      await pool.query(
        `INSERT INTO jobmanager.job_operation_claims
           (job_id, operation_name, value, source_type, source_id, effective_at, updated_at)
         VALUES ($1, $2, true, $3, 500, $4, $4)`,
        [c.job, c.op, c.source, at(6, c.m)],
      );
    }
  }

  async function dump(pool: Pool): Promise<Record<string, unknown[]>> {
    const out: Record<string, unknown[]> = {};
    for (const [name, sql] of TABLES) out[name] = (await pool.query(sql)).rows;
    return out;
  }

  it('random plants and batches: every table and result alike on both paths', async () => {
    let plainBatches = 0;
    await fc.assert(
      fc.asyncProperty(plantArb, async (p) => {
        await build(general.pool, p);
        await build(shippedPool, p);
        let nextId = 1;
        let previous: ScanRecordInput[] = [];
        for (const [i, b] of p.batches.entries()) {
          const scans: ScanRecordInput[] = (b.plain ? b.seed : b.mixed).slice(0, b.size).map((s) => ({
            scan_id: nextId++,
            code_text: s.code,
            operations: s.operations,
            scanned_at: at(6, s.m),
          }));
          scans.push(...previous.slice(0, b.again));
          previous = scans;
          if (b.plain && b.again === 0) plainBatches += 1;
          const ctx = { now: at(8, i), flowVersion: 'test' };
          const expected = await applyScanRecords(general.pool, scans, ctx);
          const got = await applyScanRecords(shippedPool, scans, ctx);
          assert.deepEqual(got, expected, `results of batch ${i}`);
        }
        assert.deepEqual(await dump(shippedPool), await dump(general.pool));
      }),
      { numRuns: RUNS },
    );
    assert.ok(plainBatches > 0);
    // Both paths were taken by the shipped function.
    await shippedPool.query('SELECT pg_stat_force_next_flush()');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const calls = await shipped.pool.query<{ funcname: string; calls: string }>(
      `SELECT funcname, calls FROM pg_stat_user_functions
       WHERE funcname IN ('ff_apply_scan_records', 'ff_scan_apply_general')`,
    );
    const count = Object.fromEntries(calls.rows.map((r) => [r.funcname, Number(r.calls)]));
    assert.ok(count.ff_scan_apply_general > 0, 'the general path was taken');
    assert.ok(count.ff_apply_scan_records > count.ff_scan_apply_general, 'the short path was taken');
  });
  it('plain scans applied at once from two connections take effect once each', async () => {
    await clear(shippedPool);
    const jobs = Array.from({ length: 12 }, (_, i) => `${50 + i}_1`);
    await addJobs(shippedPool, jobs);
    // A second runtime: its own pool on the same database.
    const secondPool = createPool(shipped.url, { max: 1 });
    let applied = 0;
    try {
      for (let round = 0; round < 10; round += 1) {
        const scans: ScanRecordInput[] = Array.from({ length: 20 }, (_, k) => ({
          scan_id: round * 20 + k + 1,
          code_text: `${jobs[(round + k) % jobs.length]}_1`,
          operations: ['coating'],
          scanned_at: at(6, k),
        }));
        const ctx = { now: at(8, round), flowVersion: 'test' };
        const [a, b] = await Promise.all([
          applyScanRecords(shippedPool, scans, ctx),
          applyScanRecords(secondPool, [...scans].reverse(), ctx),
        ]);
        for (const scan of scans) {
          const outcomes = [a, b].map((r) => r.records.find((x) => x.source_id === scan.scan_id)?.outcome);
          assert.deepEqual(
            outcomes.filter((o) => o === 'applied').length,
            1,
            `scan ${scan.scan_id}: ${outcomes.join()}`,
          );
          assert.ok(outcomes.includes('seen'), `scan ${scan.scan_id}: ${outcomes.join()}`);
        }
        applied += a.applied + b.applied;
      }
    } finally {
      await secondPool.end();
    }
    assert.equal(applied, 200);
    const counts = await shippedPool.query<{ ledger: number; rows: number; distinct: number }>(
      `SELECT (SELECT count(*)::int FROM jobmanager.processed_source_records) AS ledger,
              (SELECT count(*)::int FROM jobmanager.job_status_updates) AS rows,
              (SELECT count(DISTINCT source_id)::int FROM jobmanager.job_status_updates) AS distinct`,
    );
    assert.deepEqual(counts.rows[0], { ledger: 200, rows: 200, distinct: 200 });
  });
});
