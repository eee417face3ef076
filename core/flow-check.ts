// The rules of `floorflow flows check`: what makes a set of flow files unsafe to deploy,
// found before a runtime loads them. Pure: the CLI reads the files, the installed node
// packages and the schemas, and passes their text here.
import { EditorDefinition, awaitsMigration, editorFile } from './editor-form';
import { LayoutRule, checkLayout } from './flow-layout';
import type { JsonSchema } from './schema';
import { validate } from './schema';
import { FlowNode, contentHash, separateTemplates, stringifyFlowFile } from './flow-files';
import {
  NODE_MIGRATIONS,
  NodeMigrationError,
  currentSchemaVersion,
  migrateNode,
  schemaVersionOf,
} from './node-migrations';

export type Rule =
  | 'json'
  | 'shape'
  | 'format'
  | 'duplicate-id'
  | 'unknown-type'
  | 'missing-wire'
  | 'missing-container'
  | 'missing-config'
  | 'wrong-config-type'
  | 'schema'
  | 'duplicate-route'
  | 'manifest'
  | 'manifest-version'
  | 'old-schema-version'
  | 'newer-schema-version'
  | LayoutRule;

export interface Finding {
  level: 'error' | 'warning';
  rule: Rule;
  /** The file as the manifest names it: flows/job-status.json, dashboards/embossing.json. */
  file: string;
  nodeId?: string;
  message: string;
}

/** What the editor declares about a node type (from its .html). */
export interface NodeTypeInfo {
  type: string;
  /** Where it comes from: "node-red", a package name. */
  source: string;
  /** A config node (category 'config'), referenced by other nodes' properties. */
  config: boolean;
  /** Properties holding the id of a config node, with the type it must have. */
  refs: Record<string, { type: string; required: boolean }>;
  /** The definition the editor registers, when its script could be read: what a deploy writes. */
  editor?: EditorDefinition;
}

export interface NodeCatalog {
  types: Map<string, NodeTypeInfo>;
  /** Configuration schemas of floorflow node types (nodes/<name>/schema.json). */
  schemas: Map<string, JsonSchema>;
}

export interface SourceFile {
  /** flows/<name>.json or dashboards/<name>.json, as in the manifest. */
  file: string;
  text: string;
  /** The nodes with what lives beside the file put back (dashboard templates), as a runtime loads them. */
  assemble?: (nodes: FlowNode[]) => FlowNode[];
}

export interface CheckInput {
  files: SourceFile[];
  /** The text of flows/manifest.json; undefined when there is none. */
  manifest?: string;
  catalog: NodeCatalog;
}

/** Types the editor itself provides, with no package behind them. */
const STRUCTURAL_TYPES = new Set(['tab', 'subflow', 'group', 'junction']);

/**
 * Properties that name a config node by convention, checked for existence when a type's
 * editor file could not be read to say what it expects.
 */
const CONVENTIONAL_REFS = ['broker', 'db', 'server', 'group', 'page', 'ui', 'tls'];

/**
 * The node types an editor .html file registers, with their config-node properties, read
 * from `RED.nodes.registerType('x', { category, defaults: { p: { type: 'y' } } })`. This reads
 * source text, not JavaScript, so it looks only for those literal shapes, which is how every
 * Node-RED node file declares them.
 */
export function typesFromHtml(html: string, source: string): NodeTypeInfo[] {
  const found = new Map<string, NodeTypeInfo>();
  const starts = [...html.matchAll(/registerType\(\s*(['"])([^'"]+)\1/g)];
  starts.forEach((start, i) => {
    const block = html.slice(start.index, starts[i + 1]?.index ?? html.length);
    const refs: NodeTypeInfo['refs'] = {};
    // Each `name: {` opens a property; its text up to the next brace holds `type` and
    // `required` (they come before any `validate: function () {`).
    for (const prop of block.matchAll(/([A-Za-z_$][\w$]*)\s*:\s*\{/g)) {
      const body = block.slice(prop.index + prop[0].length).split(/[{}]/, 1)[0];
      const typeOf = /\btype\s*:\s*(['"])([^'"]+)\1/.exec(body);
      if (!typeOf) continue;
      refs[prop[1]] = { type: typeOf[2], required: /\brequired\s*:\s*true\b/.test(body) };
    }
    found.set(start[2], {
      type: start[2],
      source,
      config: /\bcategory\s*:\s*(['"])config\1/.test(block),
      refs,
    });
  });
  for (const template of html.matchAll(/data-template-name\s*=\s*(['"])([^'"]+)\1/g)) {
    if (!found.has(template[2]))
      found.set(template[2], { type: template[2], source, config: false, refs: {} });
  }
  return [...found.values()];
}

/** Keeps only the refs whose type is a known node type (credentials also say `type: "password"`). */
export function resolveRefs(catalog: NodeCatalog): void {
  for (const info of catalog.types.values()) {
    for (const [prop, ref] of Object.entries(info.refs)) {
      if (!catalog.types.has(ref.type)) delete info.refs[prop];
    }
  }
}

function jsonErrorAt(text: string, err: Error): string {
  const position = /position (\d+)/.exec(err.message);
  if (!position) return err.message;
  const before = text.slice(0, Number(position[1]));
  const line = before.split('\n').length;
  const column = Number(position[1]) - before.lastIndexOf('\n');
  return `${err.message.replace(/ in JSON at position \d+.*$/, '')} (line ${line}, column ${column})`;
}

function label(node: FlowNode): string {
  const name = node.name || node.label;
  return `${node.type}${name ? ` "${String(name)}"` : ''}`;
}

function routeOf(node: FlowNode): string {
  const method = String(node.method ?? 'get').toUpperCase();
  let url = String(node.url ?? '').trim();
  if (!url.startsWith('/')) url = '/' + url;
  if (url.length > 1) url = url.replace(/\/+$/, '');
  // /jobs/:id and /jobs/:jobId are the same route to Express.
  return `${method} ${url.replace(/:[^/]+/g, ':param')}`;
}

interface Located {
  file: string;
  node: FlowNode;
}

/** Parses the files; JSON and shape errors become findings, the rest is returned. */
interface ParsedFile {
  file: string;
  /** As a runtime loads them (dashboard templates put back). */
  nodes: FlowNode[];
  /** As the file holds them. */
  raw: FlowNode[];
  text: string;
  /** Its dashboard templates belong in files of their own. */
  templatesApart: boolean;
  /** Every entry is a node (none was left out as malformed). */
  whole: boolean;
}

function parseFiles(files: SourceFile[], findings: Finding[]): ParsedFile[] {
  const parsed: ParsedFile[] = [];
  for (const source of files) {
    let value: unknown;
    try {
      value = JSON.parse(source.text);
    } catch (err) {
      findings.push({
        level: 'error',
        rule: 'json',
        file: source.file,
        message: `not valid JSON: ${jsonErrorAt(source.text, err as Error)}`,
      });
      continue;
    }
    if (!Array.isArray(value)) {
      findings.push({
        level: 'error',
        rule: 'shape',
        file: source.file,
        message: 'must be a JSON array of nodes',
      });
      continue;
    }
    const nodes: FlowNode[] = [];
    value.forEach((n: unknown, i) => {
      const node = n as Partial<FlowNode> | null;
      if (!node || typeof node !== 'object' || typeof node.id !== 'string' || typeof node.type !== 'string') {
        findings.push({
          level: 'error',
          rule: 'shape',
          file: source.file,
          message: `entry ${i} is not a node with a string "id" and "type"`,
        });
      } else nodes.push(node as FlowNode);
    });
    parsed.push({
      file: source.file,
      nodes: source.assemble ? source.assemble(nodes) : nodes,
      raw: nodes,
      text: source.text,
      templatesApart: source.assemble !== undefined,
      whole: nodes.length === value.length,
    });
  }
  return parsed;
}

function checkManifest(
  manifestText: string | undefined,
  parsed: Array<{ file: string; nodes: FlowNode[] }>,
  present: Set<string>,
  findings: Finding[],
): void {
  const where = 'flows/manifest.json';
  const fix = 'run `npx floorflow flows manifest` to record the files as they are, and commit it';
  if (manifestText === undefined) {
    if (parsed.length > 0)
      findings.push({ level: 'error', rule: 'manifest', file: where, message: `missing: ${fix}` });
    return;
  }
  let manifest: { flows?: Record<string, { version?: string; hash?: string }> };
  try {
    manifest = JSON.parse(manifestText) as typeof manifest;
  } catch (err) {
    findings.push({
      level: 'error',
      rule: 'json',
      file: where,
      message: `not valid JSON: ${jsonErrorAt(manifestText, err as Error)}`,
    });
    return;
  }
  const entries = manifest.flows ?? {};
  for (const { file, nodes } of parsed) {
    const entry = entries[file];
    if (!entry) {
      findings.push({ level: 'error', rule: 'manifest', file, message: `not listed in ${where}: ${fix}` });
      continue;
    }
    const hash = contentHash(nodes);
    if (entry.hash !== hash) {
      findings.push({
        level: 'error',
        rule: 'manifest-version',
        file,
        message: `content changed but its version ${entry.version ?? '(none)'} was not raised (manifest hash ${entry.hash ?? '(none)'}, file ${hash}): ${fix}`,
      });
    }
  }
  for (const file of Object.keys(entries)) {
    if (!present.has(file))
      findings.push({
        level: 'error',
        rule: 'manifest',
        file: where,
        message: `lists ${file}, which does not exist: ${fix}`,
      });
  }
}

/** The definitions of the catalog's types that have one. */
function definitionsOf(catalog: NodeCatalog): Map<string, EditorDefinition> {
  const out = new Map<string, EditorDefinition>();
  for (const [type, info] of catalog.types) if (info.editor) out.set(type, info.editor);
  return out;
}

/**
 * Files not exactly as an editor deploy writes them: a deploy of any tab would rewrite them
 * (losing properties the editor does not know, reordering nodes), burying the real change.
 */
function checkFormat(files: ParsedFile[], catalog: NodeCatalog, findings: Finding[]): void {
  const definitions = definitionsOf(catalog);
  for (const { file, raw, text, whole, templatesApart } of files) {
    const form = editorFile(raw, definitions, undefined, awaitsMigration);
    // A dashboard file keeps its templates in files of their own (core/flow-files.ts).
    if (!whole || text === stringifyFlowFile(templatesApart ? separateTemplates(form).nodes : form)) continue;
    findings.push({
      level: 'warning',
      rule: 'format',
      file,
      message:
        'not in the form a deploy writes (as the editor exports it: its properties and node order, stable key order, 2-space indent): run `npx floorflow flows format`',
    });
  }
}

export function checkFlows(input: CheckInput): Finding[] {
  const findings: Finding[] = [];
  const { catalog } = input;
  const files = parseFiles(input.files, findings);
  checkFormat(files, catalog, findings);
  for (const { file, nodes } of files) {
    for (const f of checkLayout(nodes)) findings.push({ level: 'error', file, ...f });
  }
  // The manifest is checked against the files that parse; one that does not already failed.
  checkManifest(input.manifest, files, new Set(input.files.map((f) => f.file)), findings);

  const byId = new Map<string, Located>();
  for (const { file, nodes } of files) {
    for (const node of nodes) {
      const first = byId.get(node.id);
      if (first) {
        findings.push({
          level: 'error',
          rule: 'duplicate-id',
          file,
          nodeId: node.id,
          message: `${label(node)}: id also used by ${label(first.node)} in ${first.file}`,
        });
      } else byId.set(node.id, { file, node });
    }
  }
  const containers = new Map(
    [...byId.values()]
      .filter((l) => l.node.type === 'tab' || l.node.type === 'subflow')
      .map((l) => [l.node.id, l.node]),
  );
  const routes = new Map<string, Located>();

  for (const { file, nodes } of files) {
    for (const node of nodes) {
      const at = { file, nodeId: node.id };
      const info = catalog.types.get(node.type);
      if (STRUCTURAL_TYPES.has(node.type)) {
        // nothing to know about these types
      } else if (node.type.startsWith('subflow:')) {
        const subflowId = node.type.slice('subflow:'.length);
        if (containers.get(subflowId)?.type !== 'subflow') {
          findings.push({
            level: 'error',
            rule: 'unknown-type',
            ...at,
            message: `${label(node)}: instance of subflow ${subflowId}, which no file defines`,
          });
        }
      } else if (!info) {
        const replaced = replacementOf(node);
        findings.push({
          level: 'error',
          rule: 'unknown-type',
          ...at,
          message: replaced
            ? `${label(node)}: ${node.type} was split into one node type per step; replace this node with ${replaced}`
            : `${label(node)}: unknown node type ${node.type} (not a Node-RED core node, nor in an installed package)`,
        });
      }

      if (node.z && !containers.has(node.z)) {
        findings.push({
          level: 'error',
          rule: 'missing-container',
          ...at,
          message: `${label(node)}: its tab or subflow ${node.z} does not exist`,
        });
      }

      (Array.isArray(node.wires) ? node.wires : []).forEach((port, i) => {
        for (const target of Array.isArray(port) ? port : []) {
          if (!byId.has(String(target))) {
            findings.push({
              level: 'error',
              rule: 'missing-wire',
              ...at,
              message: `${label(node)}: output ${i + 1} is wired to ${String(target)}, which does not exist`,
            });
          }
        }
      });
      if (Array.isArray(node.links)) {
        for (const target of node.links) {
          if (!byId.has(String(target))) {
            findings.push({
              level: 'error',
              rule: 'missing-wire',
              ...at,
              message: `${label(node)}: links to ${String(target)}, which does not exist`,
            });
          }
        }
      }

      const refs: NodeTypeInfo['refs'] = { ...(info?.refs ?? {}) };
      if (!info)
        for (const prop of CONVENTIONAL_REFS)
          if (typeof node[prop] === 'string' && node[prop] !== '')
            refs[prop] ??= { type: '', required: false };
      for (const [prop, ref] of Object.entries(refs)) {
        const value = node[prop];
        if (value === undefined || value === null || value === '' || value === '_ADD_') {
          if (ref.required && node.d !== true) {
            findings.push({
              level: 'error',
              rule: 'missing-config',
              ...at,
              message: `${label(node)}: ${prop} must name a ${ref.type} config node`,
            });
          }
          continue;
        }
        if (typeof value !== 'string') continue;
        const target = byId.get(value);
        if (!target) {
          findings.push({
            level: 'error',
            rule: 'missing-config',
            ...at,
            message: `${label(node)}: ${prop} names config node ${value}, which does not exist${ref.type ? ` (expected a ${ref.type})` : ''}`,
          });
        } else if (ref.type && target.node.type !== ref.type) {
          findings.push({
            level: 'error',
            rule: 'wrong-config-type',
            ...at,
            message: `${label(node)}: ${prop} names ${value}, a ${target.node.type} in ${target.file}, but needs a ${ref.type}`,
          });
        }
      }

      checkNodeConfig(node, catalog, at, findings);

      if (
        node.type === 'http in' &&
        node.d !== true &&
        !(node.z && containers.get(node.z)?.disabled === true)
      ) {
        const route = routeOf(node);
        const first = routes.get(route);
        if (first) {
          findings.push({
            level: 'error',
            rule: 'duplicate-route',
            ...at,
            message: `${label(node)}: route ${route.replace(/:param/g, ':…')} is also defined by node ${first.node.id} in ${first.file}`,
          });
        } else routes.set(route, { file, node });
      }
    }
  }
  return findings;
}

/** Schema and version checks of one floorflow node's configuration. */
function checkNodeConfig(
  node: FlowNode,
  catalog: NodeCatalog,
  at: { file: string; nodeId: string },
  findings: Finding[],
): void {
  let config = node;
  if (NODE_MIGRATIONS[node.type]) {
    let result;
    try {
      result = migrateNode(node);
    } catch (err) {
      if (!(err instanceof NodeMigrationError)) throw err;
      findings.push({
        level: 'error',
        rule: 'newer-schema-version',
        ...at,
        message: `${label(node)}: ${err.message}`,
      });
      return;
    }
    if (result) {
      findings.push({
        level: 'warning',
        rule: 'old-schema-version',
        ...at,
        message: `${label(node)}: configuration is at schemaVersion ${schemaVersionOf(node)}, current is ${currentSchemaVersion(node.type)}; it is upgraded on load, and \`npx floorflow flows migrate\` (or a deploy from the editor) writes it to the file (${result.changes.join('; ')})`,
      });
      config = result.node;
    }
  }
  const schema = catalog.schemas.get(node.type);
  if (!schema) return;
  // A copy: the validator fills in defaults.
  const checked = validate(schema, structuredClone(config));
  if (!checked.ok)
    findings.push({
      level: 'error',
      rule: 'schema',
      ...at,
      message: `${label(node)}: configuration does not match its schema: ${checked.error}`,
    });
}

export function formatFinding(f: Finding): string {
  return `${f.level === 'error' ? 'error' : 'warning'} ${f.file}${f.nodeId ? ` node ${f.nodeId}` : ''}: ${f.message} [${f.rule}]`;
}

/**
 * Node types of earlier releases that did many things by an `action` setting, and the node type
 * that now does each (docs/processing.md, embossing.md, engraving.md, job-status.md): a flow of a
 * plant's own that still holds one is told what to put in its place.
 */
const SPLIT_TYPES: Readonly<Record<string, { doc: string; byAction: Readonly<Record<string, string>> }>> = {
  'floorflow-processing': {
    doc: 'docs/processing.md',
    byAction: {
      confirm: 'floorflow-processing-confirm',
      queue: 'floorflow-processing-queue',
      job: 'floorflow-processing-job',
      logs: 'floorflow-processing-logs',
      reset: 'floorflow-processing-reset',
      stage:
        'the stage node of its stage (floorflow-processing-validate, -select-content, -record-write or -verify)',
      complete: 'floorflow-processing-complete',
      fail: 'floorflow-processing-retry',
    },
  },
  'floorflow-embossing': {
    doc: 'docs/embossing.md',
    byAction: {
      plates: 'floorflow-embossing-plates',
      create: 'floorflow-embossing-create',
      list: 'floorflow-embossing-jobs',
      get: 'floorflow-embossing-jobs',
      logs: 'floorflow-embossing-jobs',
      retry: 'floorflow-embossing-retry',
      cancel: 'floorflow-embossing-cancel',
      'dead-letter': 'floorflow-embossing-dead-letter',
    },
  },
  'floorflow-job-status-api': {
    doc: 'docs/job-status.md',
    byAction: {
      'process-print-os': 'floorflow-process-print-os',
      'process-status-updates': 'floorflow-process-status-updates',
      'job-status': 'floorflow-job-status',
      reprocess: 'floorflow-job-status-reprocess',
      gaps: 'floorflow-job-status-gaps',
    },
  },
  'floorflow-products': {
    doc: 'docs/lifecycle.md',
    byAction: {
      dispatchable: 'floorflow-products-dispatchable',
      lifecycle: 'floorflow-product-lifecycle',
      history: 'floorflow-product-history',
      dashboard: 'floorflow-dashboard-status',
      request: 'floorflow-product-move-request',
      reply: 'floorflow-product-move-answer',
    },
  },
  'floorflow-engraving': { doc: 'docs/engraving.md', byAction: {} },
};

function replacementOf(node: FlowNode): string | undefined {
  const split = SPLIT_TYPES[node.type];
  if (!split) return undefined;
  const action = typeof node.action === 'string' ? node.action : '';
  const by = Object.prototype.hasOwnProperty.call(split.byAction, action)
    ? split.byAction[action]
    : undefined;
  return by ? `${by} (${split.doc})` : `the node type of its step listed in ${split.doc}`;
}
