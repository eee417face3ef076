// The Workpanel and the processing page's Recover button in a real
// browser against the real runtime process with seeded data: each button pressed once by an
// operator, the change seen live without a reload, and its record naming the operator.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { type SeededFloor, seedFloor } from '../support/dashboard-fixtures';
import { addUser, loginInBrowser } from '../support/logins';
import { type TestDatabase, createTestDatabase, waitFor } from '../support/db';
import { REPO_ROOT, type RuntimeProcess, startRuntimeProcess, tempDir } from '../support/runtime-process';

const SHOTS = path.join(REPO_ROOT, 'test-output', 'dashboards');

describe('Workpanel and processing recovery in a browser', function () {
  this.timeout(180000);
  let db: TestDatabase;
  let runtime: RuntimeProcess;
  let browser: Browser;
  let page: Page;
  let floor: SeededFloor;

  before(async function () {
    fs.mkdirSync(SHOTS, { recursive: true });
    db = await createTestDatabase();
    floor = await seedFloor(db.pool, new Date());
    runtime = await startRuntimeProcess({ dataDir: tempDir(), env: { DATABASE_URL: db.url } });
    const password = addUser(runtime.env, 'olga', 'operator');
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1600, height: 1200 } });
    await loginInBrowser(page, runtime.baseUrl, 'olga', password, '/dashboard/workpanel');
  });

  after(async () => {
    await browser?.close();
    await runtime?.stop('SIGKILL');
    await db?.drop();
  });

  async function open(pagePath: string, board: string): Promise<void> {
    await page.goto(`${runtime.baseUrl}/dashboard/${pagePath}`);
    await page.locator(`[data-test="${board}"] h2`).first().waitFor({ timeout: 30000 });
    await page.evaluate(() => {
      (window as unknown as { floorflowMark: boolean }).floorflowMark = true;
    });
  }

  const sameDocument = () =>
    page.evaluate(() => (window as unknown as { floorflowMark?: boolean }).floorflowMark === true);

  it('Workpanel: lists live and past products; in a live product\'s details "Record finished" and "Move to Past" act live, and "Reactivate" brings it back', async () => {
    await open('workpanel', 'workpanel-board');
    const live = page.locator('[data-test="live-products"]');
    const past = page.locator('[data-test="past-products"]');
    for (const p of floor.liveProducts) assert.match(await live.innerText(), new RegExp(p.name));
    assert.match(await past.innerText(), /Shield oak/);

    const product = floor.liveProducts[0];
    await live.locator(`tr[data-product="${product.id}"]`).getByRole('button', { name: 'Details' }).click();
    const details = page.locator(`[data-test="product-details"][data-product="${product.id}"]`);
    await details.waitFor({ timeout: 30000 });
    assert.match(await details.locator('[data-test="details-state"]').innerText(), /live/i);

    // Record finished: the machine list is trackopz.machines, which follows the registered machines.
    await details.locator('[data-test="machine-picker"]').selectOption('embosser-1');
    await details.locator('[data-test="quantity"]').fill('5');
    await details.locator('[data-test="record-finished"]').click();
    await page.locator('[data-test="result"]', { hasText: /5 finished .* recorded on embosser-1/ }).waitFor();
    await details
      .locator('[data-test="details-updates"] tr', { hasText: 'olga' })
      .waitFor({ timeout: 30000 });
    await page
      .locator('[data-test="latest-updates"] tr', { hasText: product.name })
      .waitFor({ timeout: 30000 });
    const recorded = await db.pool.query(
      `SELECT operator_id, machine_id, quantity FROM trackopz.operator_product_updates WHERE product_id = $1`,
      [product.id],
    );
    assert.deepEqual(recorded.rows, [{ operator_id: 'olga', machine_id: 'embosser-1', quantity: 5 }]);

    // Move to Past: the product leaves the live list and shows among the past ones.
    await details.locator('[data-test="reason"]').selectOption('dispatched');
    await details.locator('[data-test="move-to-past"]').click();
    await live.locator(`tr[data-product="${product.id}"]`).waitFor({ state: 'detached', timeout: 30000 });
    await past
      .locator(`tr[data-product="${product.id}"]`, { hasText: 'dispatched' })
      .waitFor({ timeout: 30000 });
    await details.locator('[data-test="reactivate"]').waitFor({ timeout: 30000 });
    await page.screenshot({ path: path.join(SHOTS, 'workpanel.png'), fullPage: true });

    // Reactivate: live again.
    await details.locator('[data-test="reactivate"]').click();
    await live.locator(`tr[data-product="${product.id}"]`).waitFor({ timeout: 30000 });
    const moves = await db.pool.query(
      `SELECT action, actor, source, reason FROM trackopz.product_transitions WHERE product_id = $1 ORDER BY id`,
      [product.id],
    );
    assert.deepEqual(
      moves.rows.map((m) => [m.action, m.actor, m.source]),
      [
        ['move_to_past', 'olga', 'workpanel'],
        ['reactivate', 'olga', 'workpanel'],
      ],
    );
    assert.equal(moves.rows[0].reason, 'dispatched');
    assert.ok(await sameDocument(), 'updated without a reload');
  });

  it('Processing: "Logs" shows a failed job\'s log rows, and "Recover" resets it under the operator; the button leaves with the failure', async () => {
    await open('processing', 'processing-board');
    const failed = await db.pool.query<{ id: string }>(
      `SELECT j.id::text AS id FROM processing.processing_jobs j JOIN processing.orders o ON o.id = j.order_id
       WHERE o.order_number = 'ORD-502'`,
    );
    const jobId = failed.rows[0].id;
    // Logs first, as an operator reads why it failed before running it again.
    await db.pool.query(
      `INSERT INTO processing.processing_job_logs (job_id, level, category, stage, message, error_code)
       VALUES ($1, 'error', 'system', 'verification', 'USB verification failed: checksum mismatch', 'PROCESSING_FAILED')`,
      [jobId],
    );
    await page.locator(`[data-test="failures"] button[data-logs="${jobId}"]`).click();
    await page
      .locator('[data-test="processing-logs"]', { hasText: `Logs of processing job ${jobId}` })
      .waitFor({ timeout: 30000 });
    assert.match(await page.locator('[data-test="processing-logs"]').innerText(), /checksum mismatch/);

    const button = page.locator(`[data-test="failures"] button[data-recover="${jobId}"]`);
    await button.click();
    await page
      .locator('[data-test="result"]', { hasText: `processing job ${jobId} (ORD-502) reset` })
      .waitFor({ timeout: 30000 });
    await button.waitFor({ state: 'detached', timeout: 30000 });
    const audit = await db.pool.query(
      `SELECT actor, source FROM floorflow.lifecycle_transitions
       WHERE lifecycle = 'processing-job' AND entity_id = $1 AND action = 'reset'`,
      [jobId],
    );
    assert.deepEqual(audit.rows, [{ actor: 'olga', source: 'manual recovery' }]);
    await waitFor(
      async () =>
        (await db.pool.query(`SELECT status FROM processing.processing_jobs WHERE id = $1`, [jobId])).rows[0]
          .status !== 'failed' || undefined,
      'the job out of failed',
      30000,
    );
    assert.ok(await sameDocument(), 'updated without a reload');
  });
});
