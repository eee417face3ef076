import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flowsCommand } from '../../cli/flows';
import type { FlowNode } from '../../core/flow-files';
import { PROJECT_ROOT } from '../support/flow-kit';

describe('floorflow flows diff', () => {
  let repo: string;
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' });

  beforeEach(() => {
    repo = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-diff-'));
    fs.cpSync(
      path.join(PROJECT_ROOT, 'tests', 'fixtures', 'flows-check', 'valid', 'flows'),
      path.join(repo, 'flows'),
      {
        recursive: true,
      },
    );
    git('init', '-q');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'add', '.');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'flows');
  });

  afterEach(() => fs.rmSync(repo, { recursive: true, force: true }));

  async function diff(rev: string): Promise<{ code: number; lines: string[]; errors: string[] }> {
    const lines: string[] = [];
    const errors: string[] = [];
    const flowsDir = path.join(repo, 'flows');
    const code = await flowsCommand(
      { flowsDir, dashboardsDir: path.join(repo, 'dashboards') },
      ['diff', rev, '--dir', flowsDir],
      {
        log: (l) => lines.push(l),
        error: (l) => errors.push(l),
      },
    );
    return { code, lines, errors };
  }

  it('describes an edit against a git revision per flow: added nodes and changed properties, with versions', async () => {
    const file = path.join(repo, 'flows', 'intake.json');
    const nodes = JSON.parse(fs.readFileSync(file, 'utf8')) as FlowNode[];
    const fn = nodes.find((n) => n.id === 'intake-fn')!;
    fn.name = 'acknowledge';
    nodes.push({ id: 'intake-debug', type: 'debug', z: 'intake-tab', name: 'trace', wires: [] });
    fs.writeFileSync(file, JSON.stringify(nodes, null, 2));
    await flowsCommand(
      { flowsDir: path.join(repo, 'flows'), dashboardsDir: path.join(repo, 'dashboards') },
      ['manifest'],
      {
        log: () => undefined,
        error: () => undefined,
      },
    );

    const result = await diff('HEAD');
    assert.equal(result.code, 0);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.lines, [
      'flows/intake.json "Intake" 1.0.0 → 1.0.1',
      '  + debug "trace" (intake-debug)',
      '  ~ function "acknowledge" (intake-fn): name "ack" → "acknowledge"',
    ]);
  });

  it('says so when no flow changed', async () => {
    assert.deepEqual((await diff('HEAD')).lines, ['no flow changed']);
  });

  it('refuses a revision that is not a commit, with exit code 2', async () => {
    const result = await diff('no-such-branch');
    assert.equal(result.code, 2);
    assert.match(result.errors[0], /no-such-branch is not a commit/);
  });
});
