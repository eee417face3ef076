import assert from 'node:assert/strict';
import type { FlowNode } from '../../core/flow-files';
import {
  NODE_MIGRATIONS,
  currentSchemaVersion,
  migrateFlowNodes,
  migrateNode,
} from '../../core/node-migrations';

const JOB = '(?<job_id>\\d+_\\d+)_(?<version_tag>\\d+)';
const v0Parser: FlowNode = {
  id: 'p1',
  type: 'floorflow-scan-parser',
  z: 't',
  name: 'job codes',
  pattern: JOB,
  wires: [[], []],
};

describe('node config migrations', () => {
  it('upgrades a v0 scan parser: pattern becomes jobPattern, the new patterns start off', () => {
    const result = migrateNode(v0Parser)!;
    assert.deepEqual([result.from, result.to], [0, 1]);
    assert.deepEqual(result.node, {
      id: 'p1',
      type: 'floorflow-scan-parser',
      z: 't',
      name: 'job codes',
      jobPattern: JOB,
      runlistPattern: '',
      filePattern: '',
      schemaVersion: 1,
      wires: [[], []],
    });
    assert.match(result.changes[0], /^v0 → v1: the single `pattern` became `jobPattern`/);
  });

  it('leaves the old config object untouched', () => {
    const before = structuredClone(v0Parser);
    migrateNode(v0Parser);
    assert.deepEqual(v0Parser, before);
  });

  it('keeps a v1 config and a type without migrations as they are', () => {
    assert.equal(migrateNode({ ...v0Parser, pattern: undefined, schemaVersion: 1 }), undefined);
    assert.equal(migrateNode({ id: 'f', type: 'function', func: 'return msg;' }), undefined);
    assert.equal(migrateNode({ id: 'd', type: 'floorflow-db', schemaVersion: 1 }), undefined);
  });

  it('refuses a config newer than this release, asking for an upgrade of floorflow', () => {
    assert.throws(
      () => migrateNode({ ...v0Parser, schemaVersion: 7 }),
      /schemaVersion 7, newer than 1 .*upgrade floorflow/,
    );
  });

  it('migrates only the nodes of a flow that need it and says which', () => {
    const flow = [
      { id: 't', type: 'tab' },
      v0Parser,
      { id: 'p2', type: 'floorflow-scan-parser', schemaVersion: 1 },
    ];
    const result = migrateFlowNodes(flow);
    assert.equal(result.nodes[0], flow[0]);
    assert.equal(result.nodes[2], flow[2]);
    assert.deepEqual(
      result.migrated.map((m) => [m.id, m.from, m.to]),
      [['p1', 0, 1]],
    );
  });

  it('registers steps in order, each raising the version by one', () => {
    for (const [type, steps] of Object.entries(NODE_MIGRATIONS)) {
      steps.forEach((step, i) => assert.equal(step.to, i + 1, `${type} step ${i}`));
      assert.equal(currentSchemaVersion(type), steps.length);
    }
  });
});
