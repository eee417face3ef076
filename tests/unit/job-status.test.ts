import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  evaluatePrintRecords,
  findGaps,
  isDoubleSend,
  jobIdOfFile,
  judgeJobPrint,
  lookBackFrom,
  planScan,
  readIncomingScan,
  scanTarget,
  type FileState,
  type MappedFile,
  type PrintFacts,
  type PrintRecord,
  type ScanFacts,
} from '../../core/job-status';

describe('job-status rules (core)', () => {
  describe('job id from file id', () => {
    it('reads the job id of a print OS file id', () => {
      assert.deepEqual(jobIdOfFile('FILE_1_Labex_4604_5889_80'), { ok: true, job_id: '4604_5889' });
    });
    it('says why a file id names no job', () => {
      const result = jobIdOfFile('scan.pdf');
      assert.equal(result.ok, false);
    });
    it('finds the job id of any generated file id (property)', () => {
      fc.assert(
        fc.property(
          fc.nat(99999),
          fc.nat(99999),
          fc.nat(99),
          fc.stringMatching(/^[A-Za-z0-9_]{0,12}$/),
          (a, b, v, rest) => {
            const job = `${a}_${b}`;
            const id = `FILE_${v}_Labex_${job}${rest ? `_${rest}` : ''}`;
            const parsed = jobIdOfFile(id);
            // The rest may itself start with digits and an underscore; the job id is the first two numbers.
            assert.equal(parsed.ok, true);
            assert.equal(parsed.ok && parsed.job_id, job);
          },
        ),
      );
    });
  });

  describe('completion', () => {
    it('all files printed → print = true', () => {
      assert.deepEqual(judgeJobPrint(3, 3, 0), {
        status: 'completed',
        print: true,
        note: 'all 3 files printed',
      });
    });
    it('some printed → print stays false with a partial note', () => {
      const verdict = judgeJobPrint(3, 1, 1);
      assert.equal(verdict.status, 'partial');
      assert.equal(verdict.print, false);
      assert.match(verdict.note, /1 of 3 files, 1 aborted/);
    });
    it('all aborted → print = false with an abort note', () => {
      assert.deepEqual(judgeJobPrint(2, 0, 2), {
        status: 'aborted',
        print: false,
        note: 'all 2 files aborted',
      });
    });
    it('some aborted and none printed → print left as it is, abort note', () => {
      const verdict = judgeJobPrint(3, 0, 1);
      assert.equal(verdict.print, undefined);
      assert.match(verdict.note, /1 of 3 files aborted/);
    });
    it('print is true exactly when every file is printed (property)', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 50 }), fc.nat(50), fc.nat(50), (total, p, a) => {
          const printed = Math.min(p, total);
          const aborted = Math.min(a, total - printed);
          assert.equal(judgeJobPrint(total, printed, aborted).print === true, printed === total);
        }),
      );
    });
  });

  describe('evaluating print-OS records', () => {
    const files = (imp: string, jobs: string[]): MappedFile[] =>
      jobs.map((job, i) => ({ file_id: `FILE_1_Labex_${job}_${imp}${i}`, job_id: job }));

    function factsFor(
      layout: Record<string, string[]>,
      known: string[],
      fileStates = new Map<string, FileState>(),
    ): PrintFacts {
      const impositionFiles = new Map(Object.entries(layout).map(([imp, jobs]) => [imp, files(imp, jobs)]));
      const jobFiles = new Map<string, string[]>();
      for (const list of impositionFiles.values()) {
        for (const f of list)
          if ('job_id' in f) jobFiles.set(f.job_id, [...(jobFiles.get(f.job_id) ?? []), f.file_id]);
      }
      return { impositionFiles, jobFiles, fileStates, knownJobs: new Set(known) };
    }

    it('skips an unknown imposition, an imposition of unparseable ids and unknown jobs with the reason', () => {
      const facts = factsFor({ A: ['9_9'] }, []);
      const bad = new Map(facts.impositionFiles);
      bad.set('B', [{ file_id: 'junk', reason: 'not a file id' }]);
      const records: PrintRecord[] = [
        { source_id: 1, marker: 1, imposition_id: 'NONE', status: 'PRINTED' },
        { source_id: 2, marker: 2, imposition_id: 'B', status: 'PRINTED' },
        { source_id: 3, marker: 3, imposition_id: 'A', status: 'PRINTED' },
      ];
      const { outcomes } = evaluatePrintRecords(records, { ...facts, impositionFiles: bad });
      assert.deepEqual(
        outcomes.map((o) => (o.kind === 'skipped' ? o.reason.split(':')[0] : o.kind)),
        ['unknown imposition "NONE"', 'no parseable file id in imposition B', 'unknown job 9_9'],
      );
    });

    it('a batch gives the same outcomes as the records one at a time (property)', () => {
      const jobs = ['1_1', '2_2', '3_3'];
      const layout: Record<string, string[]> = {
        A: ['1_1', '2_2'],
        B: ['2_2', '3_3'],
        C: ['1_1'],
        D: ['3_3', '3_3'],
      };
      const record = fc.record({
        imposition_id: fc.constantFrom('A', 'B', 'C', 'D'),
        status: fc.constantFrom<'PRINTED' | 'ABORTED'>('PRINTED', 'ABORTED'),
      });
      fc.assert(
        fc.property(fc.array(record, { maxLength: 12 }), (raw) => {
          const records = raw.map((r, i) => ({ ...r, source_id: i + 1, marker: i + 1 }));
          const batch = evaluatePrintRecords(records, factsFor(layout, jobs));
          let states = new Map<string, FileState>();
          const single = records.flatMap((r) => {
            const step = evaluatePrintRecords([r], factsFor(layout, jobs, states));
            states = new Map([...states, ...step.changedFiles]);
            return step.outcomes;
          });
          assert.deepEqual(batch.outcomes, single);
        }),
      );
    });
  });

  describe('scan plans', () => {
    const facts: ScanFacts = {
      runlistImpositions: new Map([['RL-1', ['I1', 'I2']]]),
      runlistJobs: new Map([['RL-1', ['10_1', '10_2']]]),
      jobRunlists: new Map([['10_1', ['RL-1']]]),
      knownJobs: new Map([
        ['10_1', '1'],
        ['10_2', '1'],
        ['20_1', '3'],
      ]),
      catalog: new Map([['coating', 'op003']]),
    };
    const scan = (code: string, operations: unknown = ['coating']) => ({
      source_id: 1,
      code_text: code,
      operations,
      scanned_at: new Date(0),
    });

    it('a runlist code updates all the runlist jobs', () => {
      const plan = planScan(scan('RL-1'), scanTarget('RL-1'), facts);
      assert.equal(plan.kind, 'applied');
      assert.deepEqual(plan.kind === 'applied' && plan.jobs.map((j) => j.job_id), ['10_1', '10_2']);
    });
    it('a job code on a runlist updates its runlist; off a runlist, the job alone', () => {
      const onRunlist = planScan(scan('10_1_1'), scanTarget('10_1_1'), facts);
      assert.equal(onRunlist.kind === 'applied' && onRunlist.via, 'runlist');
      const alone = planScan(scan('20_1_3'), scanTarget('20_1_3'), facts);
      assert.deepEqual(alone.kind === 'applied' && alone.jobs, [{ job_id: '20_1', version_tag: '3' }]);
    });
    it('skips a scan without known operations, and names unknown ones beside known ones', () => {
      assert.equal(planScan(scan('RL-1', ['polish']), scanTarget('RL-1'), facts).kind, 'skipped');
      const mixed = planScan(scan('RL-1', ['polish', 'coating']), scanTarget('RL-1'), facts);
      assert.deepEqual(mixed.kind === 'applied' && mixed.notes, ['unknown operation polish skipped']);
    });
  });

  describe('markers', () => {
    it('finds the missing markers between the lowest and the highest', () => {
      assert.deepEqual(findGaps([7, 1, 2, 2, 5]), [
        { from: 3, to: 4 },
        { from: 6, to: 6 },
      ]);
      assert.deepEqual(findGaps([]), []);
    });
    it('every marker in range is either present or in exactly one gap (property)', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 60 }),
          (markers) => {
            const gaps = findGaps(markers);
            const present = new Set(markers);
            for (let m = Math.min(...markers); m <= Math.max(...markers); m += 1) {
              const inGaps = gaps.filter((g) => g.from <= m && m <= g.to).length;
              assert.equal(inGaps + (present.has(m) ? 1 : 0), 1);
            }
          },
        ),
      );
    });
    it('the look-back floor never goes below zero', () => {
      assert.equal(lookBackFrom(10, 1000), 0);
      assert.equal(lookBackFrom(5000, 1000), 4000);
    });
  });

  describe('scan ingest', () => {
    const now = new Date('2026-01-05T08:00:02Z');
    it('a repeat within the window is a double-send; at or past its edge it is a new scan', () => {
      assert.equal(isDoubleSend(new Date('2026-01-05T08:00:00.500Z'), now, 2000), true);
      assert.equal(isDoubleSend(new Date('2026-01-05T08:00:00Z'), now, 2000), false);
      assert.equal(isDoubleSend(undefined, now, 2000), false);
    });
    it('reads the contract scan object, and a bare code from a serial scanner', () => {
      assert.deepEqual(
        readIncomingScan(Buffer.from('{"code":"RL-1","operations":{"coating":true},"msg_id":"a"}')),
        {
          ok: true,
          scan: { code_text: 'RL-1', operations: { coating: true }, msg_id: 'a' },
        },
      );
      assert.deepEqual(readIncomingScan('4604_5889_1\r\n'), {
        ok: true,
        scan: { code_text: '4604_5889_1', operations: [] },
      });
    });
    it('rejects what can never be a scan, with the reason', () => {
      for (const bad of [
        '{not json',
        '{"operations":[]}',
        '{"code":"x","operations":"coating"}',
        '{"code":"x","scanned_at":"yesterday"}',
      ]) {
        const result = readIncomingScan(bad);
        assert.equal(result.ok, false, bad);
      }
      assert.equal(readIncomingScan([1]).ok, false);
    });
    it('never throws, whatever the payload (property)', () => {
      fc.assert(
        fc.property(
          fc.oneof(fc.string(), fc.json(), fc.anything()),
          (payload) => void readIncomingScan(payload),
        ),
      );
    });
  });
});
