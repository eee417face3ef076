import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { addUser, loginCookie } from '../support/logins';
import {
  REPO_ROOT,
  type RuntimeProcess,
  runCli,
  runtimeEnv,
  startRuntimeProcess,
  tempDir,
} from '../support/runtime-process';
import { IMPORT_KINDS } from '../../core/import';

const EXAMPLES = path.join(REPO_ROOT, 'examples');

/** The summary line `floorflow import` prints: created, updated, unchanged, not imported. */
function counts(stdout: string): number[] {
  const m = /(\d+) created, (\d+) updated, (\d+) unchanged, (\d+) not imported/.exec(stdout);
  assert.ok(m, stdout);
  return m.slice(1).map(Number);
}

describe('floorflow import', function () {
  this.timeout(180000);
  let db: TestDatabase;
  let env: NodeJS.ProcessEnv;
  let dir: string;

  before(async () => {
    db = await createTestDatabase();
    dir = tempDir();
    env = runtimeEnv(dir, 0, { DATABASE_URL: db.url }, false);
  });
  after(async () => {
    await db.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const run = (...args: string[]) => runCli(['import', ...args], env);

  it('imports every example file; the JSON twin of each CSV file then changes nothing', async () => {
    for (const kind of IMPORT_KINDS) {
      const first = run(kind, path.join(EXAMPLES, `${kind}.csv`));
      assert.equal(first.status, 0, first.stdout + first.stderr);
      const [created, , , failed] = counts(first.stdout);
      assert.ok(created > 0, `${kind}: ${first.stdout}`);
      assert.equal(failed, 0, first.stdout);
      const json = path.join(EXAMPLES, `${kind}.json`);
      const records = (JSON.parse(fs.readFileSync(json, 'utf8')) as unknown[]).length;
      const again = run(kind, json);
      assert.equal(again.status, 0, again.stdout + again.stderr);
      assert.deepEqual(counts(again.stdout), [0, 0, records, 0], `${kind}: ${again.stdout}`);
    }
    const plates = await db.pool.query(
      `SELECT plate_number, plate_position, status, unavailable_reason FROM embossing.plates ORDER BY id`,
    );
    assert.equal(plates.rowCount, 4);
    assert.deepEqual(plates.rows[3], {
      plate_number: 'ZX90, spare',
      plate_position: 'single',
      status: 'in_production',
      unavailable_reason: 'dented corner - on hold',
    });
    // Jobs come with their files (and so job_files), impositions' operations and runlists.
    const files = await db.pool.query(`SELECT job_id FROM jobmanager.job_files ORDER BY file_id`);
    assert.equal(files.rowCount, 4);
    const runlist = await db.pool.query(
      `SELECT imposition_id FROM logs.production_planner_paths WHERE runlist_id = 'RL-0099' ORDER BY 1`,
    );
    assert.deepEqual(
      runlist.rows.map((r) => r.imposition_id),
      ['IMP-0412', 'IMP-0413'],
    );
    const ops = await db.pool.query(
      `SELECT o.operation_name FROM logs.job_operations j
         JOIN logs.operation_catalog o USING (operation_id)
        WHERE j.job_id = '4604_5889' ORDER BY j.sequence_order`,
    );
    assert.deepEqual(
      ops.rows.map((r) => r.operation_name),
      ['print', 'coating', 'kiss_cut'],
    );
    const job = await db.pool.query(`SELECT operations FROM jobmanager.jobs WHERE job_id = '4604_5890'`);
    assert.deepEqual(job.rows[0].operations, { print: false, coating: false });
    const impositionOps = await db.pool.query(
      `SELECT count(*)::int AS n FROM logs.imposition_operations WHERE imposition_id = 'IMP-0412'`,
    );
    assert.equal(impositionOps.rows[0].n, 3);
    // Products have their state as their latest job, with the audit row of the import.
    const past = await db.pool.query(
      `SELECT j.state, t.source FROM trackopz.products p
         JOIN trackopz.jobs j ON j.product_id = p.id
         JOIN trackopz.product_transitions t ON t.job_id = j.id
        WHERE p.product_code = 'TAG-KISS-A5'`,
    );
    assert.deepEqual(past.rows, [{ state: 'OFF', source: 'import' }]);
  });

  it('updates what an edited row changes, and only that', async () => {
    const file = path.join(dir, 'edited.csv');
    fs.writeFileSync(
      file,
      'product_code,name,state\nLBL-ROLL-100,Label roll 100 mm,OFF\nLBL-ROLL-050,Label roll 50 mm (matt),\n',
    );
    assert.deepEqual(counts(run('products', file).stdout), [0, 2, 0, 0]);
    const rows = await db.pool.query(
      `SELECT p.product_code, p.name,
              (SELECT state FROM trackopz.jobs j WHERE j.product_id = p.id ORDER BY created_at DESC, id DESC LIMIT 1)
         FROM trackopz.products p WHERE product_code LIKE 'LBL-%' ORDER BY product_code`,
    );
    assert.deepEqual(rows.rows, [
      { product_code: 'LBL-ROLL-050', name: 'Label roll 50 mm (matt)', state: 'ON' },
      { product_code: 'LBL-ROLL-100', name: 'Label roll 100 mm', state: 'OFF' },
    ]);
    assert.deepEqual(counts(run('products', file).stdout), [0, 0, 2, 0]);

    const items = path.join(dir, 'items.json');
    fs.writeFileSync(
      items,
      JSON.stringify([{ id: 'PLQ-A5-OAK', name: 'Oak plaque A5', stock_available: 2, max_lines: 5 }]),
    );
    assert.deepEqual(counts(run('engraving-items', items).stdout), [0, 1, 0, 0]);
    const stock = await db.pool.query(`SELECT stock_available FROM engraving.items WHERE id = 'PLQ-A5-OAK'`);
    assert.equal(stock.rows[0].stock_available, 2);
  });

  it('imports the good rows and reports each bad one with its row, field and reason', async () => {
    const file = path.join(dir, 'mixed.csv');
    fs.writeFileSync(
      file,
      'job_id,version_tag,operations,file_id,imposition_id\n' +
        '5001_1,1,print,FILE_1_Labex_5001_1_1,IMP-9\n' +
        '5001_2,1,print;varnish,FILE_1_Labex_5001_2_1,IMP-9\n' +
        '5001_3,1,print,FILE_1_Labex_5001_3_1,\n',
    );
    const result = run('jobs', file);
    assert.equal(result.status, 1);
    assert.deepEqual(counts(result.stdout), [1, 0, 0, 2]);
    assert.match(
      result.stdout,
      /row 2, operations: no operation named "varnish"; the plant's operations are .*print/,
    );
    assert.match(result.stdout, /row 3, imposition_id: is required/);
    const jobs = await db.pool.query(`SELECT job_id FROM jobmanager.jobs WHERE job_id LIKE '5001_%'`);
    assert.deepEqual(jobs.rows, [{ job_id: '5001_1' }]);
  });

  it('leaves a plate held by an embossing job to that job, and a confirmed order as confirmed', async () => {
    const plate = await db.pool.query<{ id: string }>(
      `SELECT id::text AS id FROM embossing.plates WHERE plate_number = 'KL45 MNO'`,
    );
    const job = await db.pool.query<{ id: string }>(
      `INSERT INTO embossing.embossing_jobs (machine_id) VALUES ('EMB-1') RETURNING id::text AS id`,
    );
    await db.pool.query(`INSERT INTO embossing.embossing_job_plates (job_id, plate_id) VALUES ($1, $2)`, [
      job.rows[0].id,
      plate.rows[0].id,
    ]);
    const plates = path.join(dir, 'plates.csv');
    fs.writeFileSync(plates, 'plate_number,batch_code,status\nKL45 MNO,B-2026-12-02,in_storage\n');
    const refused = run('plates', plates);
    assert.equal(refused.status, 1);
    assert.match(
      refused.stdout,
      new RegExp(`row 1, status: plate is held by embossing job ${job.rows[0].id}`),
    );

    await db.pool.query(
      `UPDATE processing.orders SET status = 'confirmed' WHERE order_number = 'ORD-2026-1202'`,
    );
    const orders = path.join(dir, 'orders.csv');
    fs.writeFileSync(orders, 'order_number,customer\nORD-2026-1202,Bakery Malmo\n');
    assert.match(run('orders', orders).stdout, /row 1, details: order ORD-2026-1202 is confirmed/);
  });

  it('refuses an unknown kind or file type as usage, and a file it cannot read with one line', () => {
    const unknown = run('pallets', path.join(EXAMPLES, 'plates.csv'));
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown kind "pallets"/);
    assert.equal(run('plates', 'plates.xlsx').status, 2);
    const bad = path.join(dir, 'bad.csv');
    fs.writeFileSync(bad, 'plate_number,batch,position\n');
    const result = run('plates', bad);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /unknown column batch for plates; the columns are plate_number, batch_code/);
  });
});

describe('POST /api/admin/import/:kind in the running runtime', function () {
  this.timeout(180000);
  let db: TestDatabase;
  let runtime: RuntimeProcess;
  let token: string;
  let dataDir: string;

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    dataDir = tempDir();
    for (const d of ['flows', 'dashboards']) fs.mkdirSync(path.join(dataDir, d));
    fs.copyFileSync(path.join(REPO_ROOT, 'flows', 'config.json'), path.join(dataDir, 'flows', 'config.json'));
    runtime = await startRuntimeProcess({
      dataDir,
      copyFlows: false,
      env: {
        DATABASE_URL: db.url,
        FLOORFLOW_FLOWS_DIR: path.join(dataDir, 'flows'),
        FLOORFLOW_DASHBOARDS_DIR: path.join(dataDir, 'dashboards'),
      },
    });
    token = runtime.apiToken!;
  });
  after(async () => {
    await runtime?.stop();
    await db.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const post = (kind: string, body: string, type: string, auth = `Bearer ${token}`) =>
    fetch(`${runtime.baseUrl}/api/admin/import/${kind}`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': type },
      body,
    });

  it('takes a CSV body, and the same file again changes nothing', async () => {
    const csv = fs.readFileSync(path.join(EXAMPLES, 'engraving-items.csv'), 'utf8');
    const first = await post('engraving-items', csv, 'text/csv');
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), {
      success: true,
      kind: 'engraving-items',
      total: 3,
      created: 3,
      updated: 0,
      unchanged: 0,
      failed: 0,
      errors: [],
    });
    const again = (await (await post('engraving-items', csv, 'text/csv')).json()) as { unchanged: number };
    assert.equal(again.unchanged, 3);
  });

  it('takes a JSON list; good rows go in, bad rows come back with row, field and reason', async () => {
    const body = JSON.stringify([
      { order_number: 'ORD-9', details: { customer: 'Lund' } },
      { order_number: 'ORD-10', status: 'shipped' },
    ]);
    const res = await post('orders', body, 'application/json');
    assert.equal(res.status, 200);
    const report = (await res.json()) as Record<string, unknown>;
    assert.equal(report.success, false);
    assert.equal(report.error, '1 of 2 rows were not imported');
    assert.deepEqual(report.errors, [
      { row: 2, field: 'status', reason: 'must be one of: pending, cancelled' },
    ]);
    const all = await post('orders', JSON.stringify([{ order_number: '' }]), 'application/json');
    assert.equal(all.status, 400);
  });

  it('answers in the error shape for an unknown kind, an unreadable file, and a caller who is not an engineer', async () => {
    const unknown = await post('pallets', '[]', 'application/json');
    assert.equal(unknown.status, 404);
    assert.match(((await unknown.json()) as { error: string }).error, /use one of plates, jobs/);
    const unreadable = await post('plates', 'plate_number\n"open', 'text/csv');
    assert.equal(unreadable.status, 400);
    assert.deepEqual(await unreadable.json(), {
      success: false,
      error: 'line 2: a quoted field is not closed',
    });
    const noType = await post('plates', 'x', 'application/octet-stream');
    assert.equal(noType.status, 415);

    const password = addUser(runtime.env, 'olga', 'operator');
    const cookie = await loginCookie(runtime.baseUrl, 'olga', password);
    const refused = await fetch(`${runtime.baseUrl}/api/admin/import/plates`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', origin: runtime.baseUrl },
      body: '[]',
    });
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { success: boolean }).success, false);
  });
});
