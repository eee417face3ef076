// The editing cycle end to end: the real runtime as a child process on copies of the shipped
// flows, the Node-RED editor in headless Chromium, one property changed and deployed.
// The deploy must come back as a few-line change in one flow file (plus the manifest) and a
// flow_deployments row, which is what makes flows reviewable in git.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { stringifyFlowFile } from '../../core/flow-files';
import { nextManifest, readFlowFiles, readManifest, writeManifest } from '../../runtime/flow-runtime';
import { TestDatabase, createTestDatabase, waitFor } from '../support/db';
import { PROJECT_ROOT } from '../support/flow-kit';
import { RuntimeProcess, startRuntimeProcess, tempDir } from '../support/runtime-process';

const ADMIN_PASSWORD = 'editor-test-password';
const SCREENSHOTS = path.join(PROJECT_ROOT, 'test-output');

/** A small tab written the way the editor writes it, so only the edited property can change. */
const EDITOR_TAB = [
  { id: 'e2e-tab', type: 'tab', label: 'Editor test', disabled: false, env: [], info: '' },
  {
    id: 'e2e-note',
    type: 'comment',
    z: 'e2e-tab',
    name: 'written by hand',
    info: '',
    wires: [],
    x: 200,
    y: 80,
  },
];

/** Every file under dir, by relative path, with its text. */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (sub: string) => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = path.join(sub, entry.name);
      if (entry.isDirectory()) walk(rel);
      else files.set(rel, fs.readFileSync(path.join(dir, rel), 'utf8'));
    }
  };
  walk('');
  return files;
}

/** Lines removed plus lines added between two texts (a line diff's size, without the diff). */
function changedLines(before: string, after: string): number {
  const count = (lines: string[]) =>
    lines.reduce((m, l) => m.set(l, (m.get(l) ?? 0) + 1), new Map<string, number>());
  const a = count(before.split('\n'));
  const b = count(after.split('\n'));
  let changed = 0;
  for (const line of new Set([...a.keys(), ...b.keys()]))
    changed += Math.abs((a.get(line) ?? 0) - (b.get(line) ?? 0));
  return changed;
}

/** The first lines of `after` that `before` does not have, for a failure message. */
function newLines(before: string, after: string): string {
  const old = new Set(before.split('\n'));
  return after
    .split('\n')
    .filter((l) => !old.has(l))
    .slice(0, 12)
    .map((l) => `  + ${l.trim()}`)
    .join('\n');
}

describe('editing a flow in the editor', function () {
  this.timeout(180000);
  let work: string;
  let db: TestDatabase | undefined;
  let runtime: RuntimeProcess | undefined;
  let browser: Browser | undefined;

  afterEach(async () => {
    await browser?.close().catch(() => undefined);
    await runtime?.stop('SIGINT');
    await db?.drop();
    // FLOORFLOW_E2E_KEEP=1 keeps the flow files and the runtime's log for a look after a failure.
    if (process.env.FLOORFLOW_E2E_KEEP === '1') console.log(`    kept ${work}`);
    else if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('a property changed and deployed in the editor is a few-line change in one flow file, plus the manifest and a deployment row', async () => {
    work = tempDir('ff-editor-');
    // The committed flows and dashboards, plus the small tab this test edits.
    const tar = execFileSync('git', ['archive', 'HEAD', 'flows', 'dashboards'], { cwd: PROJECT_ROOT });
    execFileSync('tar', ['-x', '-C', work], { input: tar });
    const dirs = { flowsDir: path.join(work, 'flows'), dashboardsDir: path.join(work, 'dashboards') };
    fs.mkdirSync(dirs.dashboardsDir, { recursive: true });
    fs.writeFileSync(path.join(dirs.flowsDir, 'editor-test.json'), stringifyFlowFile(EDITOR_TAB));
    writeManifest(dirs, nextManifest(readManifest(dirs), readFlowFiles(dirs)));
    const before = snapshot(work);

    db = await createTestDatabase();
    runtime = await startRuntimeProcess({
      dataDir: path.join(work, 'data'),
      copyFlows: false,
      env: {
        DATABASE_URL: db.url,
        FLOORFLOW_FLOWS_DIR: dirs.flowsDir,
        FLOORFLOW_DASHBOARDS_DIR: dirs.dashboardsDir,
        FLOORFLOW_ADMIN_PASSWORD: ADMIN_PASSWORD,
        FLOORFLOW_API_TOKEN: 'editor-test-api-token-0123456789',
      },
    });
    const deploymentsBefore = Number(
      (await db.pool.query('SELECT count(*) FROM floorflow.flow_deployments')).rows[0].count,
    );

    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    // The editor sends a visitor to the one login page; an engineer comes back to the editor.
    await page.goto(`${runtime.baseUrl}/editor/`);
    await page.waitForURL(/\/login\?next=/);
    await page.fill('#username', 'admin');
    await page.fill('#password', ADMIN_PASSWORD);
    await Promise.all([page.waitForURL(`${runtime.baseUrl}/editor/`), page.click('[data-test="login"]')]);
    await page.waitForFunction(
      "typeof RED !== 'undefined' && RED.nodes && !!RED.nodes.node('e2e-note')",
      undefined,
      {
        timeout: 60000,
      },
    );

    // The way an engineer does it: open the tab, double-click the node, rename it, Done, Deploy.
    const deployments = async () =>
      Number((await db!.pool.query('SELECT count(*) FROM floorflow.flow_deployments')).rows[0].count);
    const renameAndDeploy = async (name: string) => {
      const count = await deployments();
      await page.click('#red-ui-tab-e2e-tab a');
      await page.dblclick('g#e2e-note rect.red-ui-flow-node');
      await page.fill('#node-input-name', name);
      await page.click('#node-dialog-ok');
      await page.click('#red-ui-header-button-deploy');
      await waitFor(async () => (await deployments()) > count, 'a new floorflow.flow_deployments row', 30000);
    };
    const changedFiles = (from: Map<string, string>, to: Map<string, string>) =>
      [...new Set([...from.keys(), ...to.keys()])]
        .filter((f) => !f.startsWith(`data${path.sep}`) && from.get(f) !== to.get(f))
        .sort();

    // The first deploy also writes every file the way the editor exports it (hand-written
    // files may lack properties the editor adds); say which, since `flows format` and a
    // first deploy are how a plant gets there.
    await renameAndDeploy('renamed once');
    const normalized = snapshot(work);
    const rewritten = changedFiles(before, normalized).filter(
      (f) => !f.endsWith('editor-test.json') && !f.endsWith('manifest.json'),
    );
    if (rewritten.length > 0) {
      console.log(`    note: the first deploy also rewrote ${rewritten.join(', ')} in the editor's form:`);
      for (const f of rewritten) console.log(newLines(before.get(f) ?? '', normalized.get(f) ?? ''));
    }
    assert.equal(
      (await db.pool.query('SELECT count(*) FROM floorflow.flow_deployments')).rows[0].count,
      String(deploymentsBefore + 1),
    );

    await renameAndDeploy('renamed in the editor');
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'editor-deploy.png') });

    const after = snapshot(work);
    const changed = changedFiles(normalized, after);
    const unexpected = changed.filter(
      (f) => !['editor-test.json', 'manifest.json'].includes(path.basename(f)),
    );
    assert.deepEqual(
      changed,
      [path.join('flows', 'editor-test.json'), path.join('flows', 'manifest.json')],
      `the deploy rewrote other files too:\n${unexpected.map((f) => `${f}:\n${newLines(normalized.get(f) ?? '', after.get(f) ?? '')}`).join('\n')}`,
    );
    const flowFile = path.join('flows', 'editor-test.json');
    // The name, and x when the wider label moves the node's centre: a two- to four-line diff.
    assert.ok(changedLines(normalized.get(flowFile)!, after.get(flowFile)!) <= 4, 'a few lines');
    const noteOf = (text: string) =>
      (JSON.parse(text) as Array<Record<string, unknown>>).find((n) => n.id === 'e2e-note')!;
    const [was, now] = [noteOf(normalized.get(flowFile)!), noteOf(after.get(flowFile)!)];
    const changedProperties = Object.keys(now).filter(
      (k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]),
    );
    assert.deepEqual(
      changedProperties.filter((k) => k !== 'x'),
      ['name'],
    );
    assert.equal(now.name, 'renamed in the editor');
    const manifestFile = path.join('flows', 'manifest.json');
    assert.ok(
      changedLines(normalized.get(manifestFile)!, after.get(manifestFile)!) <= 4,
      'version and hash of one flow',
    );

    const manifest = JSON.parse(after.get(manifestFile)!) as { flows: Record<string, { version: string }> };
    assert.equal(manifest.flows['flows/editor-test.json'].version, '1.0.2');
    const row = (
      await db.pool.query<{ deployed_by: string; flows: Array<{ file: string; version: string }> }>(
        'SELECT deployed_by, flows FROM floorflow.flow_deployments ORDER BY id DESC LIMIT 1',
      )
    ).rows[0];
    assert.equal(row.deployed_by, 'admin');
    assert.equal(row.flows.find((f) => f.file === 'flows/editor-test.json')?.version, '1.0.2');
  });
});
