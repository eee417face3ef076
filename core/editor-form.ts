// The form in which the Node-RED editor writes a node when it deploys: the same rules as the
// editor's own import and export (`importNodes` and `convertNode` in Node-RED 4.1's
// editor-client), given each type's editor definition. A flow file already in this form comes
// back from a deploy unchanged; one that is not loses (or gains) properties at the next deploy
// of any tab, which is how a comment edit once rewrote two untouched tabs (docs/flows.md).
import type { FlowNode } from './flow-files';
import { migrateNode } from './node-migrations';

/** What a type's editor file declares (`RED.nodes.registerType(type, definition)`). */
export interface EditorDefinition {
  /** The property names of `defaults`, in declaration order, and whether each has a default value. */
  defaults: string[];
  category?: string;
  inputs?: number;
  outputs?: number;
  /** `showLabel` of the definition (the editor writes `l` only when it differs). */
  showLabel?: boolean;
}

const TAB_DEFAULTS = ['label', 'disabled', 'locked', 'info', 'env'];
const GROUP_DEFAULTS = ['name', 'style', 'nodes', 'env'];

const isBlank = (labels: unknown) =>
  !Array.isArray(labels) ||
  /^\s*$/.test(labels.map((l) => (l === null || l === undefined ? '' : String(l))).join(''));

/** `parseInt(value, 10)` as the editor applies it to `inputs` and `outputs`. */
function portCount(value: unknown): number {
  return parseInt(String(value), 10);
}

function copyOptional(from: FlowNode, to: Record<string, unknown>): void {
  if (from.z !== undefined && from.z !== '' && (from.z as unknown) !== 0) to.z = from.z;
  if (from.d === true) to.d = true;
}

function workspace(n: FlowNode): FlowNode {
  const out: Record<string, unknown> = { id: n.id, type: n.type };
  for (const d of TAB_DEFAULTS) {
    if (d === 'locked' && !n.locked) continue;
    out[d] = n[d];
  }
  return out as FlowNode;
}

function group(n: FlowNode, ids: Set<string> | undefined): FlowNode {
  const out: Record<string, unknown> = { id: n.id, type: n.type };
  copyOptional(n, out);
  if (n.g) out.g = n.g;
  for (const d of GROUP_DEFAULTS) out[d] = n[d];
  out.nodes = (Array.isArray(n.nodes) ? n.nodes : []).filter((id) => !ids || ids.has(String(id)));
  if (Array.isArray(out.env) && out.env.length === 0) delete out.env;
  out.x = n.x;
  out.y = n.y;
  out.w = n.w;
  out.h = n.h;
  if (n.info) out.info = n.info;
  return out as FlowNode;
}

/** Wires as the editor rebuilds them: one port per output, wires to missing nodes dropped. */
function wiresOf(n: FlowNode, outputs: number, ids: Set<string> | undefined): string[][] {
  const wires: string[][] = [];
  for (let i = 0; i < outputs; i++) wires.push([]);
  (Array.isArray(n.wires) ? n.wires : []).forEach((port, i) => {
    if (i >= outputs) return;
    for (const target of Array.isArray(port) ? port : [])
      if (!ids || ids.has(String(target))) wires[i].push(target);
  });
  return wires;
}

function regular(n: FlowNode, def: EditorDefinition, ids: Set<string> | undefined): FlowNode {
  const config = def.category === 'config';
  const out: Record<string, unknown> = { id: n.id, type: n.type };
  copyOptional(n, out);
  if (!config && n.g) out.g = n.g;
  const has = (d: string) => def.defaults.includes(d);
  let inputs = def.inputs;
  let outputs = def.outputs;
  if (!config) {
    if (Object.hasOwn(n, 'inputs') && has('inputs')) inputs = portCount(n.inputs);
    if (Object.hasOwn(n, 'outputs') && has('outputs')) outputs = portCount(n.outputs);
    // The editor falls back to the wires when the port count is not a number.
    if (Number.isNaN(Number(outputs))) outputs = Array.isArray(n.wires) ? n.wires.length : 0;
  }
  for (const d of def.defaults) {
    if (!config && d === 'inputs') out[d] = inputs;
    else if (!config && d === 'outputs') out[d] = outputs;
    else out[d] = n[d];
  }
  if (!config) {
    out.x = parseFloat(String(n.x || 0));
    out.y = parseFloat(String(n.y || 0));
    out.wires = wiresOf(n, Number(outputs), ids);
    if (Number(inputs) > 0 && !isBlank(n.inputLabels)) out.inputLabels = n.inputLabels;
    if (Number(outputs) > 0 && !isBlank(n.outputLabels)) out.outputLabels = n.outputLabels;
    if (!has('icon') && n.icon) out.icon = n.icon;
    if (!has('l') && Object.hasOwn(n, 'l') && (def.showLabel ?? true) !== n.l) out.l = n.l;
  }
  if (n.info) out.info = n.info;
  return out as FlowNode;
}

/**
 * The nodes as an editor deploy writes them. With `ids`, every node id of the whole flow set,
 * a wire (or group member) naming a node that does not exist is dropped, as the editor drops
 * it; without, it is kept (`flows check` reports it, `flows format` must not hide it). A node
 * of a type without a definition (an uninstalled package, a subflow instance) is kept as it
 * is, as the editor keeps it.
 */
export function editorForm(
  nodes: FlowNode[],
  definitions: Map<string, EditorDefinition>,
  ids?: Set<string>,
  keepAsIs: (node: FlowNode) => boolean = () => false,
): FlowNode[] {
  return nodes.map((n) => {
    if (keepAsIs(n)) return n;
    if (n.type === 'tab') return workspace(n);
    if (n.type === 'group') return group(n, ids);
    if (n.type === 'junction') return regular(n, { defaults: [], inputs: 1, outputs: 1 }, ids);
    const def = definitions.get(n.type);
    return def ? regular(n, def, ids) : n;
  });
}

/** Every node id of a set of files: wires may only go to these. */
export function allNodeIds(files: Array<{ nodes: FlowNode[] }>): Set<string> {
  return new Set(files.flatMap((f) => f.nodes.map((n) => n.id)));
}

/**
 * The order in which the editor exports a tab's nodes: the tab, its groups, junctions, config
 * nodes (each after the config nodes it names), then the flow nodes; each kind in file order.
 */
export function editorOrder(nodes: FlowNode[], definitions: Map<string, EditorDefinition>): FlowNode[] {
  const isConfig = (n: FlowNode) => definitions.get(n.type)?.category === 'config';
  const rank = (n: FlowNode) =>
    n.type === 'tab'
      ? 0
      : n.type === 'subflow'
        ? 1
        : n.type === 'group'
          ? 2
          : n.type === 'junction'
            ? 3
            : isConfig(n)
              ? 4
              : 5;
  const sorted = nodes
    .map((n, i) => ({ n, i }))
    .sort((a, b) => rank(a.n) - rank(b.n) || a.i - b.i)
    .map(({ n }) => n);
  const configs = sorted.filter((n) => rank(n) === 4);
  if (configs.length < 2) return sorted;
  // As the editor adds them: a config node waits until the config nodes it names are added.
  const pendingIds = new Set(configs.map((n) => n.id));
  const added = new Set<string>();
  const queue = [...configs];
  const ordered: FlowNode[] = [];
  for (let budget = configs.length * 5; queue.length > 0 && budget > 0; budget--) {
    const n = queue.shift()!;
    const waits = Object.entries(n).some(
      ([key, value]) =>
        key !== 'id' && typeof value === 'string' && pendingIds.has(value) && !added.has(value),
    );
    if (waits) queue.push(n);
    else {
      ordered.push(n);
      added.add(n.id);
    }
  }
  ordered.push(...queue);
  const first = sorted.findIndex((n) => rank(n) === 4);
  return [...sorted.slice(0, first), ...ordered, ...sorted.slice(first + configs.length)];
}

/** A file's nodes exactly as an editor deploy writes them: the editor's order and form. */
export function editorFile(
  nodes: FlowNode[],
  definitions: Map<string, EditorDefinition>,
  ids?: Set<string>,
  keepAsIs?: (node: FlowNode) => boolean,
): FlowNode[] {
  return editorForm(editorOrder(nodes, definitions), definitions, ids, keepAsIs);
}

/**
 * A node on an old (or unknown newer) configuration version: the editor only ever sees it
 * upgraded, so its form is written by `flows migrate`, not by `flows format`.
 */
export function awaitsMigration(node: FlowNode): boolean {
  try {
    return migrateNode(node) !== undefined;
  } catch {
    return true;
  }
}

/**
 * The nodes without what the editor derives rather than an engineer edits: a group's box (the
 * editor recomputes it from its members' label widths as the browser measures them, so it
 * differs with fonts) and wires without a target (Node-RED's flow endpoint serves a `link out`
 * without its empty `wires`; the editor writes one empty port per output).
 */
export function withoutDerived(nodes: FlowNode[]): FlowNode[] {
  return nodes.map((n) => {
    let out = n;
    if (n.type === 'group') {
      const { x: _x, y: _y, w: _w, h: _h, ...rest } = n;
      out = rest as FlowNode;
    }
    if (Array.isArray(out.wires) && !out.wires.some((port) => Array.isArray(port) && port.length > 0)) {
      const { wires: _none, ...rest } = out;
      out = rest as FlowNode;
    }
    return out;
  });
}
