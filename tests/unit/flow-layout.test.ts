import assert from 'node:assert/strict';
import type { FlowNode } from '../../core/flow-files';
import { checkLayout } from '../../core/flow-layout';

const tab: FlowNode = { id: 't', type: 'tab', label: 'Embossing' };
const at = (id: string, x: number, y: number, extra: Partial<FlowNode> = {}): FlowNode => ({
  id,
  type: 'function',
  z: 't',
  name: id,
  x,
  y,
  wires: [[]],
  ...extra,
});
const rules = (nodes: FlowNode[]) => checkLayout(nodes).map((f) => [f.rule, f.nodeId]);

describe('flow layout rules', () => {
  it('passes a tab that reads left to right, on the canvas, routes grouped', () => {
    assert.deepEqual(rules([tab, at('a', 200, 100, { wires: [['b']] }), at('b', 500, 100)]), []);
  });

  it('reports a wire that runs backwards, but not one within the tolerance', () => {
    assert.deepEqual(rules([tab, at('a', 600, 100, { wires: [['b']] }), at('b', 200, 100)]), [
      ['layout-backward-wire', 'a'],
    ]);
    assert.deepEqual(rules([tab, at('a', 200, 100, { wires: [['b']] }), at('b', 300, 200)]), []);
  });

  it('reports a wire that runs over another node', () => {
    assert.deepEqual(
      rules([tab, at('a', 100, 100, { wires: [['c']] }), at('b', 400, 100), at('c', 700, 100)]),
      [['layout-wire-over-node', 'a']],
    );
  });

  it('reports a node clipped at the canvas edge', () => {
    assert.deepEqual(rules([tab, at('a', 5, 100)]), [['layout-outside-canvas', 'a']]);
  });

  it('reports a label that speaks of seeds or a contract file instead of the plant', () => {
    assert.deepEqual(rules([{ ...tab, label: 'Embossing (seed 000)' }]), [['layout-plant-words', 't']]);
    assert.deepEqual(rules([tab, at('a', 200, 100, { name: 'see CONTRACT.md' })]), [
      ['layout-plant-words', 'a'],
    ]);
  });

  it('reports a route whose nodes are not in a group', () => {
    const route = at('in', 200, 100, { type: 'http in', url: '/api/x', method: 'get', wires: [['out']] });
    assert.deepEqual(rules([tab, route, at('out', 500, 100, { type: 'http response', wires: [] })]), [
      ['layout-ungrouped-route', 'in'],
    ]);
    assert.deepEqual(
      rules([
        tab,
        { id: 'g', type: 'group', z: 't', nodes: ['in', 'out'], x: 80, y: 60, w: 560, h: 80 },
        { ...route, g: 'g' },
        at('out', 500, 100, { type: 'http response', wires: [], g: 'g' }),
      ]),
      [],
    );
  });
});
