// Logins in a real browser (Chromium through tests/support/browser.ts) against the runtime
// process with the shipped flows: what an anonymous visitor sees, a floor display opened by its
// link (live, read-only, cut off when revoked), and the dispatch page's EventSource on a logged-in page.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { type SeededFloor, seedFloor } from '../support/dashboard-fixtures';
import { type TestDatabase, createTestDatabase } from '../support/db';
import { addDisplay, addUser, loginInBrowser } from '../support/logins';
import { REPO_ROOT, type RuntimeProcess, runCli, startRuntimeProcess } from '../support/runtime-process';

const SHOTS = path.join(REPO_ROOT, 'test-output', 'access');
const API_TOKEN = 'browser-access-api-token-0123456789';

describe('logins in a browser: the login page, display links and the live stream', function () {
  this.timeout(240000);
  let db: TestDatabase;
  let runtime: RuntimeProcess;
  let browser: Browser;
  let floor: SeededFloor;
  const pages: Page[] = [];

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    db = await createTestDatabase();
    floor = await seedFloor(db.pool, new Date());
    runtime = await startRuntimeProcess({ env: { DATABASE_URL: db.url, FLOORFLOW_API_TOKEN: API_TOKEN } });
    browser = await launchChromium();
  });

  /** A fresh browser profile: its own cookies, like another computer on the floor. */
  async function freshPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    pages.push(page);
    return page;
  }

  afterEach(async () => {
    for (const p of pages.splice(0)) await p.context().close();
  });

  after(async () => {
    await browser?.close();
    await runtime?.stop('SIGINT');
    await db?.drop();
  });

  it('an anonymous visitor sees the login page and no data on /dashboard and /editor', async () => {
    const page = await freshPage();
    for (const target of ['/dashboard/embossing', '/editor/']) {
      const response = await page.goto(`${runtime.baseUrl}${target}`);
      assert.equal(response?.status(), 200);
      assert.match(page.url(), /\/login\?next=/, target);
      await page.locator('#username').waitFor();
      const text = await page.locator('body').innerText();
      assert.match(text, /floorflow: log in/);
      assert.doesNotMatch(text, /AB-1001|embosser-1|Embossing queue/, 'no plant data on the login page');
    }
    await page.screenshot({ path: path.join(SHOTS, 'login.png') });
    await page.fill('#username', 'admin');
    await page.fill('#password', 'not-the-password');
    await page.click('[data-test="login"]');
    assert.match(await page.locator('[data-test="login-error"]').innerText(), /wrong user name or password/);
  });

  it('a display link shows its pages and updates live, but every action is refused and nothing is written; revoked, it is logged out within a minute', async () => {
    const link = addDisplay(runtime.env, 'line-2', ['machines', 'embossing']);
    const page = await freshPage();
    await page.goto(`${runtime.baseUrl}${link}`);
    await page.waitForURL(`${runtime.baseUrl}/dashboard/machines`);
    await page.locator('[data-test="machines-board"] h2').first().waitFor({ timeout: 30000 });

    // Live: a machine registered now appears without a reload (the board re-reads every 5 s).
    await page.evaluate(() => ((window as unknown as { mark: boolean }).mark = true));
    assert.equal(runCli(['machine', 'add', 'engraver-5', '--kind', 'engraver'], runtime.env).status, 0);
    await page.locator('tr[data-machine="engraver-5"]').waitFor({ timeout: 30000 });
    assert.ok(
      await page.evaluate(() => (window as unknown as { mark?: boolean }).mark === true),
      'no reload',
    );

    // A page the display was not given leads back to its own.
    await page.goto(`${runtime.baseUrl}/dashboard/dispatch`);
    await page.waitForURL(`${runtime.baseUrl}/dashboard/machines`);

    await page.goto(`${runtime.baseUrl}/dashboard/embossing`);
    await page.locator('[data-test="embossing-board"] h2').first().waitFor({ timeout: 30000 });
    const jobs = async () =>
      Number((await db.pool.query('SELECT count(*) FROM embossing.embossing_jobs')).rows[0].count);
    const jobsBefore = await jobs();
    await page.locator('[data-test="plate-list"] label', { hasText: 'AB-1002' }).locator('input').check();
    await page.locator('[data-test="send-to-embosser"]').click();
    await page.locator('[data-test="result"]', { hasText: /display only shows the floor/ }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'display-refused.png') });
    assert.equal(await jobs(), jobsBefore, 'nothing written');
    const plate = floor.plates.find((p) => p.plate_number === 'AB-1002')!;
    const status = await db.pool.query(`SELECT status FROM embossing.plates WHERE id = $1`, [plate.id]);
    assert.equal(status.rows[0].status, 'ready_for_embossing');

    const revokedAt = Date.now();
    assert.equal(runCli(['display', 'revoke', 'line-2'], runtime.env).status, 0);
    // No goto: the open page is cut off, reconnects, reloads and lands on the login page.
    await page.waitForURL(/\/login\?next=/, { timeout: 60000 });
    console.log(
      `    the revoked display reached the login page ${Math.round((Date.now() - revokedAt) / 1000)} s after revoke`,
    );
    await page.locator('#username').waitFor();
  });

  it("EventSource('/api/live-products/dispatchable/stream') on a logged-in page receives connection_established and product_moved_to_past", async () => {
    const password = addUser(runtime.env, 'olga', 'operator');
    const page = await freshPage();
    await loginInBrowser(page, runtime.baseUrl, 'olga', password, '/dashboard/dispatch');
    // The dispatch page's own front-end code, run in the page: no header, only the session cookie.
    await page.evaluate(() => {
      const w = window as unknown as { streamed: string[] };
      w.streamed = [];
      const eventSource = new EventSource('/api/live-products/dispatchable/stream');
      eventSource.onmessage = (event) => {
        w.streamed.push((JSON.parse(event.data) as { type: string }).type);
      };
    });
    await page.waitForFunction(
      () => (window as unknown as { streamed: string[] }).streamed.includes('connection_established'),
      undefined,
      { timeout: 30000 },
    );
    const product = floor.liveProducts[1];
    // The page's lifecycle call: same origin, with the cookie, as the operator.
    const answer = await page.evaluate(async (productId) => {
      const response = await fetch('/api/products/lifecycle', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ productId, action: 'move_to_past', reason: 'dispatched' }),
      });
      return { status: response.status, body: (await response.json()) as { data?: { actor?: string } } };
    }, product.id);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.data?.actor, 'olga');
    await page.waitForFunction(
      () => (window as unknown as { streamed: string[] }).streamed.includes('product_moved_to_past'),
      undefined,
      { timeout: 30000 },
    );
  });
});
