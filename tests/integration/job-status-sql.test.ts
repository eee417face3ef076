// The job-status verdicts are computed inside PostgreSQL (store/job-status-*.ts). These property
// tests hold the SQL to the rules as pure functions: core/claims resolveClaims for precedence,
// core/job-status evaluatePrintRecords for print-OS records, planScan for scans, on random plants.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { resolveClaims, type ClaimSource, type OperationClaim } from '../../core/claims';
import {
  evaluatePrintRecords,
  jobIdOfFile,
  planScan,
  scanTarget,
  type FileState,
  type MappedFile,
  type PrintRecord,
} from '../../core/job-status';
import { normaliseOperations } from '../../core/scan-code';
import { judgeClaims, type ClaimToJudge } from '../../store/job-status-apply';
import { processBatch } from '../../store/job-status';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { addImposition, addJobs, addPrintOs, addRunlist } from '../support/job-status-fixtures';

const NOW = new Date('2026-01-05T08:00:00Z');
const at = (h: number) => new Date(Date.UTC(2026, 0, 5, h));
const RUNS = 30;

type StatusRow = { job_id: string; operation: string; source_id: number; status: string; notes: string };

describe('job-status SQL agrees with the rules in core (property tests against PostgreSQL)', function () {
  this.timeout(300000);
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  /** An empty plant: every table a case writes, emptied. */
  async function clear(): Promise<void> {
    await db.pool
      .query(`TRUNCATE jobmanager.job_operation_claims, jobmanager.job_status_updates, jobmanager.print_file_states,
      jobmanager.processed_source_records, jobmanager.processing_markers, jobmanager."print OS", jobmanager.scanned_codes,
      jobmanager.job_files, logs.imposition_file_mapping, logs.imposition_operations, logs.production_planner_paths,
      logs.job_operations, jobmanager.jobs CASCADE`);
  }

  async function storeClaims(claims: Array<{ job_id: string; operation: string; claim: OperationClaim }>) {
    for (const { job_id, operation, claim } of claims) {
      await db.pool.query(
        `INSERT INTO jobmanager.job_operation_claims (job_id, operation_name, value, source_type, source_id, effective_at)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [job_id, operation, claim.value, claim.source_type, claim.source_id, claim.effective_at],
      );
    }
  }

  async function statusRows(): Promise<StatusRow[]> {
    const rows = await db.pool.query<StatusRow & { source_id: string }>(
      `SELECT job_id, operation_type AS operation, source_id, status, notes FROM jobmanager.job_status_updates
       ORDER BY source_id, job_id, operation_type`,
    );
    return rows.rows.map((r) => ({ ...r, source_id: Number(r.source_id) }));
  }

  async function ledger(source: string): Promise<Array<[number, string, string | null]>> {
    const rows = await db.pool.query<{ source_id: string; outcome: string; reason: string | null }>(
      `SELECT source_id, outcome, reason FROM jobmanager.processed_source_records WHERE source_type = $1 ORDER BY source_id`,
      [source],
    );
    return rows.rows.map((r) => [Number(r.source_id), r.outcome, r.reason]);
  }

  async function flags(): Promise<Record<string, Record<string, boolean>>> {
    const rows = await db.pool.query<{ job_id: string; operations: Record<string, boolean> }>(
      'SELECT job_id, operations FROM jobmanager.jobs ORDER BY job_id',
    );
    return Object.fromEntries(rows.rows.map((r) => [r.job_id, r.operations]));
  }

  const sources: ClaimSource[] = ['print_os', 'scanner', 'api'];
  const claimArb = fc.record({ source: fc.constantFrom(...sources), h: fc.integer({ min: 0, max: 6 }) });

  /**
   * Random stored claims and batches of claims on four (job, operation) pairs, each judged by the
   * SQL and by resolveClaims. `authoritativeOnly`: every claim of the batch comes from the source
   * that has precedence for its operation (print OS for print, the scanner for the rest), as in
   * every "print OS" batch and most scan batches, which the SQL judges by a shorter path.
   */
  async function claimsJudgedAsResolveClaims(authoritativeOnly: boolean): Promise<void> {
    await clear();
    await addJobs(db.pool, ['J1', 'J2']);
    const pairs: Array<[string, string]> = [
      ['J1', 'print'],
      ['J1', 'coating'],
      ['J2', 'print'],
      ['J2', 'kiss_cut'],
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(claimArb, { nil: undefined }), { minLength: 4, maxLength: 4 }),
        fc.array(fc.record({ pair: fc.integer({ min: 0, max: 3 }), claim: claimArb }), { maxLength: 24 }),
        async (starts, incoming) => {
          await db.pool.query('DELETE FROM jobmanager.job_operation_claims');
          const startClaims = starts.flatMap((s, i) =>
            s
              ? [
                  {
                    job_id: pairs[i][0],
                    operation: pairs[i][1],
                    claim: { value: true, source_type: s.source, source_id: 1000 + i, effective_at: at(s.h) },
                  },
                ]
              : [],
          );
          await storeClaims(startClaims);
          const toJudge: ClaimToJudge[] = incoming.map((c, pos) => ({
            pos,
            job_id: pairs[c.pair][0],
            operation: pairs[c.pair][1],
            value: pos % 2 === 0,
            source_type: authoritativeOnly
              ? pairs[c.pair][1] === 'print'
                ? 'print_os'
                : 'scanner'
              : c.claim.source,
            // Record ids that do not follow the batch order, so a claim judged against the wrong one shows.
            source_id: authoritativeOnly ? 1000 - pos : pos,
            effective_at: at(c.claim.h),
          }));
          const judged = await judgeClaims(db.pool, toJudge);
          pairs.forEach(([job, op], i) => {
            const mine = toJudge.filter((c) => c.job_id === job && c.operation === op);
            const start = startClaims.find((s) => s.job_id === job && s.operation === op)?.claim;
            const expected = resolveClaims(
              op,
              start,
              mine.map((c) => ({
                value: c.value,
                source_type: c.source_type as ClaimSource,
                source_id: c.source_id,
                effective_at: c.effective_at,
              })),
            );
            const got = judged.filter((c) => c.job_id === job && c.operation === op);
            assert.deepEqual(
              got.map((g) => [g.applies, g.against_type, g.against_id]),
              expected.steps.map((s) => [
                s.applies,
                s.against?.source_type ?? null,
                s.against?.source_id ?? null,
              ]),
              `pair ${i} (${job} ${op})`,
            );
          });
        },
      ),
      { numRuns: 60 },
    );
  }

  it('claims: the SQL judges every claim of a batch as resolveClaims does, one at a time (property)', async () => {
    await claimsJudgedAsResolveClaims(false);
  });

  it('claims: a batch of authoritative claims only is judged as resolveClaims does, one at a time (property)', async () => {
    await claimsJudgedAsResolveClaims(true);
  });

  it('"print OS" batches: outcomes, status rows and print flags are those of evaluatePrintRecords and the claim rules (property)', async () => {
    const jobIds = ['1_1', '2_2', '3_3', '4_4'];
    const plant = fc.record({
      known: fc.subarray(jobIds, { minLength: 1 }),
      impositions: fc.array(
        fc.array(
          fc.oneof(
            fc.record({ job: fc.constantFrom(...jobIds), n: fc.integer({ min: 1, max: 3 }) }),
            fc.constant(null),
          ),
          { maxLength: 4 },
        ),
        { minLength: 1, maxLength: 4 },
      ),
      records: fc.array(
        fc.record({
          imposition: fc.integer({ min: 0, max: 4 }),
          printed: fc.boolean(),
          h: fc.integer({ min: 0, max: 4 }),
          sameMarker: fc.boolean(),
        }),
        { minLength: 1, maxLength: 10 },
      ),
      batchSize: fc.integer({ min: 1, max: 12 }),
    });
    await fc.assert(
      fc.asyncProperty(plant, async (p) => {
        await clear();
        await addJobs(db.pool, p.known);
        const impositionFiles = new Map<string, MappedFile[]>();
        for (const [i, files] of p.impositions.entries()) {
          const ids = [
            ...new Set(files.map((f, k) => (f ? `FILE_1_Labex_${f.job}_${f.n}` : `bad-${i}-${k}`))),
          ];
          if (ids.length === 0) continue;
          await addImposition(db.pool, `IMP-${i}`, ids);
          impositionFiles.set(
            `IMP-${i}`,
            [...ids].sort().map((fileId) => {
              const parsed = jobIdOfFile(fileId);
              return parsed.ok
                ? { file_id: fileId, job_id: parsed.job_id }
                : { file_id: fileId, reason: parsed.reason };
            }),
          );
        }
        let marker = 0;
        const rows = p.records.map((r, i) => {
          if (i === 0 || !r.sameMarker) marker += 1;
          return {
            name: `IMP-${r.imposition}`,
            status: (r.printed ? 'PRINTED' : 'ABORTED') as 'PRINTED' | 'ABORTED',
            marker,
            job_complete_time: at(r.h),
          };
        });
        const ids = await addPrintOs(db.pool, rows);
        for (;;) {
          const batch = await processBatch(db.pool, 'print_os', {
            batchSize: p.batchSize,
            lookBack: 0,
            now: NOW,
          });
          if (!batch.more) break;
        }

        // The reference: records in marker order, one batch, against the rules in core.
        const jobFiles = new Map<string, string[]>();
        for (const files of impositionFiles.values())
          for (const f of files)
            if ('job_id' in f)
              jobFiles.set(f.job_id, [...new Set([...(jobFiles.get(f.job_id) ?? []), f.file_id])]);
        const records: PrintRecord[] = rows.map((r, i) => ({
          source_id: ids[i],
          marker: r.marker,
          imposition_id: r.name,
          status: r.status,
        }));
        const evaluation = evaluatePrintRecords(records, {
          impositionFiles,
          jobFiles,
          fileStates: new Map<string, FileState>(),
          knownJobs: new Set(p.known),
        });
        const expectedLedger: Array<[number, string, string | null]> = [];
        const expectedRows: StatusRow[] = [];
        const standing = new Map<string, OperationClaim>();
        for (const outcome of evaluation.outcomes) {
          if (outcome.kind === 'skipped') {
            expectedLedger.push([outcome.source_id, 'skipped', outcome.reason]);
            continue;
          }
          expectedLedger.push([outcome.source_id, 'applied', null]);
          const extra = outcome.notes.length > 0 ? `; ${outcome.notes.join('; ')}` : '';
          const effective = rows[ids.indexOf(outcome.source_id)].job_complete_time;
          for (const job of outcome.jobs) {
            let notes = job.note + extra;
            if (job.print !== undefined) {
              const incoming: OperationClaim = {
                value: job.print,
                source_type: 'print_os',
                source_id: outcome.source_id,
                effective_at: effective,
              };
              const step = resolveClaims('print', standing.get(job.job_id), [incoming]);
              if (step.steps[0].applies) standing.set(job.job_id, incoming);
              else
                notes += `; not applied: ${step.steps[0].against?.source_type} record ${step.steps[0].against?.source_id} is newer`;
            }
            expectedRows.push({
              job_id: job.job_id,
              operation: 'print',
              source_id: outcome.source_id,
              status: job.status,
              notes,
            });
          }
        }
        expectedLedger.sort((a, b) => a[0] - b[0]);
        expectedRows.sort((a, b) => a.source_id - b.source_id || (a.job_id < b.job_id ? -1 : 1));
        assert.deepEqual(await ledger('print_os'), expectedLedger);
        assert.deepEqual(await statusRows(), expectedRows);
        const expectedFlags = Object.fromEntries(
          [...p.known].sort().map((j) => [j, standing.has(j) ? { print: standing.get(j)!.value } : {}]),
        );
        assert.deepEqual(await flags(), expectedFlags);
      }),
      { numRuns: RUNS },
    );
  });

  it('scan batches: outcomes, status rows and flags are those of planScan and the claim rules (property)', async () => {
    const jobIds = ['10_1', '10_2', '20_1', '30_1'];
    const ops = ['coating', 'kiss_cut', 'print', 'polishing'];
    const plant = fc.record({
      known: fc.subarray(jobIds, { minLength: 1 }),
      impositions: fc.array(fc.subarray(jobIds), { minLength: 1, maxLength: 3 }),
      runlists: fc.array(fc.subarray([0, 1, 2]), { minLength: 1, maxLength: 2 }),
      printClaims: fc.subarray(jobIds),
      scans: fc.array(
        fc.record({
          code: fc.oneof(
            fc.constantFrom('RL-0', 'RL-1', 'RL-9'),
            fc.constantFrom(...jobIds).map((j) => `${j}_1`),
            fc.constant('??'),
          ),
          operations: fc.subarray(ops),
          h: fc.integer({ min: 0, max: 4 }),
        }),
        { minLength: 1, maxLength: 10 },
      ),
    });
    await fc.assert(
      fc.asyncProperty(plant, async (p) => {
        await clear();
        await addJobs(db.pool, p.known);
        for (const [i, jobs] of p.impositions.entries())
          if (jobs.length > 0)
            await addImposition(
              db.pool,
              `IMP-${i}`,
              jobs.map((j) => `FILE_1_Labex_${j}_${i}`),
            );
        const runlistImpositions = new Map<string, string[]>();
        for (const [r, imps] of p.runlists.entries()) {
          const present = imps
            .filter((i) => i < p.impositions.length && p.impositions[i].length > 0)
            .map((i) => `IMP-${i}`);
          if (present.length === 0) continue;
          await addRunlist(db.pool, `RL-${r}`, present);
          runlistImpositions.set(`RL-${r}`, present.sort());
        }
        const startClaims = p.printClaims
          .filter((j) => p.known.includes(j))
          .map((job_id) => ({
            job_id,
            operation: 'print',
            claim: { value: true, source_type: 'print_os' as const, source_id: 1, effective_at: at(2) },
          }));
        await storeClaims(startClaims);
        const scanIds: number[] = [];
        for (const s of p.scans) {
          const row = await db.pool.query<{ scan_id: string }>(
            `INSERT INTO jobmanager.scanned_codes (code_text, operations, machine_id, scanned_at) VALUES ($1, $2, 's1', $3) RETURNING scan_id`,
            [s.code, JSON.stringify(s.operations), at(s.h)],
          );
          scanIds.push(Number(row.rows[0].scan_id));
        }
        await processBatch(db.pool, 'scanner', { batchSize: 100, lookBack: 0, now: NOW });

        // The reference: the facts planScan needs, read off the plant, and the claims in scan order.
        const impositionJobs = (imp: string) => p.impositions[Number(imp.slice(4))];
        const runlistJobs = new Map(
          [...runlistImpositions].map(([r, imps]) => [r, [...new Set(imps.flatMap(impositionJobs))]]),
        );
        const jobRunlists = new Map<string, string[]>();
        for (const [r, jobs] of runlistJobs)
          for (const j of jobs) jobRunlists.set(j, [...(jobRunlists.get(j) ?? []), r]);
        const facts = {
          runlistImpositions,
          runlistJobs,
          jobRunlists,
          knownJobs: new Map(p.known.map((j) => [j, '1'])),
          catalog: new Map([
            ['print', 'print'],
            ['coating', 'op003'],
            ['kiss_cut', 'op006'],
          ]),
        };
        const standing = new Map<string, OperationClaim>(
          startClaims.map((c) => [`${c.job_id}/print`, c.claim]),
        );
        const expectedLedger: Array<[number, string, string | null]> = [];
        const expectedRows: StatusRow[] = [];
        p.scans.forEach((s, i) => {
          const plan = planScan(
            { source_id: scanIds[i], code_text: s.code, operations: s.operations, scanned_at: at(s.h) },
            scanTarget(s.code),
            facts,
          );
          if (plan.kind === 'skipped') {
            expectedLedger.push([scanIds[i], 'skipped', plan.reason]);
            return;
          }
          expectedLedger.push([scanIds[i], 'applied', null]);
          const via =
            plan.via === 'runlist' ? `scanned via runlist ${plan.runlist_ids.join(', ')}` : 'scanned job';
          const base = [via, ...plan.notes].join('; ');
          for (const op of plan.operations)
            for (const job of plan.jobs) {
              const key = `${job.job_id}/${op.name}`;
              const incoming: OperationClaim = {
                value: true,
                source_type: 'scanner',
                source_id: scanIds[i],
                effective_at: at(s.h),
              };
              const step = resolveClaims(op.name, standing.get(key), [incoming]).steps[0];
              let notes = base;
              if (step.applies) standing.set(key, incoming);
              else notes += `; not applied: ${step.against?.source_type} has precedence for ${op.name}`;
              expectedRows.push({
                job_id: job.job_id,
                operation: op.name,
                source_id: scanIds[i],
                status: 'completed',
                notes,
              });
            }
        });
        expectedRows.sort(
          (a, b) =>
            a.source_id - b.source_id ||
            (a.job_id < b.job_id ? -1 : a.job_id > b.job_id ? 1 : a.operation < b.operation ? -1 : 1),
        );
        assert.deepEqual(await ledger('scanner'), expectedLedger);
        assert.deepEqual(await statusRows(), expectedRows);
        const expectedFlags: Record<string, Record<string, boolean>> = Object.fromEntries(
          [...p.known].sort().map((j) => [j, {}]),
        );
        for (const [key, claim] of standing) {
          const [job, op] = key.split('/');
          if (claim.source_type === 'scanner') expectedFlags[job][op] = claim.value;
        }
        assert.deepEqual(await flags(), expectedFlags);
        // Every scan's operations were readable here; the reference agrees on which are known.
        for (const s of p.scans) assert.ok(normaliseOperations(s.operations).ok);
      }),
      { numRuns: RUNS },
    );
  });
});
