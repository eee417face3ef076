import assert from 'node:assert/strict';
import { abbreviate, diffFlows, formatFlowDiffs } from '../../core/flow-diff';
import type { FlowFile, FlowNode } from '../../core/flow-files';

const tab: FlowNode = { id: 'js-tab', type: 'tab', label: 'Job status' };
const httpIn: FlowNode = {
  id: 'js-http',
  type: 'http in',
  z: 'js-tab',
  name: 'status',
  method: 'get',
  url: '/api/job-status/:id',
  x: 100,
  y: 40,
  wires: [['js-fn']],
};
const fn: FlowNode = {
  id: 'js-fn',
  type: 'function',
  z: 'js-tab',
  name: 'mark',
  func: 'return msg;',
  outputs: 1,
  x: 300,
  y: 40,
  wires: [['js-out']],
};
const out: FlowNode = { id: 'js-out', type: 'http response', z: 'js-tab', x: 500, y: 40, wires: [] };
const debug: FlowNode = {
  id: 'js-debug',
  type: 'debug',
  z: 'js-tab',
  name: 'trace',
  x: 500,
  y: 80,
  wires: [],
};

const file = (name: string, nodes: FlowNode[]): FlowFile => ({ file: name, nodes });

describe('flow diff', () => {
  it('reports nothing when only key order differs', () => {
    const reordered = Object.fromEntries(Object.entries(fn).reverse()) as FlowNode;
    assert.deepEqual(
      diffFlows([file('flows/js.json', [tab, fn])], [file('flows/js.json', [tab, reordered])]),
      [],
    );
    assert.deepEqual(formatFlowDiffs([]), ['no flow changed']);
  });

  it('names added and removed nodes by type, name and id', () => {
    const [diff] = diffFlows(
      [file('flows/js.json', [tab, httpIn, fn, out, debug])],
      [
        file('flows/js.json', [
          tab,
          httpIn,
          fn,
          out,
          { id: 'js-catch', type: 'catch', z: 'js-tab', name: 'failed', wires: [] },
        ]),
      ],
    );
    assert.deepEqual(diff.added, [{ id: 'js-catch', type: 'catch', name: 'failed' }]);
    assert.deepEqual(diff.removed, [{ id: 'js-debug', type: 'debug', name: 'trace' }]);
    assert.deepEqual(formatFlowDiffs([diff]), [
      'flows/js.json "Job status"',
      '  + catch "failed" (js-catch)',
      '  - debug "trace" (js-debug)',
    ]);
  });

  it('lists a changed property with old and new values, and wires by the names of their targets', () => {
    const changed = { ...httpIn, url: '/api/job-status/:jobId', wires: [['js-fn', 'js-debug']] };
    const [diff] = diffFlows(
      [file('flows/js.json', [tab, httpIn, fn, debug])],
      [file('flows/js.json', [tab, changed, fn, debug])],
    );
    assert.deepEqual(diff.changed, [
      {
        id: 'js-http',
        type: 'http in',
        name: 'status',
        changes: [
          { property: 'url', from: '"/api/job-status/:id"', to: '"/api/job-status/:jobId"' },
          { property: 'wires', from: '1→"mark"', to: '1→"mark"+"trace"' },
        ],
      },
    ]);
    assert.equal(
      formatFlowDiffs([diff])[1],
      '  ~ http in "status" (js-http): url "/api/job-status/:id" → "/api/job-status/:jobId"; wires 1→"mark" → 1→"mark"+"trace"',
    );
  });

  it('summarises code by its lines instead of printing it', () => {
    const before = { ...fn, func: 'const a = 1;\nmsg.payload = a;\nreturn msg;' };
    const after = { ...fn, func: 'const a = 2;\nmsg.payload = a;\nnode.warn(a);\nreturn msg;' };
    const [diff] = diffFlows([file('flows/js.json', [tab, before])], [file('flows/js.json', [tab, after])]);
    assert.deepEqual(diff.changed[0].changes, [
      { property: 'func', from: '3 lines', to: '4 lines (+2 −1 lines)' },
    ]);
  });

  it('counts nodes that only moved on the canvas instead of listing them', () => {
    const [diff] = diffFlows(
      [file('flows/js.json', [tab, fn, out])],
      [file('flows/js.json', [tab, { ...fn, x: 320 }, { ...out, y: 60 }])],
    );
    assert.deepEqual([diff.changed, diff.movedOnCanvas], [[], 2]);
    assert.equal(formatFlowDiffs([diff]).at(-1), '  2 nodes only moved on the canvas');
  });

  it('shows a node moved to another tab once, as a change of tab in the file it moved to', () => {
    const other: FlowNode = { id: 'ops-tab', type: 'tab', label: 'Operations' };
    const diffs = diffFlows(
      [file('flows/js.json', [tab, fn, debug]), file('flows/ops.json', [other])],
      [file('flows/js.json', [tab, fn]), file('flows/ops.json', [other, { ...debug, z: 'ops-tab' }])],
    );
    assert.equal(diffs.length, 1);
    assert.equal(diffs[0].file, 'flows/ops.json');
    assert.deepEqual(diffs[0].changed[0].changes, [
      { property: 'tab', from: '"Job status"', to: '"Operations"' },
    ]);
  });

  it('reports new and removed flows with their manifest versions', () => {
    const diffs = diffFlows(
      [file('flows/old.json', [{ id: 'old-tab', type: 'tab', label: 'Old' }, debug])],
      [file('flows/js.json', [tab, fn])],
      {
        from: { 'flows/old.json': { version: '1.2.0' } },
        to: { 'flows/js.json': { version: '1.0.0' } },
      },
    );
    assert.deepEqual(formatFlowDiffs(diffs), [
      'flows/js.json "Job status" (new) → 1.0.0 (new flow)',
      '  + function "mark" (js-fn)',
      'flows/old.json "Old" 1.2.0 → (removed) (flow removed)',
      '  - 1 node',
    ]);
  });

  it('abbreviates long values', () => {
    assert.equal(abbreviate('x'.repeat(100)).length, 48);
    assert.equal(abbreviate({ a: 'y'.repeat(100) }).endsWith('…'), true);
    assert.equal(abbreviate(3), '3');
  });
});
