// What changed between two versions of the flow files, as an engineer would describe it:
// per flow, the nodes added, removed and changed, with the changed properties and their old
// and new values abbreviated. Nodes are matched by id, so a renamed node or one moved to
// another tab is a change, not a removal plus an addition. Pure: `flows diff` reads git.
import { FlowFile, FlowNode, stableValue } from './flow-files';

export interface NodeSummary {
  id: string;
  type: string;
  name?: string;
}

export interface PropertyChange {
  property: string;
  /** Abbreviated old value; undefined when the property was added. */
  from?: string;
  /** Abbreviated new value; undefined when the property was removed. */
  to?: string;
}

export interface NodeChange extends NodeSummary {
  changes: PropertyChange[];
}

export interface FlowDiff {
  file: string;
  label: string;
  status: 'added' | 'removed' | 'changed';
  versions?: { from?: string; to?: string };
  added: NodeSummary[];
  removed: NodeSummary[];
  changed: NodeChange[];
  /** Nodes whose only change is their place on the canvas. */
  movedOnCanvas: number;
}

/** Where a node sits on the canvas: not worth a line each. */
const CANVAS_PROPERTIES = new Set(['x', 'y', 'w', 'h']);
const MAX_VALUE = 48;

function summary(node: FlowNode): NodeSummary {
  const name = node.name || node.label;
  return { id: node.id, type: node.type, ...(name ? { name: String(name) } : {}) };
}

function containerLabel(nodes: FlowNode[], file: string): string {
  const container = nodes.find((n) => n.type === 'tab' || n.type === 'subflow');
  return String(container?.label ?? container?.name ?? file);
}

/** Equal as JSON, whatever the key order. */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(stableValue(a)) === JSON.stringify(stableValue(b));
}

/** A value in a few characters: strings quoted, long text by its line count. */
export function abbreviate(value: unknown): string {
  if (typeof value === 'string') {
    const lines = value.split('\n').length;
    if (lines > 1) return `${lines} lines`;
    const text = JSON.stringify(value);
    return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 2)}…"` : text;
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

function describeNode(byId: Map<string, FlowNode>, id: string): string {
  const node = byId.get(id);
  if (!node) return id;
  const name = node.name || node.label;
  return name ? `"${String(name)}"` : `${node.type} ${id}`;
}

/** Wires read as the names of the nodes each output goes to. */
function wiresText(wires: unknown, byId: Map<string, FlowNode>): string {
  if (!Array.isArray(wires)) return '[]';
  return wires
    .map(
      (port, i) =>
        `${i + 1}→${Array.isArray(port) && port.length > 0 ? port.map((t) => describeNode(byId, String(t))).join('+') : '∅'}`,
    )
    .join(' ');
}

function changesOf(
  before: FlowNode,
  after: FlowNode,
  oldById: Map<string, FlowNode>,
  newById: Map<string, FlowNode>,
): PropertyChange[] {
  const changes: PropertyChange[] = [];
  const properties = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  for (const property of properties) {
    if (CANVAS_PROPERTIES.has(property) || property === 'id') continue;
    const a = before[property];
    const b = after[property];
    if (same(a, b)) continue;
    if (property === 'wires') {
      changes.push({ property, from: wiresText(a, oldById), to: wiresText(b, newById) });
    } else if (property === 'z') {
      changes.push({
        property: 'tab',
        from: a === undefined ? undefined : describeNode(oldById, String(a)),
        to: b === undefined ? undefined : describeNode(newById, String(b)),
      });
    } else if (typeof a === 'string' && typeof b === 'string' && (a.includes('\n') || b.includes('\n'))) {
      changes.push({ property, from: abbreviate(a), to: `${abbreviate(b)} (${lineDelta(a, b)})` });
    } else {
      changes.push({
        property,
        ...(a === undefined ? {} : { from: abbreviate(a) }),
        ...(b === undefined ? {} : { to: abbreviate(b) }),
      });
    }
  }
  return changes;
}

/** How many lines of a text changed, for code in function and template nodes. */
function lineDelta(a: string, b: string): string {
  const before = a.split('\n');
  const after = b.split('\n');
  const kept = new Set(before);
  const added = after.filter((l) => !kept.has(l)).length;
  const present = new Set(after);
  const removed = before.filter((l) => !present.has(l)).length;
  return `+${added} −${removed} lines`;
}

export interface FlowVersionsByFile {
  [file: string]: { version?: string } | undefined;
}

export function diffFlows(
  oldFiles: FlowFile[],
  newFiles: FlowFile[],
  versions: { from?: FlowVersionsByFile; to?: FlowVersionsByFile } = {},
): FlowDiff[] {
  const oldById = new Map(oldFiles.flatMap((f) => f.nodes.map((n) => [n.id, n] as const)));
  const newById = new Map(newFiles.flatMap((f) => f.nodes.map((n) => [n.id, n] as const)));
  const oldByFile = new Map(oldFiles.map((f) => [f.file, f]));
  const newByFile = new Map(newFiles.map((f) => [f.file, f]));
  const fileNames = [...new Set([...oldByFile.keys(), ...newByFile.keys()])].sort();
  const diffs: FlowDiff[] = [];
  for (const file of fileNames) {
    const before = oldByFile.get(file);
    const after = newByFile.get(file);
    const diff: FlowDiff = {
      file,
      label: containerLabel((after ?? before)!.nodes, file),
      status: !before ? 'added' : !after ? 'removed' : 'changed',
      added: [],
      removed: [],
      changed: [],
      movedOnCanvas: 0,
    };
    const from = versions.from?.[file]?.version;
    const to = versions.to?.[file]?.version;
    if (from || to) diff.versions = { from, to };
    // A node moved between files shows once: as a change in the file it moved to.
    const isContainer = (n: FlowNode) => n.type === 'tab' || n.type === 'subflow';
    for (const node of after?.nodes ?? []) {
      const previous = oldById.get(node.id);
      if (!previous) {
        // A new flow's tab is the flow itself, named in the heading.
        if (!isContainer(node)) diff.added.push(summary(node));
        continue;
      }
      const changes = changesOf(previous, node, oldById, newById);
      if (changes.length > 0) diff.changed.push({ ...summary(node), changes });
      else if ([...CANVAS_PROPERTIES].some((p) => !same(previous[p], node[p]))) diff.movedOnCanvas++;
    }
    for (const node of before?.nodes ?? []) {
      if (!newById.has(node.id) && !(diff.status === 'removed' && isContainer(node)))
        diff.removed.push(summary(node));
    }
    if (
      diff.status !== 'changed' ||
      diff.added.length + diff.removed.length + diff.changed.length + diff.movedOnCanvas > 0
    ) {
      diffs.push(diff);
    }
  }
  return diffs;
}

function nodeText(n: NodeSummary): string {
  return `${n.type}${n.name ? ` "${n.name}"` : ''} (${n.id})`;
}

function changeText(c: PropertyChange): string {
  if (c.from === undefined) return `${c.property} set to ${c.to}`;
  if (c.to === undefined) return `${c.property} removed (was ${c.from})`;
  return `${c.property} ${c.from} → ${c.to}`;
}

/** The diff as lines of text, one flow after another. */
export function formatFlowDiffs(diffs: FlowDiff[]): string[] {
  if (diffs.length === 0) return ['no flow changed'];
  const lines: string[] = [];
  for (const d of diffs) {
    const version = d.versions ? ` ${d.versions.from ?? '(new)'} → ${d.versions.to ?? '(removed)'}` : '';
    const status = d.status === 'changed' ? '' : ` (${d.status === 'added' ? 'new flow' : 'flow removed'})`;
    lines.push(`${d.file} "${d.label}"${version}${status}`);
    if (d.status === 'changed' || d.status === 'added') {
      for (const n of d.added) lines.push(`  + ${nodeText(n)}`);
    } else {
      lines.push(`  - ${d.removed.length} node${d.removed.length === 1 ? '' : 's'}`);
      continue;
    }
    for (const n of d.removed) lines.push(`  - ${nodeText(n)}`);
    for (const n of d.changed) lines.push(`  ~ ${nodeText(n)}: ${n.changes.map(changeText).join('; ')}`);
    if (d.movedOnCanvas > 0)
      lines.push(`  ${d.movedOnCanvas} node${d.movedOnCanvas === 1 ? '' : 's'} only moved on the canvas`);
  }
  return lines;
}
