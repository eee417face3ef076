// The print OS backlog of bench/print-os-backlog.ts (and of the benches and checks that compare
// appliers on it).
import crypto from 'node:crypto';
import { Client, type Pool } from 'pg';
import { createPool } from '../../store/db';
import { testServerUrl } from '../../tests/support/db';

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

/**
 * Loads the bench's plant and backlog: `rowCount` print OS rows (90 % PRINTED, markers 1..rowCount)
 * over `impositionCount` impositions of 3-8 files, the files of 2 × `impositionCount` jobs spread
 * over several impositions. The same data for the same counts (a fixed seed), times from now().
 */
export async function loadPrintBacklog(
  pool: Pool,
  rowCount: number,
  impositionCount: number,
): Promise<{ jobs: number; files: number }> {
  const random = rng(42);
  const jobCount = Math.round(impositionCount * 2);
  const jobIds = Array.from({ length: jobCount }, (_, i) => `${4000 + Math.floor(i / 1000)}_${i % 1000}`);
  const mapping: Array<[string, string]> = [];
  const fileCounter = new Map<string, number>();
  for (let i = 0; i < impositionCount; i += 1) {
    const files = 3 + Math.floor(random() * 6);
    for (let f = 0; f < files; f += 1) {
      const job = jobIds[Math.floor(random() * jobCount)];
      const n = (fileCounter.get(job) ?? 0) + 1;
      fileCounter.set(job, n);
      mapping.push([`IMP-${i}`, `FILE_1_Labex_${job}_${n}`]);
    }
  }
  const chunk = 20000;
  for (let i = 0; i < jobIds.length; i += chunk) {
    const ids = jobIds.slice(i, i + chunk);
    await pool.query(`INSERT INTO jobmanager.jobs (job_id, version_tag) SELECT unnest($1::text[]), '1'`, [
      ids,
    ]);
    await pool.query(
      `INSERT INTO logs.job_operations (job_operation_id, job_id, version_tag, operation_id)
       SELECT j || ':print', j, '1', 'print' FROM unnest($1::text[]) AS j`,
      [ids],
    );
  }
  for (let i = 0; i < mapping.length; i += chunk) {
    const part = mapping.slice(i, i + chunk);
    await pool.query(
      `INSERT INTO logs.imposition_file_mapping (imposition_id, file_id) SELECT * FROM unnest($1::text[], $2::text[])`,
      [part.map((m) => m[0]), part.map((m) => m[1])],
    );
  }
  const imps = Array.from({ length: impositionCount }, (_, i) => `IMP-${i}`);
  await pool.query(
    `INSERT INTO logs.imposition_operations (imposition_operation_id, imposition_id, operation_id)
     SELECT i || ':print', i, 'print' FROM unnest($1::text[]) AS i`,
    [imps],
  );
  for (let i = 0; i < rowCount; i += chunk) {
    const n = Math.min(chunk, rowCount - i);
    const names = Array.from({ length: n }, () => imps[Math.floor(random() * impositionCount)]);
    const statuses = Array.from({ length: n }, () => (random() < 0.9 ? 'PRINTED' : 'ABORTED'));
    const markers = Array.from({ length: n }, (_, k) => i + k + 1);
    await pool.query(
      `INSERT INTO jobmanager."print OS" (name, status, marker, job_complete_time)
       SELECT u.name, u.status, u.marker, now() FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(name, status, marker)`,
      [names, statuses, markers],
    );
  }
  await pool.query('ANALYZE');
  return { jobs: jobCount, files: mapping.length };
}

/** A copy of `template` on the test server (CREATE DATABASE … TEMPLATE), dropped by `drop`. */
export async function cloneDatabase(
  template: string,
  poolSize = 4,
): Promise<{ url: string; pool: Pool; drop: () => Promise<void> }> {
  const name = `ff_bench_${crypto.randomBytes(4).toString('hex')}`;
  const adminUrl = await testServerUrl();
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const pool = createPool(u.toString(), { max: poolSize });
  return {
    url: u.toString(),
    pool,
    drop: async () => {
      await pool.end();
      const c = new Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
