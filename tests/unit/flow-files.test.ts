import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FlowNode, joinFlows, splitFlows, stringifyFlowFile } from '../../core/flow-files';

const tab = (id: string, label: string): FlowNode => ({ id, type: 'tab', label });

describe('flow files', () => {
  it('puts each tab in its own file, dashboard tabs under dashboards/, config nodes apart', () => {
    const flows: FlowNode[] = [
      tab('t1', 'Job status'),
      tab('t2', 'Embossing display'),
      { id: 'n1', type: 'inject', z: 't1', wires: [['n2']] },
      { id: 'n2', type: 'debug', z: 't1', wires: [] },
      { id: 'w1', type: 'ui-table', z: 't2', wires: [] },
      { id: 'db', type: 'floorflow-db' },
      { id: 'ui', type: 'ui-base' },
    ];
    const files = splitFlows(flows);
    assert.deepEqual(
      files.map((f) => [f.file, f.nodes.map((n) => n.id)]),
      [
        ['flows/job-status.json', ['t1', 'n1', 'n2']],
        ['dashboards/embossing-display.json', ['t2', 'w1']],
        ['flows/config.json', ['db']],
        ['dashboards/config.json', ['ui']],
      ],
    );
  });

  it('keeps the file of a renamed tab', () => {
    const files = splitFlows([tab('t1', 'New name')], new Map([['t1', 'flows/job-status.json']]));
    assert.equal(files[0].file, 'flows/job-status.json');
  });

  it('writes keys in a stable order, id and type first, so a diff shows only what changed', () => {
    const text = stringifyFlowFile([{ wires: [], z: 't', type: 'debug', id: 'n', name: 'x', active: true }]);
    assert.equal(text.split('\n')[2].trim(), '"id": "n",');
    assert.equal(text.split('\n')[3].trim(), '"type": "debug",');
    assert.ok(text.endsWith('\n'));
  });

  it('joins what it split back into the same set of nodes, for any flow', () => {
    const arbFlow = fc
      .uniqueArray(fc.stringMatching(/^[a-f0-9]{4}$/), { minLength: 1, maxLength: 12 })
      .chain((ids) =>
        fc.tuple(
          fc.constant(ids),
          fc.array(fc.record({ id: fc.stringMatching(/^n[a-f0-9]{6}$/), tab: fc.nat(ids.length) }), {
            maxLength: 30,
          }),
        ),
      );
    fc.assert(
      fc.property(arbFlow, ([tabIds, nodes]) => {
        const flows: FlowNode[] = tabIds.map((id, i) => tab(id, `Tab ${i % 3}`));
        const seen = new Set(tabIds);
        for (const n of nodes) {
          if (seen.has(n.id)) continue;
          seen.add(n.id);
          flows.push(
            n.tab < tabIds.length
              ? { id: n.id, type: 'debug', z: tabIds[n.tab] }
              : { id: n.id, type: 'floorflow-db' },
          );
        }
        const files = splitFlows(flows);
        const joined = joinFlows(
          files,
          files.map((f) => f.file),
        );
        assert.deepEqual(joined.map((n) => n.id).sort(), flows.map((n) => n.id).sort());
        assert.equal(new Set(files.map((f) => f.file)).size, files.length, 'no two containers share a file');
      }),
    );
  });
});
