// How a Node-RED flow array maps to reviewable files: one file per tab, one per subflow,
// one for global config nodes, with stable key order, so an edit in the editor is a small
// git diff. Pure functions: the storage module and `flows check`/`flows diff` share them.
import crypto from 'node:crypto';

export interface FlowNode {
  id: string;
  type: string;
  z?: string;
  name?: string;
  label?: string;
  wires?: string[][];
  [key: string]: unknown;
}

export interface FlowFile {
  /**
   * Path relative to the project root: "flows/job-status.json", "flows/subflows/retry.json",
   * "dashboards/embossing.json". Tabs holding dashboard widgets and ui-* config nodes live
   * under dashboards/, everything else under flows/.
   */
  file: string;
  nodes: FlowNode[];
}

/** Sorts object keys recursively (id, type, z, name first), arrays keep their order. */
export function stableValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stableValue);
  if (value && typeof value === 'object') {
    const first = ['id', 'type', 'z', 'g', 'name', 'label'];
    const keys = Object.keys(value as Record<string, unknown>).sort((a, b) => {
      const ia = first.indexOf(a);
      const ib = first.indexOf(b);
      if (ia !== -1 || ib !== -1) return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
      return a < b ? -1 : a > b ? 1 : 0;
    });
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = stableValue((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

export function stringifyFlowFile(nodes: FlowNode[]): string {
  return JSON.stringify(stableValue(nodes), null, 2) + '\n';
}

/** The manifest's hash of a file's content: independent of whitespace and key order. */
export function contentHash(nodes: FlowNode[]): string {
  return 'sha256:' + crypto.createHash('sha256').update(stringifyFlowFile(nodes)).digest('hex').slice(0, 16);
}

export function slugify(label: string): string {
  const slug = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug || 'flow';
}

const isDashboardType = (type: string) => type.startsWith('ui-') || type.startsWith('ui_');

/**
 * Splits a deployed flow array into files. `known` maps a tab or subflow id to the file it
 * came from, so a renamed tab keeps its file (and its history).
 */
export function splitFlows(flows: FlowNode[], known: Map<string, string> = new Map()): FlowFile[] {
  const containers = flows.filter((n) => n.type === 'tab' || n.type === 'subflow');
  const byContainer = new Map<string, FlowNode[]>();
  for (const c of containers) byContainer.set(c.id, [c]);
  const flowConfig: FlowNode[] = [];
  const dashboardConfig: FlowNode[] = [];
  for (const n of flows) {
    if (n.type === 'tab' || n.type === 'subflow') continue;
    const home = n.z ? byContainer.get(n.z) : undefined;
    if (home) home.push(n);
    else (isDashboardType(n.type) ? dashboardConfig : flowConfig).push(n);
  }
  const used = new Set<string>(['flows/config.json', 'dashboards/config.json']);
  const files: FlowFile[] = [];
  for (const c of containers) {
    const nodes = byContainer.get(c.id)!;
    let file = known.get(c.id);
    if (!file || used.has(file)) {
      const dir =
        c.type === 'subflow'
          ? 'flows/subflows/'
          : nodes.some((n) => isDashboardType(n.type))
            ? 'dashboards/'
            : 'flows/';
      const base = dir + slugify(String(c.label ?? c.name ?? c.id));
      file = `${base}.json`;
      for (let i = 2; used.has(file); i++) file = `${base}-${i}.json`;
    }
    used.add(file);
    files.push({ file, nodes });
  }
  files.push({ file: 'flows/config.json', nodes: flowConfig });
  if (dashboardConfig.length > 0) files.push({ file: 'dashboards/config.json', nodes: dashboardConfig });
  return files;
}

/** Joins files back into one flow array: tabs in `tabOrder`, then the rest by path, config last. */
export function joinFlows(files: FlowFile[], tabOrder: string[] = []): FlowNode[] {
  const rank = (f: FlowFile) => {
    if (f.file.endsWith('/config.json')) return 3e6;
    if (f.file.includes('/subflows/')) return 2e6;
    const i = tabOrder.indexOf(f.file);
    return i === -1 ? 1e6 : i;
  };
  const sorted = [...files].sort(
    (a, b) => rank(a) - rank(b) || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0),
  );
  return sorted.flatMap((f) => f.nodes);
}

/**
 * Dashboard templates live in files of their own beside the dashboard flows
 * (dashboards/templates/<tab file>/<node id>.vue, or .css for a site style), so a template
 * edit is a line-by-line diff instead of a change to one long JSON string. The flow file's
 * `ui-template` node then has no `format`; loading puts it back.
 */
export function templateFileName(node: FlowNode): string {
  return `${node.id}.${node.templateScope === 'site:style' ? 'css' : 'vue'}`;
}

/** The nodes without their templates, and each template's text by file name. */
export function separateTemplates(nodes: FlowNode[]): { nodes: FlowNode[]; templates: Map<string, string> } {
  const templates = new Map<string, string>();
  const rest = nodes.map((n) => {
    if (n.type !== 'ui-template' || typeof n.format !== 'string') return n;
    templates.set(templateFileName(n), n.format);
    const { format: _format, ...withoutFormat } = n;
    return withoutFormat as FlowNode;
  });
  return { nodes: rest, templates };
}

/** The nodes with each `ui-template` that has no `format` given the text of its template file. */
export function assembleTemplates(
  nodes: FlowNode[],
  read: (fileName: string) => string | undefined,
): FlowNode[] {
  return nodes.map((n) => {
    if (n.type !== 'ui-template' || typeof n.format === 'string') return n;
    const text = read(templateFileName(n));
    return text === undefined ? n : { ...n, format: text };
  });
}
