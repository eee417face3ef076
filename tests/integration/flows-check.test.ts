import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flowsCommand } from '../../cli/flows';
import { PROJECT_ROOT } from '../support/flow-kit';

const FIXTURES = path.join(PROJECT_ROOT, 'tests', 'fixtures', 'flows-check');

interface Run {
  code: number;
  errors: string[];
  lines: string[];
}

async function run(args: string[], flowsDir = path.join(PROJECT_ROOT, 'flows')): Promise<Run> {
  const errors: string[] = [];
  const lines: string[] = [];
  const code = await flowsCommand({ flowsDir, dashboardsDir: path.join(PROJECT_ROOT, 'dashboards') }, args, {
    log: (l) => lines.push(l),
    error: (l) => errors.push(l),
  });
  return { code, errors, lines };
}

const checkFixture = (name: string) => run(['check', '--dir', path.join(FIXTURES, name, 'flows')]);

describe('floorflow flows check', () => {
  it('passes the shipped flows/ and dashboards/', async () => {
    const result = await run(['check']);
    assert.deepEqual(result.errors, []);
    assert.equal(result.code, 0);
  });

  it('passes a valid fixture using core, floorflow and config nodes', async () => {
    const result = await checkFixture('valid');
    assert.deepEqual(result.errors, []);
    assert.equal(result.code, 0);
    assert.match(result.lines.at(-1)!, /2 files .*: 0 errors, 0 warnings/);
  });

  it('reports a file that is not JSON with its line and column, and fails', async () => {
    const result = await checkFixture('json-error');
    assert.equal(result.code, 1);
    assert.equal(result.errors.length, 1);
    assert.match(
      result.errors[0],
      /^error flows\/broken\.json: not valid JSON: .*\(line 9, column 5\) \[json\]$/,
    );
  });

  it('reports an unknown node type with file and node id', async () => {
    const result = await checkFixture('unknown-type');
    assert.equal(result.code, 1);
    assert.deepEqual(result.errors, [
      'error flows/line.json node line-gizmo: acme-gizmo "gizmo": unknown node type acme-gizmo (not a Node-RED core node, nor in an installed package) [unknown-type]',
    ]);
  });

  it('names the node type that replaces one of an earlier release that did many things by its action', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-check-'));
    fs.cpSync(path.join(FIXTURES, 'unknown-type', 'flows'), path.join(dir, 'flows'), { recursive: true });
    const flowsDir = path.join(dir, 'flows');
    const file = path.join(flowsDir, 'line.json');
    const nodes = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<Record<string, unknown>>;
    Object.assign(nodes[1], { type: 'floorflow-embossing', action: 'create' });
    fs.writeFileSync(file, JSON.stringify(nodes, null, 2) + '\n');
    await run(['manifest', '--dir', flowsDir]);
    const result = await run(['check', '--dir', flowsDir]);
    assert.equal(result.code, 1);
    assert.deepEqual(result.errors, [
      'error flows/line.json node line-gizmo: floorflow-embossing "gizmo": floorflow-embossing was split into one node type per step; replace this node with floorflow-embossing-create (docs/embossing.md) [unknown-type]',
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names the product route node that replaces an old products node by its action', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-check-'));
    fs.cpSync(path.join(FIXTURES, 'unknown-type', 'flows'), path.join(dir, 'flows'), { recursive: true });
    const flowsDir = path.join(dir, 'flows');
    const file = path.join(flowsDir, 'line.json');
    const nodes = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<Record<string, unknown>>;
    Object.assign(nodes[1], { type: 'floorflow-products', action: 'request' });
    fs.writeFileSync(file, JSON.stringify(nodes, null, 2) + '\n');
    await run(['manifest', '--dir', flowsDir]);
    const result = await run(['check', '--dir', flowsDir]);
    assert.equal(result.code, 1);
    assert.deepEqual(result.errors, [
      'error flows/line.json node line-gizmo: floorflow-products "gizmo": floorflow-products was split into one node type per step; replace this node with floorflow-product-move-request (docs/lifecycle.md) [unknown-type]',
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports a wire to a node that does not exist', async () => {
    const result = await checkFixture('missing-wire');
    assert.equal(result.code, 1);
    assert.deepEqual(result.errors, [
      'error flows/line.json node line-inject: inject "tick": output 1 is wired to line-gone, which does not exist [missing-wire]',
    ]);
  });

  it('reports a config node reference that is missing and one of the wrong type', async () => {
    const result = await checkFixture('config-refs');
    assert.equal(result.code, 1);
    assert.equal(result.errors.length, 2);
    assert.match(
      result.errors[0],
      /node line-missing-broker: .*broker names config node broker-that-is-not-there, which does not exist \(expected a mqtt-broker\) \[missing-config\]/,
    );
    assert.match(
      result.errors[1],
      /node line-wrong-broker: .*broker names floorflow-db-main, a floorflow-db in flows\/config\.json, but needs a mqtt-broker \[wrong-config-type\]/,
    );
  });

  it('reports a floorflow node whose configuration fails its schema.json', async () => {
    const result = await checkFixture('schema');
    assert.equal(result.code, 1);
    assert.deepEqual(result.errors, [
      'error flows/line.json node line-parser: floorflow-scan-parser "parse": configuration does not match its schema: runlistPattern must be string [schema]',
    ]);
  });

  it('reports an http in route defined twice, also when parameter names and slashes differ', async () => {
    const result = await checkFixture('duplicate-route');
    assert.equal(result.code, 1);
    assert.deepEqual(result.errors, [
      'error flows/b.json node b-http: http in "jobs again": route GET /api/jobs/:… is also defined by node a-http in flows/a.json [duplicate-route]',
    ]);
  });

  it('reports a flow whose content changed while its manifest version did not', async () => {
    const result = await checkFixture('manifest-version');
    assert.equal(result.code, 1);
    assert.equal(result.errors.length, 1);
    assert.match(
      result.errors[0],
      /^error flows\/line\.json: content changed but its version 1\.0\.0 was not raised .*flows manifest/,
    );
  });

  it('warns about a node configuration on an old schemaVersion without failing', async () => {
    const result = await checkFixture('old-schema-version');
    assert.equal(result.code, 0);
    assert.deepEqual(result.errors, []);
    assert.match(
      result.lines[0],
      /^warning flows\/scans\.json node scans-parser: .*schemaVersion 0, current is 1.*\[old-schema-version\]$/,
    );
  });

  it('flows manifest records a hand edit by raising the patch version, after which check passes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-check-'));
    fs.cpSync(path.join(FIXTURES, 'manifest-version', 'flows'), path.join(dir, 'flows'), { recursive: true });
    const flowsDir = path.join(dir, 'flows');
    const recorded = await run(['manifest', '--dir', flowsDir]);
    assert.deepEqual(recorded.lines[0], 'flows/line.json: changed, version 1.0.0 → 1.0.1');
    assert.equal((await run(['check', '--dir', flowsDir])).code, 0);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('flows migrate writes old node configurations in the current shape and raises the version', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-migrate-'));
    fs.cpSync(path.join(FIXTURES, 'old-schema-version', 'flows'), path.join(dir, 'flows'), {
      recursive: true,
    });
    const flowsDir = path.join(dir, 'flows');
    const migrated = await run(['migrate', '--dir', flowsDir]);
    assert.equal(migrated.code, 0);
    assert.match(migrated.lines[0], /scans-parser \(floorflow-scan-parser\): v0 → v1/);
    const nodes = JSON.parse(fs.readFileSync(path.join(flowsDir, 'scans.json'), 'utf8')) as Array<
      Record<string, unknown>
    >;
    const parser = nodes.find((n) => n.id === 'scans-parser')!;
    assert.equal(parser.schemaVersion, 1);
    assert.equal(parser.jobPattern, '(?<job_id>\\d+_\\d+)_(?<version_tag>\\d+)');
    assert.equal('pattern' in parser, false);
    const after = await run(['check', '--dir', flowsDir]);
    assert.deepEqual([after.code, after.errors, after.lines.length], [0, [], 1]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('warns about a file not in the form a deploy writes; flows format rewrites it, content and manifest unchanged', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-format-'));
    fs.cpSync(path.join(FIXTURES, 'missing-wire', 'flows'), path.join(dir, 'flows'), { recursive: true });
    const flowsDir = path.join(dir, 'flows');
    const file = path.join(flowsDir, 'line.json');
    const original = fs.readFileSync(file, 'utf8');
    // Keys reversed and on one line, as a hand edit or another tool might leave them.
    const nodes = JSON.parse(original) as Array<Record<string, unknown>>;
    fs.writeFileSync(file, JSON.stringify(nodes.map((n) => Object.fromEntries(Object.entries(n).reverse()))));
    const warned = await run(['check', '--dir', flowsDir]);
    assert.match(
      warned.lines[0],
      /^warning flows\/line\.json: not in the form a deploy writes .*flows format.*\[format\]$/,
    );
    assert.equal(warned.errors.length, 1, 'only the missing wire of the fixture');
    const formatted = await run(['format', '--dir', flowsDir]);
    assert.deepEqual(formatted.lines, ['flows/line.json: formatted', 'flows format: 1 file rewritten']);
    assert.equal(fs.readFileSync(file, 'utf8'), original);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers an unknown subcommand with the usage and exit code 2', async () => {
    const result = await run(['frobnicate']);
    assert.equal(result.code, 2);
    assert.match(result.errors[0], /unknown flows command "frobnicate"/);
  });
});
