// The shipped embossing tab is exactly what the Node-RED editor writes when it deploys it: the
// editor saves a node's id, type, z, g, the properties its editor definition declares in
// `defaults`, x, y and one wire list per output, and drops everything else. A property only the
// file has (once `outputs` on nine nodes) vanishes at the first deploy from the editor, and the
// tab shows as changed although nobody touched it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';

interface EditorDefinition {
  defaults: Record<string, unknown>;
  outputs?: number;
  category?: string;
}

const ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = path.dirname(dir);
  }
  return dir;
})();

/** Something that answers any property read and any call, for the editor globals a definition touches. */
function anything(): unknown {
  const target = function () {
    return undefined;
  };
  const proxy: unknown = new Proxy(target, {
    get: (_t, key) => (key === Symbol.toPrimitive ? () => '' : proxy),
    apply: () => proxy,
  });
  return proxy;
}

/** Runs the `text/javascript` blocks of editor html files and collects each registerType's definition. */
function editorDefinitions(htmlFiles: string[]): Map<string, EditorDefinition> {
  const found = new Map<string, EditorDefinition>();
  const RED = new Proxy(anything() as object, {
    get: (t, key) =>
      key === 'nodes'
        ? new Proxy(anything() as object, {
            get: (n, k) =>
              k === 'registerType'
                ? (type: string, def: EditorDefinition) => found.set(type, def)
                : Reflect.get(n, k),
          })
        : Reflect.get(t, key),
  });
  for (const file of htmlFiles) {
    const html = fs.readFileSync(file, 'utf8');
    for (const m of html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)) {
      try {
        vm.runInNewContext(m[1], {
          RED,
          $: anything(),
          jQuery: anything(),
          document: anything(),
          window: anything(),
        });
      } catch {
        // A block that needs a real browser declares no node we use: the check below says so if it does.
      }
    }
  }
  return found;
}

function htmlFilesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.html'))
    .map((f) => path.join(dir, f));
}

describe('the shipped embossing tab (flows/embossing.json)', () => {
  const flow = JSON.parse(fs.readFileSync(path.join(ROOT, 'flows/embossing.json'), 'utf8')) as Array<
    Record<string, unknown> & { id: string; type: string }
  >;
  const coreNodes = path.join(path.dirname(require.resolve('@node-red/nodes/package.json')), 'core');
  const definitions = editorDefinitions([
    ...htmlFilesUnder(coreNodes),
    ...htmlFilesUnder(path.join(ROOT, 'nodes')),
  ]);

  it('holds only what an editor deploy writes: no property its editor definition would drop, one wire list per output', () => {
    for (const node of flow) {
      const keys = Object.keys(node);
      if (node.type === 'tab') {
        assert.deepEqual(
          keys.filter((k) => !['id', 'type', 'label', 'disabled', 'info', 'env', 'locked'].includes(k)),
          [],
          'the tab',
        );
        continue;
      }
      if (node.type === 'group') {
        const saved = ['id', 'type', 'z', 'g', 'name', 'style', 'nodes', 'env', 'x', 'y', 'w', 'h'];
        assert.deepEqual(
          keys.filter((k) => !saved.includes(k)),
          [],
          `group ${node.id}`,
        );
        continue;
      }
      const definition = definitions.get(node.type);
      assert.ok(definition, `the editor definition of ${node.type}`);
      const saved = new Set([
        'id',
        'type',
        'z',
        'g',
        'd',
        'x',
        'y',
        'wires',
        'info',
        ...Object.keys(definition.defaults),
      ]);
      assert.deepEqual(
        keys.filter((k) => !saved.has(k)),
        [],
        `${node.id} (${node.type}) carries properties the editor drops on deploy`,
      );
      const outputs = typeof definition.outputs === 'number' ? definition.outputs : 0;
      assert.equal(
        (node.wires as unknown[]).length,
        outputs,
        `${node.id} (${node.type}): one wire list per output`,
      );
    }
  });

  it('keeps every node inside the canvas and every grouped node inside its group', () => {
    const byId = new Map(flow.map((n) => [n.id, n]));
    for (const node of flow) {
      if (node.type === 'tab') continue;
      assert.ok((node.x as number) > 0 && (node.y as number) > 0, `${node.id} is on the canvas`);
      if (typeof node.g !== 'string') continue;
      const group = byId.get(node.g) as unknown as {
        x: number;
        y: number;
        w: number;
        h: number;
        nodes: string[];
      };
      assert.ok(group.nodes.includes(node.id), `${node.id} is listed in its group ${node.g}`);
      assert.ok(
        (node.x as number) > group.x &&
          (node.x as number) < group.x + group.w &&
          (node.y as number) > group.y &&
          (node.y as number) < group.y + group.h,
        `${node.id} lies inside its group ${node.g}`,
      );
    }
  });
});
