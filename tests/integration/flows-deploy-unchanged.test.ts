// A deploy that changes nothing changes no file: the shipped flows, run as a plant runs them
// (`floorflow start` on copies of flows/ and dashboards/), are read back through Node-RED's
// admin API and deployed unchanged (a full deploy, as the editor sends it, and each tab on its
// own through the flow endpoint), and then through the editor itself. Once, a deploy of one
// edited comment rewrote two untouched tabs and raised their versions (docs/flows.md).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Browser, Page } from 'playwright-core';
import { withoutDerived } from '../../core/editor-form';
import { FlowNode, separateTemplates, splitFlows, stringifyFlowFile } from '../../core/flow-files';
import { listFlowFiles, readFlowFiles } from '../../runtime/flow-runtime';
import { launchChromium } from '../support/browser';
import { TestDatabase, createTestDatabase, waitFor } from '../support/db';
import { RuntimeProcess, REPO_ROOT, startRuntimeProcess, tempDir } from '../support/runtime-process';

const ADMIN_PASSWORD = 'deploy-unchanged-password';

/** Every file under the two directories, by relative path, with its text. */
function snapshot(dirs: string[]): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (root: string, sub: string) => {
    for (const entry of fs.readdirSync(path.join(root, sub), { withFileTypes: true })) {
      const rel = path.join(sub, entry.name);
      if (entry.isDirectory()) walk(root, rel);
      else files.set(path.join(path.basename(root), rel), fs.readFileSync(path.join(root, rel), 'utf8'));
    }
  };
  for (const dir of dirs) walk(dir, '');
  return files;
}

function changedFiles(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...new Set([...before.keys(), ...after.keys()])]
    .filter((f) => before.get(f) !== after.get(f))
    .sort();
}

/** The first lines of each changed file that were not there before, for a failure message. */
function describeChanges(before: Map<string, string>, after: Map<string, string>): string {
  return changedFiles(before, after)
    .map((f) => {
      const old = new Set((before.get(f) ?? '').split('\n'));
      const added = (after.get(f) ?? '').split('\n').filter((l) => !old.has(l));
      const removed = (before.get(f) ?? '')
        .split('\n')
        .filter((l) => !new Set((after.get(f) ?? '').split('\n')).has(l));
      return `${f}:\n${[...removed.slice(0, 6).map((l) => `  - ${l.trim()}`), ...added.slice(0, 6).map((l) => `  + ${l.trim()}`)].join('\n')}`;
    })
    .join('\n');
}

describe('deploying the shipped flows unchanged', function () {
  this.timeout(240000);
  let work: string;
  let dirs: string[];
  let db: TestDatabase;
  let runtime: RuntimeProcess;
  let token: string;
  let browser: Browser | undefined;
  let editorPage: Page | undefined;

  const admin = async (
    route: string,
    init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
  ) => {
    const res = await fetch(`${runtime.baseUrl}/editor${route}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${token}`,
        'Node-RED-API-Version': 'v2',
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    const text = await res.text();
    assert.ok(res.ok, `${init.method ?? 'GET'} /editor${route}: ${res.status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  /** A file's path in the runtime's copy, from its name in the manifest. */
  const pathOf = (file: string) =>
    file.startsWith('dashboards/')
      ? path.join(dirs[1], file.slice('dashboards/'.length))
      : path.join(dirs[0], file.slice('flows/'.length));
  const deployments = async () =>
    Number((await db.pool.query('SELECT count(*) FROM floorflow.flow_deployments')).rows[0].count);

  before(async () => {
    work = tempDir('ff-deploy-unchanged-');
    // Every shipped file as it is in the working tree: the test covers whatever tabs exist.
    for (const dir of ['flows', 'dashboards'])
      fs.cpSync(path.join(REPO_ROOT, dir), path.join(work, dir), { recursive: true });
    dirs = [path.join(work, 'flows'), path.join(work, 'dashboards')];
    db = await createTestDatabase();
    runtime = await startRuntimeProcess({
      dataDir: path.join(work, 'data'),
      copyFlows: false,
      env: {
        DATABASE_URL: db.url,
        FLOORFLOW_FLOWS_DIR: dirs[0],
        FLOORFLOW_DASHBOARDS_DIR: dirs[1],
        FLOORFLOW_ADMIN_PASSWORD: ADMIN_PASSWORD,
        FLOORFLOW_API_TOKEN: 'deploy-unchanged-api-token-0123456789',
      },
    });
    const login = await fetch(`${runtime.baseUrl}/editor/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: runtime.baseUrl },
      body: JSON.stringify({
        client_id: 'node-red-admin',
        grant_type: 'password',
        scope: '*',
        username: 'admin',
        password: ADMIN_PASSWORD,
      }),
    });
    assert.equal(login.status, 200, await login.clone().text());
    token = ((await login.json()) as { access_token: string }).access_token;
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await runtime?.stop('SIGINT');
    await db?.drop();
    if (process.env.FLOORFLOW_E2E_KEEP === '1') console.log(`    kept ${work}`);
    else if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('a full deploy of the flows read through the admin API changes no file and raises no version', async () => {
    const before = snapshot(dirs);
    const { flows, rev } = (await admin('/flows')) as { flows: FlowNode[]; rev: string };
    assert.ok(
      flows.some((n) => n.type === 'tab'),
      'the admin API serves the shipped tabs',
    );
    const count = await deployments();
    await admin('/flows', {
      method: 'POST',
      body: { flows, rev },
      headers: { 'Node-RED-Deployment-Type': 'full' },
    });
    await waitFor(async () => (await deployments()) > count, 'the deploy recorded', 30000);
    const after = snapshot(dirs);
    assert.deepEqual(changedFiles(before, after), [], describeChanges(before, after));
  });

  it('each tab deployed on its own through the flow endpoint changes no file', async () => {
    const before = snapshot(dirs);
    const { flows } = (await admin('/flows')) as { flows: FlowNode[] };
    const tabs = flows.filter((n) => n.type === 'tab');
    const shipped = listFlowFiles({ flowsDir: dirs[0], dashboardsDir: dirs[1] }).length;
    // Every tab file of both directories, plus the two config files.
    assert.equal(tabs.length + 2, shipped, 'every shipped tab is deployed');
    for (const tab of tabs) {
      const count = await deployments();
      const flow = (await admin(`/flow/${encodeURIComponent(tab.id)}`)) as Record<string, unknown>;
      await admin(`/flow/${encodeURIComponent(tab.id)}`, { method: 'PUT', body: flow });
      await waitFor(async () => (await deployments()) > count, `the deploy of ${tab.id} recorded`, 30000);
    }
    const after = snapshot(dirs);
    assert.deepEqual(changedFiles(before, after), [], describeChanges(before, after));
  });

  it('a full deploy from the editor changes no file, and the editor exports every file exactly as shipped', async () => {
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    editorPage = page;
    await page.goto(`${runtime.baseUrl}/editor/`);
    await page.waitForURL(/\/login\?next=/);
    await page.fill('#username', 'admin');
    await page.fill('#password', ADMIN_PASSWORD);
    await Promise.all([page.waitForURL(`${runtime.baseUrl}/editor/`), page.click('[data-test="login"]')]);
    await page.waitForFunction(
      "typeof RED !== 'undefined' && RED.nodes && RED.nodes.version && RED.nodes.version() && !!RED.nodes.workspace('job-status-tab')",
      undefined,
      { timeout: 60000 },
    );

    // An engineer looks at every tab: the editor lays out each tab's groups when it first draws it.
    for (const tab of (await page.evaluate(
      'RED.nodes.createCompleteNodeSet({ credentials: false }).filter((n) => n.type === "tab").map((n) => n.id)',
    )) as string[]) {
      await page.evaluate(`RED.workspaces.show(${JSON.stringify(tab)})`);
      await page
        .waitForFunction('!document.querySelector(".red-ui-flow-group.dirty")', undefined, { timeout: 5000 })
        .catch(() => undefined);
    }
    // What the editor would write, file by file (split as the storage module splits a deploy).
    const exported = (await page.evaluate(
      'RED.nodes.createCompleteNodeSet({ credentials: false })',
    )) as FlowNode[];
    const shipped = readFlowFiles({ flowsDir: dirs[0], dashboardsDir: dirs[1] });
    const fileOf = new Map(
      shipped.flatMap((f) =>
        f.nodes[0]?.type === 'tab' ? [[f.nodes[0].id, f.file] as [string, string]] : [],
      ),
    );
    // A group's box is left out: the editor measures its members' labels in the browser (docs/flows.md).
    const exportedText = new Map(
      splitFlows(exported, fileOf).map((f) => [f.file, stringifyFlowFile(withoutDerived(f.nodes))]),
    );
    const shippedText = new Map(shipped.map((f) => [f.file, stringifyFlowFile(withoutDerived(f.nodes))]));
    // The rest of each file's form: key order and indentation as a deploy writes them, templates apart.
    assert.deepEqual(
      shipped
        .map((f) => f.file)
        .filter(
          (file) =>
            fs.readFileSync(pathOf(file), 'utf8') !==
            stringifyFlowFile(separateTemplates(shipped.find((f) => f.file === file)!.nodes).nodes),
        ),
      [],
    );

    // Deploy every tab as the editor does when all of them count as changed.
    const before = snapshot(dirs);
    const count = await deployments();
    await page.evaluate('RED.nodes.dirty(true)');
    await page.click('#red-ui-header-button-deploy');
    await waitFor(async () => (await deployments()) > count, 'the editor deploy recorded', 30000);
    const after = snapshot(dirs);
    assert.deepEqual(changedFiles(before, after), [], describeChanges(before, after));

    assert.deepEqual(
      changedFiles(shippedText, exportedText),
      [],
      `the editor writes these shipped files differently (run \`npx floorflow flows format\`):\n${describeChanges(shippedText, exportedText)}`,
    );
  });

  it('a template edited in the editor and deployed is written to its template file, the page file unchanged', async () => {
    assert.ok(browser, 'the editor is open (previous test)');
    const page = editorPage!;
    const vue = path.join(dirs[1], 'templates', 'dispatch', 'ff-dash-dispatch-board.vue');
    const json = fs.readFileSync(path.join(dirs[1], 'dispatch.json'), 'utf8');
    const before = fs.readFileSync(vue, 'utf8');
    const count = await deployments();
    // The template's new text in the node, as the template editor's Done leaves it, and the
    // editor's full deploy of its own serialisation (what its Deploy button posts; without the
    // revision, which the previous test's deploy left stale in this page).
    const status = await page.evaluate(`(async () => {
      const node = RED.nodes.node('ff-dash-dispatch-board');
      node.format = node.format.replace('Loading products…', 'Loading the live products…');
      const res = await fetch('flows', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'Node-RED-API-Version': 'v2',
          'Node-RED-Deployment-Type': 'full',
        },
        body: JSON.stringify({ flows: RED.nodes.createCompleteNodeSet() }),
      });
      return res.status;
    })()`);
    assert.equal(status, 200);
    await waitFor(async () => (await deployments()) > count, 'the editor deploy recorded', 30000);
    assert.equal(
      fs.readFileSync(vue, 'utf8'),
      before.replace('Loading products…', 'Loading the live products…'),
    );
    assert.equal(fs.readFileSync(path.join(dirs[1], 'dispatch.json'), 'utf8'), json);
  });
});
