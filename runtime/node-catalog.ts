// Which node types exist where `flows check` runs and the storage module saves: Node-RED's
// core nodes, every installed package that declares Node-RED nodes, and floorflow's own nodes
// with their schemas. Read from the editor .html files, the same declarations the editor
// itself uses, so `flows format` and a deploy agree on what the editor writes.
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import type { EditorDefinition } from '../core/editor-form';
import { NodeCatalog, NodeTypeInfo, resolveRefs, typesFromHtml } from '../core/flow-check';
import type { JsonSchema } from '../core/schema';

/** The floorflow package root (dist/cli/.. /..). */
export const FLOORFLOW_ROOT = path.resolve(__dirname, '..', '..');

interface PackageJson {
  name?: string;
  'node-red'?: { nodes?: Record<string, string> };
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function htmlFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'locales' || e.name === 'node_modules' ? [] : htmlFiles(full);
    return e.name.endsWith('.html') ? [full] : [];
  });
}

/** The package directories under node_modules (including scoped ones). */
function installedPackages(nodeModules: string): string[] {
  if (!fs.existsSync(nodeModules)) return [];
  return fs.readdirSync(nodeModules).flatMap((name) => {
    if (name.startsWith('.')) return [];
    const full = path.join(nodeModules, name);
    if (!name.startsWith('@')) return [full];
    return fs.existsSync(full) && fs.statSync(full).isDirectory()
      ? fs.readdirSync(full).map((n) => path.join(full, n))
      : [];
  });
}

/** A package's node files, as package.json "node-red".nodes lists them. */
function packageNodes(dir: string, pkg: PackageJson): Array<{ key: string; js: string }> {
  return Object.entries(pkg['node-red']?.nodes ?? {}).map(([key, file]) => ({
    key,
    js: path.join(dir, file),
  }));
}

/** A file beside a node's .js; for a compiled file under dist/, the source tree's copy if the build did not copy it. */
function besides(js: string, name: string): string | undefined {
  const candidates = [path.join(path.dirname(js), name)];
  const rel = path.relative(FLOORFLOW_ROOT, js);
  if (rel.startsWith(`dist${path.sep}`))
    candidates.push(path.join(FLOORFLOW_ROOT, path.dirname(rel.slice(5)), name));
  return candidates.find((c) => fs.existsSync(c));
}

function addTypes(catalog: NodeCatalog, infos: NodeTypeInfo[]): void {
  for (const info of infos) if (!catalog.types.has(info.type)) catalog.types.set(info.type, info);
}

/** Stands in for everything an editor script touches besides registerType (RED.validators, $, ...). */
function anything(): unknown {
  const target = function () {
    return proxy;
  };
  const proxy: unknown = new Proxy(target, {
    get: (_t, key) => (key === Symbol.toPrimitive ? () => '' : key === 'then' ? undefined : proxy),
    apply: () => proxy,
    construct: () => proxy as object,
  });
  return proxy;
}

/**
 * The definitions an editor .html registers, read by running its scripts against a stand-in
 * `RED` that records `registerType`: the defaults are JavaScript (validators, functions), so
 * only running them gives the property list the editor itself sees. A script that fails is
 * skipped; its types then have no definition and are written as they are.
 */
export function editorDefinitionsFromHtml(html: string): Map<string, EditorDefinition> {
  const found = new Map<string, EditorDefinition>();
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)].filter(
    ([, attributes]) =>
      !/\bsrc\s*=/i.test(attributes) &&
      !/data-(template|help)-name/i.test(attributes) &&
      !/type\s*=\s*["']text\/(html|x-red|markdown)/i.test(attributes),
  );
  for (const [, , code] of scripts) {
    const stub = anything();
    const nodes = new Proxy(
      {},
      {
        get: (_t, key) =>
          key === 'registerType'
            ? (type: string, def: Record<string, unknown>) => {
                const defaults = (def?.defaults ?? {}) as Record<string, unknown>;
                found.set(type, {
                  defaults: Object.keys(defaults),
                  category: typeof def.category === 'string' ? def.category : undefined,
                  inputs: typeof def.inputs === 'number' ? def.inputs : undefined,
                  outputs: typeof def.outputs === 'number' ? def.outputs : undefined,
                  showLabel: typeof def.showLabel === 'boolean' ? def.showLabel : undefined,
                });
              }
            : stub,
      },
    );
    const RED = new Proxy({}, { get: (_t, key) => (key === 'nodes' ? nodes : stub) });
    const quiet = { log() {}, warn() {}, error() {}, info() {}, debug() {} };
    try {
      vm.runInNewContext(
        code,
        { RED, $: stub, jQuery: stub, window: stub, document: stub, navigator: stub, console: quiet },
        { timeout: 1000 },
      );
    } catch {
      // A script that needs a real browser: its types keep no definition (see above).
    }
  }
  return found;
}

function withDefinitions(infos: NodeTypeInfo[], html: string): NodeTypeInfo[] {
  const definitions = editorDefinitionsFromHtml(html);
  return infos.map((info) => ({ ...info, editor: definitions.get(info.type) }));
}

function addPackage(catalog: NodeCatalog, dir: string, pkg: PackageJson, withSchemas: boolean): void {
  const source = pkg.name ?? path.basename(dir);
  for (const { key, js } of packageNodes(dir, pkg)) {
    const html = besides(js, path.basename(js).replace(/\.js$/, '.html'));
    const text = html ? fs.readFileSync(html, 'utf8') : undefined;
    const infos = text ? withDefinitions(typesFromHtml(text, source), text) : [];
    // Without an editor file, the "nodes" key is the best guess at the type name.
    addTypes(catalog, infos.length > 0 ? infos : [{ type: key, source, config: false, refs: {} }]);
    if (!withSchemas) continue;
    const schemaFile = besides(js, 'schema.json');
    const schema = schemaFile ? readJson<JsonSchema>(schemaFile) : undefined;
    if (schema)
      for (const info of infos.length > 0 ? infos : [{ type: key }]) catalog.schemas.set(info.type, schema);
  }
}

/**
 * The catalog for flows run by this floorflow: Node-RED core, floorflow's nodes, and the
 * Node-RED packages installed beside floorflow or in `projectDir` (a plant's own project).
 */
export function loadNodeCatalog(projectDir: string = process.cwd()): NodeCatalog {
  const catalog: NodeCatalog = { types: new Map(), schemas: new Map() };
  const core = path.join(path.dirname(require.resolve('@node-red/nodes/package.json')), 'core');
  for (const html of htmlFiles(core)) {
    const text = fs.readFileSync(html, 'utf8');
    addTypes(catalog, withDefinitions(typesFromHtml(text, 'node-red'), text));
  }

  const own = readJson<PackageJson>(path.join(FLOORFLOW_ROOT, 'package.json'));
  if (own) addPackage(catalog, FLOORFLOW_ROOT, own, true);
  const project = path.resolve(projectDir);
  if (project !== FLOORFLOW_ROOT) {
    const plant = readJson<PackageJson>(path.join(project, 'package.json'));
    if (plant) addPackage(catalog, project, plant, true);
  }
  const seen = new Set<string>();
  for (const nodeModules of [path.join(FLOORFLOW_ROOT, 'node_modules'), path.join(project, 'node_modules')]) {
    for (const dir of installedPackages(nodeModules)) {
      const pkg = readJson<PackageJson>(path.join(dir, 'package.json'));
      if (!pkg?.['node-red']?.nodes || seen.has(pkg.name ?? dir)) continue;
      seen.add(pkg.name ?? dir);
      addPackage(catalog, dir, pkg, false);
    }
  }
  resolveRefs(catalog);
  return catalog;
}

/** The editor definition of every type in the catalog that has one. */
export function editorDefinitions(catalog: NodeCatalog): Map<string, EditorDefinition> {
  const out = new Map<string, EditorDefinition>();
  for (const [type, info] of catalog.types) if (info.editor) out.set(type, info.editor);
  return out;
}
