// Checks that a shipped flow file is exactly what the Node-RED editor writes when it deploys it:
// the editor saves a node's id, type, z, g, the properties its editor definition declares in
// `defaults`, x, y and one wire list per output, and drops everything else; and it lays every
// node inside the canvas and inside its group. A file that differs shows as changed after the
// first deploy, although nobody touched it.
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { PROJECT_ROOT } from './flow-kit';

interface EditorDefinition {
  defaults: Record<string, unknown>;
  outputs?: number;
}

type FlowFileNode = Record<string, unknown> & { id: string; type: string };

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

function htmlFilesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.html'))
    .map((f) => path.join(dir, f));
}

/** The editor definition of every Node-RED core node and every floorflow node, by type. */
export function editorDefinitions(): Map<string, EditorDefinition> {
  const core = path.join(path.dirname(require.resolve('@node-red/nodes/package.json')), 'core');
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
  for (const file of [...htmlFilesUnder(core), ...htmlFilesUnder(path.join(PROJECT_ROOT, 'nodes'))]) {
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
        // A block that needs a real browser declares no node we use: the check says so if it does.
      }
    }
  }
  return found;
}

/** The flow file's nodes. */
export function readFlowFile(file: string): FlowFileNode[] {
  return JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, file), 'utf8')) as FlowFileNode[];
}

/** What an editor deploy would drop or write differently, one line per problem. */
export function deployProblems(flow: FlowFileNode[], definitions: Map<string, EditorDefinition>): string[] {
  const problems: string[] = [];
  const extra = (node: FlowFileNode, saved: Set<string>) => Object.keys(node).filter((k) => !saved.has(k));
  for (const node of flow) {
    if (node.type === 'tab') {
      const keys = extra(node, new Set(['id', 'type', 'label', 'disabled', 'info', 'env', 'locked']));
      if (keys.length > 0) problems.push(`the tab carries ${keys.join(', ')}`);
      continue;
    }
    if (node.type === 'group') {
      const saved = new Set(['id', 'type', 'z', 'g', 'name', 'style', 'nodes', 'env', 'x', 'y', 'w', 'h']);
      const keys = extra(node, saved);
      if (keys.length > 0) problems.push(`group ${node.id} carries ${keys.join(', ')}`);
      continue;
    }
    const definition = definitions.get(node.type);
    if (!definition) {
      problems.push(`${node.id}: no editor definition of ${node.type}`);
      continue;
    }
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
    const keys = extra(node, saved);
    if (keys.length > 0)
      problems.push(`${node.id} (${node.type}) carries ${keys.join(', ')}, which the editor drops`);
    const outputs = typeof definition.outputs === 'number' ? definition.outputs : 0;
    if ((node.wires as unknown[]).length !== outputs)
      problems.push(
        `${node.id} (${node.type}) has ${(node.wires as unknown[]).length} wire lists for ${outputs} outputs`,
      );
  }
  return problems;
}

/** Nodes off the canvas or outside their group, one line each. */
export function canvasProblems(flow: FlowFileNode[]): string[] {
  const problems: string[] = [];
  const byId = new Map(flow.map((n) => [n.id, n]));
  for (const node of flow) {
    if (node.type === 'tab') continue;
    const x = node.x as number;
    const y = node.y as number;
    if (!(x > 0 && y > 0)) problems.push(`${node.id} is off the canvas`);
    if (typeof node.g !== 'string') continue;
    const group = byId.get(node.g) as unknown as {
      x: number;
      y: number;
      w: number;
      h: number;
      nodes: string[];
    };
    if (!group?.nodes.includes(node.id)) problems.push(`${node.id} is not listed in its group ${node.g}`);
    else if (!(x > group.x && x < group.x + group.w && y > group.y && y < group.y + group.h))
      problems.push(`${node.id} lies outside its group ${node.g}`);
  }
  return problems;
}
