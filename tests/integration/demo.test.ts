import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createTestDatabase, type TestDatabase, waitFor } from '../support/db';
import { type RuntimeProcess, startRuntimeProcess, tempDir } from '../support/runtime-process';

/** Lines that say something went wrong, other than the failures the demo's machines simulate. */
function unexpectedErrors(output: string): string[] {
  return output
    .split('\n')
    .filter((line) => /\[error\]|\berror\b|unhandled|exception|stack/i.test(line))
    .filter((line) => !/simulated/.test(line));
}

describe('floorflow demo', function () {
  // Two minutes of the plant at work, plus the start and the stop.
  this.timeout(420000);
  let db: TestDatabase;
  let dataDir: string;
  let demo: RuntimeProcess;
  let token: string;
  let startedAt: number;

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    dataDir = tempDir();
    demo = await startRuntimeProcess({
      command: 'demo',
      dataDir,
      copyFlows: false,
      timeoutMs: 180000,
      env: { DATABASE_URL: db.url, FLOORFLOW_LOG_LEVEL: 'info' },
    });
    token = (await demo.waitForOutput(/API token\s+(\S+)\s+\(this run only\)/, 120000))[1];
    startedAt = Date.now();
  });

  after(async () => {
    await demo?.stop('SIGINT');
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const api = async (route: string): Promise<Record<string, unknown>> => {
    const res = await fetch(demo.baseUrl + route, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, `${route} answered ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  };
  const count = async (sql: string): Promise<number> => (await db.pool.query<{ n: number }>(sql)).rows[0].n;

  it('prints the URLs of the floor pages and the login', () => {
    const out = demo.output();
    assert.match(out, /dashboards\s+http:\/\/127\.0\.0\.1:\d+\/dashboard/);
    assert.match(out, /\/dashboard\/embossing/);
    assert.match(out, /login\s+admin \/ floorflow-demo/);
  });

  it('runs the plant for two minutes: every page has data and the work reaches its final states', async () => {
    // The first shift's print jobs: printed, coated and (where planned) kiss-cut.
    await waitFor(
      async () =>
        (await count(`SELECT count(*)::int AS n FROM jobmanager.jobs`)) > 0 &&
        (await count(
          `SELECT count(*)::int AS n FROM jobmanager.jobs j
            WHERE EXISTS (SELECT 1 FROM jsonb_each(j.operations) e WHERE e.value <> 'true'::jsonb)`,
        )) === 0,
      'every print job with all its operations done',
      180000,
    );
    await waitFor(
      async () =>
        (await count(`SELECT count(*)::int AS n FROM embossing.embossing_jobs WHERE status = 'completed'`)) >=
          3 &&
        (await count(`SELECT count(*)::int AS n FROM engraving.engraving_jobs WHERE status = 'complete'`)) >=
          2 &&
        (await count(
          `SELECT count(*)::int AS n FROM processing.processing_jobs WHERE status = 'completed'`,
        )) >= 3,
      'embossing, engraving and processing jobs completed',
      120000,
    );
    // Two minutes of work in all, whatever the machine's speed.
    const left = 120000 - (Date.now() - startedAt);
    if (left > 0) await new Promise((r) => setTimeout(r, left));

    // What each floor page reads.
    const status = (await api('/api/dashboard/status')) as {
      status: { machines: Array<{ online: boolean }> };
    };
    assert.ok(
      status.status.machines.filter((m) => m.online).length >= 5,
      JSON.stringify(status.status.machines),
    );
    const dispatchable = (await api('/api/live-products/dispatchable')) as { data?: unknown[] };
    assert.ok((dispatchable.data ?? []).length > 0, 'no live product on the dispatch page');
    assert.ok(
      (await count(`SELECT count(*)::int AS n FROM trackopz.product_transitions WHERE source = 'dispatch'`)) >
        0,
    );
    const jobId = (await db.pool.query('SELECT job_id FROM jobmanager.jobs LIMIT 1')).rows[0]
      .job_id as string;
    const jobStatus = (await api(`/api/job-status/${jobId}`)) as { update_history: unknown[] };
    assert.ok(jobStatus.update_history.length >= 2, JSON.stringify(jobStatus));
    assert.ok(JSON.stringify(await api('/api/embossing-jobs')).includes('completed'));
    assert.ok(JSON.stringify(await api('/v1/processing/queue')).includes('completed'));
    assert.ok(
      (await count(
        `SELECT count(*)::int AS n FROM jobmanager.processed_source_records WHERE source_type = 'scanner'`,
      )) > 0,
    );
    assert.deepEqual(unexpectedErrors(demo.output()), []);
  });

  it('stops cleanly on Ctrl-C with exit code 0', async () => {
    const code = await demo.stop('SIGINT');
    assert.equal(code, 0, demo.output().slice(-2000));
    assert.match(demo.output(), /floorflow stopped/);
    assert.deepEqual(unexpectedErrors(demo.output()), []);
  });
});
