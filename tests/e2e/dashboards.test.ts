// The floor displays in a real browser (Chromium through playwright-core) against the
// real runtime process with seeded data: each page shows what the database holds, one action
// per page changes it, and the page updates live without a reload. Screenshots of every page
// go to test-output/dashboards/ for a person to look at.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { type SeededFloor, seedFloor } from '../support/dashboard-fixtures';
import { addUser, loginInBrowser } from '../support/logins';
import { type TestDatabase, createTestDatabase, waitFor } from '../support/db';
import {
  REPO_ROOT,
  type RuntimeProcess,
  runCli,
  startRuntimeProcess,
  tempDir,
} from '../support/runtime-process';

const SHOTS = path.join(REPO_ROOT, 'test-output', 'dashboards');

/** Marks the document, so a test can tell a live update from a reload. */
async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { floorflowMark: boolean }).floorflowMark = true;
  });
}

async function stillSameDocument(page: Page): Promise<boolean> {
  return page.evaluate(() => (window as unknown as { floorflowMark?: boolean }).floorflowMark === true);
}

describe('floor displays in a browser (Dashboard 2.0 pages against the runtime)', function () {
  this.timeout(180000);
  let db: TestDatabase;
  let runtime: RuntimeProcess;
  let browser: Browser;
  let page: Page;
  let floor: SeededFloor;
  let dataDir: string;

  before(async function () {
    fs.mkdirSync(SHOTS, { recursive: true });
    db = await createTestDatabase();
    // The data is there before the runtime starts: the pages can only have it from the database.
    floor = await seedFloor(db.pool, new Date());
    dataDir = tempDir();
    runtime = await startRuntimeProcess({ dataDir, env: { DATABASE_URL: db.url } });
    // The pages act as an operator does: logged in through the login page.
    const password = addUser(runtime.env, 'olga', 'operator');
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await loginInBrowser(page, runtime.baseUrl, 'olga', password, '/dashboard/machines');
  });

  after(async () => {
    await browser?.close();
    await runtime?.stop('SIGKILL');
    await db?.drop();
  });

  async function open(pagePath: string, board: string): Promise<void> {
    await page.goto(`${runtime.baseUrl}/dashboard/${pagePath}`);
    await page.locator(`[data-test="${board}"] h2`).first().waitFor({ timeout: 30000 });
  }

  async function screenshot(name: string): Promise<void> {
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  }

  it('Machines: lists every registered machine with its state; an offline one stands out as stale; a machine that connects shows live', async () => {
    await open('machines', 'machines-board');
    const press = page.locator(`tr[data-machine="${floor.offlineMachine}"]`);
    await press.waitFor();
    assert.match((await press.getAttribute('class')) ?? '', /ff-row-offline/);
    // The day is shown too when that was yesterday (a run just after midnight).
    assert.match(
      await press.innerText(),
      /OFFLINE[\s\S]*stale since ([A-Z][a-z]{2} \d{1,2} )?\d\d:\d\d:\d\d/,
    );
    assert.match(await page.locator('tr[data-machine="embosser-1"]').innerText(), /IDLE/);
    // The press has been silent for 42 minutes: the machine_silent alert is on the page.
    await page
      .getByText(/ALERT: machine press-4 silent/)
      .first()
      .waitFor({ timeout: 60000 });

    await markDocument(page);
    const added = runCli(['machine', 'add', 'engraver-3', '--kind', 'engraver'], runtime.env);
    assert.equal(added.status, 0, added.stderr);
    const secret = /MQTT password \(shown once, stored hashed\): (\S+)/.exec(added.stdout)?.[1];
    assert.ok(secret, added.stdout);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${runtime.mqttPort}`, {
      username: 'engraver-3',
      password: secret,
      clientId: 'engraver-3',
      reconnectPeriod: 0,
    });
    try {
      await client.publishAsync(
        'floorflow/machines/engraver-3/status',
        JSON.stringify({ state: 'busy', job: 42 }),
        {
          qos: 1,
          retain: true,
        },
      );
      const row = page.locator('tr[data-machine="engraver-3"]');
      await row.locator('.ff-state-busy').waitFor({ timeout: 30000 });
      assert.match(await row.innerText(), /job: 42/);
      assert.ok(await stillSameDocument(page), 'updated without a reload');
      await screenshot('machines');
    } finally {
      await client.endAsync();
    }
  });

  it('Embossing: offers only selectable plates, and "Send to Embosser" puts a job in the queue table live', async () => {
    await open('embossing', 'embossing-board');
    const list = page.locator('[data-test="plate-list"]');
    const offered = await list.innerText();
    for (const plate of floor.plates) assert.match(offered, new RegExp(plate.plate_number));
    assert.doesNotMatch(offered, /EF-3001/, 'an embossed plate is not offered');
    await page.locator('[data-test="plate-search"]').fill('AB-1001');
    assert.equal(await list.locator('label').count(), 1, 'the search narrows the list');

    await markDocument(page);
    await list.locator('label', { hasText: 'AB-1001' }).locator('input').check();
    assert.equal(await page.locator('[data-test="machine-picker"]').inputValue(), floor.embosser);
    await page.locator('[data-test="send-to-embosser"]').click();
    await page
      .locator('[data-test="result"]', { hasText: /embossing job \d+ queued for embosser-1/ })
      .waitFor();
    const queued = page.locator('[data-test="embossing-queue"] tr', { hasText: 'AB-1001' });
    await queued.waitFor({ timeout: 30000 });
    assert.match(await queued.innerText(), /embosser-1/);
    await page.locator('[data-test="plate-search"]').fill('');
    await waitFor(
      async () => !/AB-1001/.test(await list.innerText()),
      'the plate taken by the job to leave the list',
      30000,
    );
    assert.ok(await stillSameDocument(page), 'updated without a reload');
    // The job and its audit rows name the operator who pressed the button, not "dashboard".
    const job = await db.pool.query<{ plate_id: string; created_by: string }>(
      `SELECT p.id::text AS plate_id, j.created_by FROM embossing.embossing_jobs j
       JOIN embossing.embossing_job_plates jp ON jp.job_id = j.id JOIN embossing.plates p ON p.id = jp.plate_id
       WHERE p.plate_number = 'AB-1001'`,
    );
    assert.equal(job.rows[0].created_by, 'olga');
    const audit = await db.pool.query<{ actor: string }>(
      `SELECT DISTINCT actor FROM floorflow.lifecycle_transitions WHERE lifecycle = 'embossing-plate' AND entity_id = $1`,
      [job.rows[0].plate_id],
    );
    assert.deepEqual(audit.rows, [{ actor: 'olga' }]);
    await screenshot('embossing');
  });

  it('Job status: shows each job as a grid of done/partial/aborted with the updates, their source and flow version, and the pollers', async () => {
    await open('job-status', 'job-status-board');
    const done = page.locator('[data-test="operations-grid"] tr[data-job="4604_5889"]');
    assert.match(await done.innerText(), /DONE\s+DONE/);
    const partial = await page.locator('[data-test="operations-grid"] tr[data-job="4604_5890"]').innerText();
    assert.match(partial, /PARTIAL/);
    assert.match(partial, /ABORTED/);
    const updates = await page.locator('[data-test="latest-updates"]').innerText();
    assert.match(updates, /press #12/);
    assert.match(updates, /scanner #201/);
    assert.match(updates, /1\.0\.3/);
    assert.match(
      await page.locator('[data-poller="print_os"]').innerText(),
      /lag \d+[\s\S]*last marker \d+ of 13/,
    );
    await screenshot('job-status');
  });

  it('Job status: a rejected scan appears with its machine, code and reason within a second, and a skipped one too', async () => {
    await open('job-status', 'job-status-board');
    await markDocument(page);
    const added = runCli(['machine', 'add', 'scanner-7', '--kind', 'scanner'], runtime.env);
    assert.equal(added.status, 0, added.stderr);
    const secret = /MQTT password \(shown once, stored hashed\): (\S+)/.exec(added.stdout)?.[1];
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${runtime.mqttPort}`, {
      username: 'scanner-7',
      password: secret,
      clientId: 'scanner-7',
      reconnectPeriod: 0,
    });
    try {
      const notices = page.locator('[data-test="scan-notices"]');
      // Acknowledged means committed: from the PUBACK on, the page has a second to show it.
      await client.publishAsync(
        'floorflow/machines/scanner-7/scan',
        JSON.stringify({ code: 'BAD-77', operations: [42] }),
        { qos: 1 },
      );
      await notices.locator('tr', { hasText: 'BAD-77' }).waitFor({ timeout: 1000 });
      const row = await notices.locator('tr', { hasText: 'BAD-77' }).innerText();
      assert.match(row, /scanner-7/);
      assert.match(row, /REJECTED[\s\S]*operations\[0\] must be an operation name/);
      await client.publishAsync(
        'floorflow/machines/scanner-7/scan',
        JSON.stringify({ code: '9999_1_1', operations: ['coating'] }),
        { qos: 1 },
      );
      await notices.locator('tr', { hasText: '9999_1_1' }).waitFor({ timeout: 10000 });
      assert.match(
        await notices.locator('tr', { hasText: '9999_1_1' }).innerText(),
        /NOT APPLIED[\s\S]*unknown job 9999_1/,
      );
      assert.ok(await stillSameDocument(page), 'updated without a reload');
      assert.match(runtime.output(), /scan from scanner-7 of code "BAD-77" rejected: operations\[0\]/);
      assert.match(
        runtime.output(),
        /scan from scanner-7 of code "9999_1_1" not applied: unknown job 9999_1/,
      );
      await screenshot('job-status-scan-notices');
    } finally {
      await client.endAsync();
    }
  });

  it('Dispatch: lists the live products, and "Move to past" takes one off the list live with its reason', async () => {
    await open('dispatch', 'dispatch-board');
    const live = page.locator('[data-test="live-products"]');
    for (const p of floor.liveProducts) assert.match(await live.innerText(), new RegExp(p.name));
    assert.doesNotMatch(await live.innerText(), /Shield oak/, 'a past product is not live');

    await markDocument(page);
    const product = floor.liveProducts[2];
    const row = live.locator(`tr[data-product="${product.id}"]`);
    await row.locator('select').selectOption('finished');
    await row.getByRole('button', { name: 'Move to past' }).click();
    await row.waitFor({ state: 'detached', timeout: 30000 });
    const moves = page.locator('[data-test="transitions"] tr', { hasText: product.name });
    await moves.waitFor();
    assert.match(await moves.innerText(), /ON → OFF[\s\S]*finished[\s\S]*dispatch/);
    const moved = await db.pool.query(
      `SELECT actor FROM trackopz.product_transitions WHERE product_id = $1`,
      [product.id],
    );
    assert.deepEqual(moved.rows, [{ actor: 'olga' }]);
    assert.ok(await stillSameDocument(page), 'updated without a reload');
    await screenshot('dispatch');
  });

  it('Processing and engraving: shows queue counts, progress, failures and QA pass rate, and approving a design takes it off the list live', async () => {
    await open('processing', 'processing-board');
    assert.match(await page.locator('[data-test="qa-pass-rate"]').innerText(), /50 %/);
    assert.match(await page.locator('[data-test="failures"]').innerText(), /checksum mismatch/);
    const designs = page.locator('[data-test="designs"]');
    assert.equal(await designs.locator('tr[data-design]').count(), 2);

    await markDocument(page);
    const [first, second] = floor.designJobs;
    await designs.locator(`tr[data-design="${first}"]`).getByRole('button', { name: 'Approve' }).click();
    await designs.locator(`tr[data-design="${first}"]`).waitFor({ state: 'detached', timeout: 30000 });
    await page
      .locator('[data-test="result"]', { hasText: `design of engraving job ${first} approved` })
      .waitFor();
    assert.equal(await designs.locator(`tr[data-design="${second}"]`).count(), 1);
    assert.ok(await stillSameDocument(page), 'updated without a reload');
    await screenshot('processing');
  });

  it('a display the dashboard reloads by itself comes back on its own page, not the first one', async () => {
    // Dashboard 2.0 reloads a page whose setup request failed (the runtime was restarting) by
    // sending it to the dashboard's root, which opened the first page (Machines).
    await open('dispatch', 'dispatch-board');
    await page.evaluate(() => {
      window.location.replace(`${window.location.origin}/dashboard?reloadTime=${Date.now()}`);
    });
    await page.waitForURL(/\/dashboard\/dispatch\?reloadTime=/, { timeout: 30000 });
    await page.locator('[data-test="dispatch-board"] h2').first().waitFor({ timeout: 30000 });
  });

  it('after a runtime restart an open page comes back by itself with its board read from the database', async () => {
    await open('dispatch', 'dispatch-board');
    const heading = page.locator('[data-test="dispatch-board"] h2').first();
    const before = Number(/Live products: (\d+)/.exec(await heading.innerText())?.[1]);
    const product = floor.liveProducts[0];
    const port = runtime.httpPort;
    await runtime.stop('SIGTERM');
    // While the runtime is down the product leaves the floor: only the database knows.
    await db.pool.query(`INSERT INTO trackopz.jobs (product_id, state) VALUES ($1, 'OFF')`, [product.id]);
    runtime = await startRuntimeProcess({ dataDir, env: { DATABASE_URL: db.url, PORT: String(port) } });
    // No goto: the page reconnects on its own, reloads, and its feed reads the board again.
    await page
      .locator('[data-test="dispatch-board"] h2', { hasText: `Live products: ${before - 1}` })
      .waitFor({ timeout: 60000 });
    assert.doesNotMatch(
      await page.locator('[data-test="live-products"]').innerText(),
      new RegExp(product.name),
    );
  });

  it('a board template edited in its file shows on the page after a restart', async () => {
    // The runtime's copy of dashboards/ (the repository's files stay as they are).
    const file = path.join(dataDir, 'dashboards-copy', 'templates', 'dispatch', 'ff-dash-dispatch-board.vue');
    const opening = '<div class="ff-board" data-test="dispatch-board">';
    const text = fs.readFileSync(file, 'utf8');
    assert.ok(text.includes(opening), 'the dispatch board template opens with its board element');
    fs.writeFileSync(
      file,
      text.replace(opening, `${opening}\n    <p data-test="edited-in-file">Edited in its template file</p>`),
    );
    await runtime.stop('SIGTERM');
    runtime = await startRuntimeProcess({ dataDir, env: { DATABASE_URL: db.url } });
    await open('dispatch', 'dispatch-board');
    await page.locator('[data-test="edited-in-file"]', { hasText: 'Edited in its template file' }).waitFor();
  });
});
