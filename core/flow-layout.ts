// The layout rules of `flows check`: a flow is a document engineers read on the canvas, so a
// wire that runs backwards or across other nodes, a node clipped at the canvas edge, a tab
// named after something other than the plant's work, or a route whose nodes are not grouped
// makes it harder to read. The geometry is the editor's, estimated from the file: a node's
// (x, y) is its centre, its box is as wide as its label and as high as its ports need.
import type { FlowNode } from './flow-files';

export type LayoutRule =
  | 'layout-backward-wire'
  | 'layout-wire-over-node'
  | 'layout-outside-canvas'
  | 'layout-plant-words'
  | 'layout-ungrouped-route';

export interface LayoutFinding {
  rule: LayoutRule;
  nodeId?: string;
  message: string;
}

/** The editor's canvas (Node-RED's default 8000 × 8000). */
export const CANVAS = { width: 8000, height: 8000 };
/** A wire may run this far right-to-left (ports sit on a node's edges, centres may overlap). */
export const BACKWARD_TOLERANCE_PX = 20;

const NODE_HEIGHT = 30;
const PORT_SPACING = 15;

/** Text of a node's label as the editor shows it, near enough for its width. */
function labelOf(node: FlowNode): string {
  // Link nodes and junctions show no label unless asked to (`l`).
  if ((node.type === 'link in' || node.type === 'link out' || node.type === 'link call') && node.l !== true)
    return node.type === 'link call' ? 'link call' : '';
  if (typeof node.name === 'string' && node.name) return node.name;
  if (node.type === 'http in') return `[${String(node.method ?? 'get')}] ${String(node.url ?? '')}`;
  if (node.type === 'link in' || node.type === 'link out' || node.type === 'junction') return '';
  return node.type;
}

export interface Box {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** A node's box on the canvas: about 7 px per label character plus icon and padding, 100 px at least. */
export function boxOf(node: FlowNode): Box | undefined {
  if (typeof node.x !== 'number' || typeof node.y !== 'number') return undefined;
  const label = labelOf(node);
  const small = node.type === 'junction' ? 10 : label === '' ? 30 : 0;
  const width = small || Math.max(100, Math.ceil((label.length * 7 + 50) / 20) * 20);
  const ports = Array.isArray(node.wires) ? node.wires.length : 0;
  const height = small || Math.max(NODE_HEIGHT, ports * PORT_SPACING);
  return {
    left: node.x - width / 2,
    right: node.x + width / 2,
    top: node.y - height / 2,
    bottom: node.y + height / 2,
  };
}

/** Whether the segment from a to b passes through the box (shrunk a little, so touching does not count). */
function segmentCrosses(a: [number, number], b: [number, number], box: Box): boolean {
  const inset = 4;
  const [left, right, top, bottom] = [
    box.left + inset,
    box.right - inset,
    box.top + inset,
    box.bottom - inset,
  ];
  // Liang–Barsky clipping: does any part of the segment lie inside the rectangle?
  let t0 = 0;
  let t1 = 1;
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  for (const [p, q] of [
    [-dx, a[0] - left],
    [dx, right - a[0]],
    [-dy, a[1] - top],
    [dy, bottom - a[1]],
  ]) {
    if (p === 0) {
      if (q < 0) return false;
    } else {
      const t = q / p;
      if (p < 0) t0 = Math.max(t0, t);
      else t1 = Math.min(t1, t);
      if (t0 > t1) return false;
    }
  }
  return true;
}

const name = (n: FlowNode) => `${n.type}${n.name ? ` "${String(n.name)}"` : ''}`;

/** Words from outside the plant: test-data names and a document that is not in the repository. */
const FOREIGN_WORDS = /\bseeds?\b|\bseed \d{3}\b|CONTRACT\.md|\bCONTRACT\b/i;

function textsOf(node: FlowNode): Array<[string, string]> {
  return (['label', 'name', 'info'] as const)
    .filter((k) => typeof node[k] === 'string')
    .map((k) => [k, String(node[k])]);
}

/** The layout findings of one file's nodes (one tab, or the config nodes). */
export function checkLayout(nodes: FlowNode[]): LayoutFinding[] {
  const findings: LayoutFinding[] = [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const placed = nodes.filter((n) => n.type !== 'tab' && n.type !== 'group' && boxOf(n));

  for (const node of nodes) {
    for (const [key, text] of textsOf(node)) {
      if (FOREIGN_WORDS.test(text))
        findings.push({
          rule: 'layout-plant-words',
          nodeId: node.id,
          message: `${name(node)}: its ${key} speaks of "${FOREIGN_WORDS.exec(text)![0]}": name things in the plant's words (docs/flows.md)`,
        });
    }
  }

  for (const node of placed) {
    const box = boxOf(node)!;
    if (box.left < 0 || box.top < 0 || box.right > CANVAS.width || box.bottom > CANVAS.height)
      findings.push({
        rule: 'layout-outside-canvas',
        nodeId: node.id,
        message: `${name(node)}: at (${String(node.x)}, ${String(node.y)}) it is clipped by the canvas edge`,
      });
    (Array.isArray(node.wires) ? node.wires : []).forEach((port, i) => {
      for (const targetId of Array.isArray(port) ? port : []) {
        const target = byId.get(String(targetId));
        const to = target && boxOf(target);
        if (!target || !to) continue;
        const from: [number, number] = [box.right, node.y as number];
        const into: [number, number] = [to.left, target.y as number];
        if (into[0] < from[0] - BACKWARD_TOLERANCE_PX) {
          findings.push({
            rule: 'layout-backward-wire',
            nodeId: node.id,
            message: `${name(node)}: output ${i + 1} runs backwards to ${name(target)} (${Math.round(from[0] - into[0])} px right to left); place the target to the right, or loop back through link nodes`,
          });
          continue;
        }
        const over = placed.find(
          (other) => other !== node && other !== target && segmentCrosses(from, into, boxOf(other)!),
        );
        if (over)
          findings.push({
            rule: 'layout-wire-over-node',
            nodeId: node.id,
            message: `${name(node)}: the wire from output ${i + 1} to ${name(target)} runs over ${name(over)}`,
          });
      }
    });
  }

  // A route is read as one piece: the http in node and everything it leads to sit in a group.
  for (const route of nodes.filter((n) => n.type === 'http in')) {
    const ungrouped: FlowNode[] = [];
    const seen = new Set<string>();
    const queue = [route];
    while (queue.length > 0) {
      const n = queue.shift()!;
      if (seen.has(n.id)) continue;
      seen.add(n.id);
      if (!n.g) ungrouped.push(n);
      for (const port of Array.isArray(n.wires) ? n.wires : [])
        for (const id of Array.isArray(port) ? port : []) {
          const next = byId.get(String(id));
          if (next) queue.push(next);
        }
    }
    if (ungrouped.length > 0)
      findings.push({
        rule: 'layout-ungrouped-route',
        nodeId: route.id,
        message: `route ${String(route.method ?? 'get').toUpperCase()} ${String(route.url ?? '')}: ${ungrouped
          .map(name)
          .join(', ')} ${ungrouped.length === 1 ? 'is' : 'are'} in no group`,
      });
  }
  return findings;
}
