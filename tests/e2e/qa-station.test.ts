// The engraving QA station page in a real browser against the real runtime process: an
// operator fails an engraved item with defect notes, the item goes back to be re-engraved, the
// page shows the result live, and the QA record names the operator and keeps the notes. A
// viewer's press is refused on the server and writes nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { addUser, loginInBrowser } from '../support/logins';
import { type TestDatabase, createTestDatabase, waitFor } from '../support/db';
import { REPO_ROOT, type RuntimeProcess, startRuntimeProcess, tempDir } from '../support/runtime-process';

const SHOTS = path.join(REPO_ROOT, 'test-output', 'dashboards');

describe('QA station page in a browser', function () {
  this.timeout(180000);
  let db: TestDatabase;
  let runtime: RuntimeProcess;
  let browser: Browser;
  const jobs: string[] = [];

  before(async function () {
    fs.mkdirSync(SHOTS, { recursive: true });
    db = await createTestDatabase();
    await db.pool.query(
      `INSERT INTO engraving.items (id, name, stock_available, max_lines) VALUES ('cup-10', 'Cup 10 in', 5, 3)`,
    );
    // Two items engraved and waiting at the QA station.
    for (const customer of ['cust-qa-1', 'cust-qa-2']) {
      const row = await db.pool.query<{ id: string }>(
        `INSERT INTO engraving.engraving_jobs (customer_id, item_id, text, due_date, status, machine_id, stock_reserved, sent_at)
         VALUES ($1, 'cup-10', '["Club Champion", "2026"]', now() + interval '2 days', 'qa', 'engraver-1', true, now())
         RETURNING id::text AS id`,
        [customer],
      );
      jobs.push(row.rows[0].id);
    }
    runtime = await startRuntimeProcess({ dataDir: tempDir(), env: { DATABASE_URL: db.url } });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await runtime?.stop('SIGKILL');
    await db?.drop();
  });

  async function openAs(role: 'operator' | 'viewer', name: string): Promise<Page> {
    const password = addUser(runtime.env, name, role);
    const page = await browser.newPage({ viewport: { width: 1600, height: 1200 } });
    await loginInBrowser(page, runtime.baseUrl, name, password, '/dashboard/qa');
    await page.goto(`${runtime.baseUrl}/dashboard/qa`);
    await page.locator('[data-test="awaiting-qa"]').waitFor({ timeout: 30000 });
    return page;
  }

  it('an operator fails an item with defect notes: it goes back to be re-engraved, the page shows it live, and the record names the operator', async () => {
    const page = await openAs('operator', 'quinn');
    await page.evaluate(() => {
      (window as unknown as { floorflowMark: boolean }).floorflowMark = true;
    });
    const row = page.locator(`[data-test="awaiting-qa"] tr[data-job="${jobs[0]}"]`);
    await row.waitFor({ timeout: 30000 });
    assert.match(await row.innerText(), /Club Champion/);
    const fail = row.locator('[data-test="qa-reengrave"]');
    assert.equal(await fail.isDisabled(), true, 'a failure needs defect notes');
    await row.locator('[data-test="defect-notes"]').fill('letters too shallow on line 2');
    await fail.click();
    await page
      .locator('[data-test="result"]', {
        hasText: `engraving job ${jobs[0]} failed QA (attempt 1) and goes back`,
      })
      .waitFor({ timeout: 30000 });
    await row.waitFor({ state: 'detached', timeout: 30000 });
    await page
      .locator('[data-test="qa-results"] tr', { hasText: 'letters too shallow on line 2' })
      .waitFor({ timeout: 30000 });
    await page.screenshot({ path: path.join(SHOTS, 'qa-station.png'), fullPage: true });
    const recorded = await db.pool.query(
      `SELECT attempt, passed, inspector, notes FROM engraving.qa_results WHERE job_id = $1`,
      [jobs[0]],
    );
    assert.deepEqual(recorded.rows, [
      { attempt: 1, passed: false, inspector: 'quinn', notes: 'letters too shallow on line 2' },
    ]);
    const job = await db.pool.query(
      `SELECT status, qa_attempts FROM engraving.engraving_jobs WHERE id = $1`,
      [jobs[0]],
    );
    assert.deepEqual(job.rows, [{ status: 'queued', qa_attempts: 1 }]);
    assert.ok(
      await page.evaluate(() => (window as unknown as { floorflowMark?: boolean }).floorflowMark === true),
      'updated without a reload',
    );
    await page.close();
  });

  it("a viewer's Pass is refused on the server and writes nothing", async () => {
    const page = await openAs('viewer', 'vera');
    const row = page.locator(`[data-test="awaiting-qa"] tr[data-job="${jobs[1]}"]`);
    await row.waitFor({ timeout: 30000 });
    await row.locator('[data-test="qa-pass"]').click();
    await page.locator('[data-test="result"]').waitFor({ timeout: 30000 });
    await waitFor(
      async () => (await page.locator('[data-test="result"]').innerText()).length > 0,
      'a refusal',
    );
    const results = await db.pool.query(
      `SELECT count(*)::int AS n FROM engraving.qa_results WHERE job_id = $1`,
      [jobs[1]],
    );
    assert.equal(results.rows[0].n, 0);
    assert.equal(await row.isVisible(), true);
    await page.close();
  });
});
