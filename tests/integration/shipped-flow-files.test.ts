// Every shipped tab is what an editor deploy writes (no property its node's editor definition
// would drop, one wire list per output) and laid out on the canvas (every node inside the canvas
// and its group). The processing tab's own test adds its stricter layout rules.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { canvasProblems, deployProblems, editorDefinitions, readFlowFile } from '../support/flow-file-checks';
import { PROJECT_ROOT } from '../support/flow-kit';

describe('the shipped flow files', () => {
  const definitions = editorDefinitions();
  const files = fs
    .readdirSync(path.join(PROJECT_ROOT, 'flows'))
    // config.json holds config nodes only: not drawn, no wires.
    .filter((f) => f.endsWith('.json') && f !== 'manifest.json' && f !== 'config.json')
    .map((f) => `flows/${f}`);

  for (const file of files) {
    it(`${file} holds only what an editor deploy writes, every node on the canvas and in its group`, () => {
      const flow = readFlowFile(file);
      assert.deepEqual(deployProblems(flow, definitions), []);
      assert.deepEqual(canvasProblems(flow), []);
    });
  }
});
