// The shipped processing tab is what an editor deploy writes, and laid out on the canvas:
// every node inside the canvas and its group, groups that do not overlap, and no wire that
// runs back across the tab (the way back to the worker is a link).
import assert from 'node:assert/strict';
import { canvasProblems, deployProblems, editorDefinitions, readFlowFile } from '../support/flow-file-checks';

describe('the shipped processing tab (flows/processing.json)', () => {
  const flow = readFlowFile('flows/processing.json');

  it('holds only what an editor deploy writes: no property its editor definition would drop, one wire list per output', () => {
    assert.deepEqual(deployProblems(flow, editorDefinitions()), []);
  });

  it('keeps every node inside the canvas and every grouped node inside its group, and no two groups overlap', () => {
    assert.deepEqual(canvasProblems(flow), []);
    const groups = flow.filter((n) => n.type === 'group') as unknown as Array<{
      id: string;
      x: number;
      y: number;
      w: number;
      h: number;
    }>;
    for (const [i, a] of groups.entries()) {
      for (const b of groups.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        assert.ok(!overlap, `groups ${a.id} and ${b.id} overlap`);
      }
    }
  });

  it('has no wire running back to the left: each wire goes to a node to the right of where it starts', () => {
    const byId = new Map(flow.map((n) => [n.id, n]));
    const backwards: string[] = [];
    for (const node of flow) {
      for (const target of ((node.wires as string[][] | undefined) ?? []).flat()) {
        const to = byId.get(target)!;
        if ((to.x as number) <= (node.x as number)) backwards.push(`${node.id} -> ${target}`);
      }
    }
    assert.deepEqual(backwards, []);
  });
});
