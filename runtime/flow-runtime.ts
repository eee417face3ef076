// The Node-RED storage module for versioned flows: the deployed flows live as files under
// flows/ and dashboards/ (one per tab, subflow and config group) listed in
// flows/manifest.json with a version each. A deploy from the editor writes the files back,
// raises the version of each flow whose content changed, and records a flow_deployments row.
// A full deploy sends every tab: a tab that comes back as it was served (in the editor's form)
// keeps its file and version untouched. Credentials, sessions, settings and the library stay
// in Node-RED's user dir.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import {
  FlowFile,
  FlowNode,
  assembleTemplates,
  contentHash,
  joinFlows,
  separateTemplates,
  splitFlows,
  stringifyFlowFile,
} from '../core/flow-files';
import { EditorDefinition, allNodeIds, editorForm, withoutDerived } from '../core/editor-form';
import { migrateFlowNodes } from '../core/node-migrations';
import type { FloorflowConfig } from '../settings';
import { editorDefinitions, loadNodeCatalog } from './node-catalog';

export const LOCAL_BROKER_ID = 'floorflow-local-broker';

export interface ManifestEntry {
  id: string;
  label: string;
  version: string;
  hash: string;
  nodeTypes: string[];
}

export interface Manifest {
  package: { name: string; version: string };
  order: string[];
  flows: Record<string, ManifestEntry>;
}

/** Flow versions by tab id, for the audit rows nodes write. */
export class FlowVersions {
  private byId = new Map<string, string>();
  update(manifest: Manifest): void {
    this.byId = new Map(Object.values(manifest.flows).map((e) => [e.id, e.version]));
  }
  versionOf(flowId: string | undefined): string | undefined {
    return flowId ? this.byId.get(flowId) : undefined;
  }
}

export { contentHash };

export function bumpPatch(version: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  return m ? `${m[1]}.${m[2]}.${Number(m[3]) + 1}` : '1.0.0';
}

function packageInfo(): { name: string; version: string } {
  const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  return { name: pkg.name, version: pkg.version };
}

export interface FlowDirs {
  flowsDir: string;
  dashboardsDir: string;
}

function absolute(dirs: FlowDirs, file: string): string {
  if (file.startsWith('dashboards/')) return path.join(dirs.dashboardsDir, file.slice('dashboards/'.length));
  return path.join(dirs.flowsDir, file.replace(/^flows\//, ''));
}

function listJson(dir: string, prefix: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) out.push(...listJson(path.join(dir, entry.name), `${prefix}${entry.name}/`));
    else if (entry.name.endsWith('.json') && !(prefix === 'flows/' && entry.name === 'manifest.json')) {
      out.push(prefix + entry.name);
    }
  }
  return out.sort();
}

/** Every flow file under the two directories: its name as in the manifest, and its path. */
export function listFlowFiles(dirs: FlowDirs): Array<{ file: string; path: string }> {
  return [...listJson(dirs.flowsDir, 'flows/'), ...listJson(dirs.dashboardsDir, 'dashboards/')].map(
    (file) => ({
      file,
      path: absolute(dirs, file),
    }),
  );
}

export class FlowFileError extends Error {}

/** Where a dashboard file's templates live: dashboards/templates/<file name without .json>/. */
export function templatesDir(dirs: FlowDirs, file: string): string | undefined {
  if (!file.startsWith('dashboards/') || file === 'dashboards/config.json') return undefined;
  return path.join(dirs.dashboardsDir, 'templates', file.slice('dashboards/'.length).replace(/\.json$/, ''));
}

/** A file's nodes with its dashboard templates put back from their files. */
export function withTemplates(dirs: FlowDirs, file: string, nodes: FlowNode[]): FlowNode[] {
  const dir = templatesDir(dirs, file);
  if (!dir) return nodes;
  return assembleTemplates(nodes, (name) => {
    const full = path.join(dir, name);
    return fs.existsSync(full) ? fs.readFileSync(full, 'utf8') : undefined;
  });
}

/**
 * Writes a file as a deploy does: the JSON without its dashboard templates, each template in
 * its own file, and no template file left behind for a template node that is gone.
 */
export function writeFlowFile(dirs: FlowDirs, file: string, nodes: FlowNode[]): void {
  const dir = templatesDir(dirs, file);
  if (!dir) {
    writeAtomic(absolute(dirs, file), stringifyFlowFile(nodes));
    return;
  }
  const separated = separateTemplates(nodes);
  for (const [name, text] of separated.templates) writeAtomic(path.join(dir, name), text);
  if (fs.existsSync(dir))
    for (const name of fs.readdirSync(dir))
      if (!separated.templates.has(name)) fs.rmSync(path.join(dir, name), { force: true });
  writeAtomic(absolute(dirs, file), stringifyFlowFile(separated.nodes));
}

/** Reads every flow file; a file that is not a JSON array of nodes throws with its path. */
export function readFlowFiles(dirs: FlowDirs): FlowFile[] {
  const files = [...listJson(dirs.flowsDir, 'flows/'), ...listJson(dirs.dashboardsDir, 'dashboards/')];
  return files.map((file) => {
    const full = absolute(dirs, file);
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(full, 'utf8'));
    } catch (err) {
      throw new FlowFileError(`${full}: ${(err as Error).message}`);
    }
    if (
      !Array.isArray(parsed) ||
      parsed.some((n) => !n || typeof n !== 'object' || typeof n.id !== 'string')
    ) {
      throw new FlowFileError(`${full}: must be a JSON array of nodes, each with an "id"`);
    }
    return { file, nodes: withTemplates(dirs, file, parsed as FlowNode[]) };
  });
}

export function readManifest(dirs: FlowDirs): Manifest {
  const file = path.join(dirs.flowsDir, 'manifest.json');
  if (!fs.existsSync(file)) return { package: packageInfo(), order: [], flows: {} };
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
  } catch (err) {
    throw new FlowFileError(`${file}: ${(err as Error).message}`);
  }
}

function entryFor(file: FlowFile, previous: ManifestEntry | undefined): ManifestEntry {
  const container = file.nodes.find((n) => n.type === 'tab' || n.type === 'subflow');
  const hash = contentHash(file.nodes);
  const version = !previous
    ? '1.0.0'
    : previous.hash === hash
      ? previous.version
      : bumpPatch(previous.version);
  return {
    id: container?.id ?? file.file,
    label: String(container?.label ?? container?.name ?? file.file),
    version,
    hash,
    nodeTypes: [...new Set(file.nodes.map((n) => n.type))]
      .filter((t) => t !== 'tab' && t !== 'subflow')
      .sort(),
  };
}

/** The manifest after a set of files was written: versions raised where content changed. */
export function nextManifest(previous: Manifest, files: FlowFile[]): Manifest {
  const flows: Record<string, ManifestEntry> = {};
  for (const f of files) flows[f.file] = entryFor(f, previous.flows[f.file]);
  const tabs = files.filter((f) => f.nodes[0]?.type === 'tab').map((f) => f.file);
  return { package: packageInfo(), order: tabs, flows };
}

export function writeManifest(dirs: FlowDirs, manifest: Manifest): void {
  fs.mkdirSync(dirs.flowsDir, { recursive: true });
  const sorted: Record<string, ManifestEntry> = {};
  for (const key of Object.keys(manifest.flows).sort()) sorted[key] = manifest.flows[key];
  writeAtomic(
    path.join(dirs.flowsDir, 'manifest.json'),
    JSON.stringify({ ...manifest, flows: sorted }, null, 2) + '\n',
  );
}

function writeAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text) return;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

// Node-RED's credential encryption (aes-256-ctr keyed by sha256(credentialSecret)), so
// the local broker's password can be supplied at run time and kept out of every file.
function decryptCredentials(stored: Record<string, unknown>, secret: string): Record<string, unknown> {
  if (typeof stored.$ !== 'string' || Object.keys(stored).length !== 1) return stored;
  const key = crypto.createHash('sha256').update(secret).digest();
  const text = stored.$;
  const decipher = crypto.createDecipheriv('aes-256-ctr', key, Buffer.from(text.substring(0, 32), 'hex'));
  return JSON.parse(decipher.update(text.substring(32), 'base64', 'utf8') + decipher.final('utf8')) as Record<
    string,
    unknown
  >;
}

function encryptCredentials(plain: Record<string, unknown>, secret: string): Record<string, string> {
  const key = crypto.createHash('sha256').update(secret).digest();
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-ctr', key, iv);
  return {
    $: iv.toString('hex') + cipher.update(JSON.stringify(plain), 'utf8', 'base64') + cipher.final('base64'),
  };
}

interface NodeRedStorage {
  init(settings: object, runtime: object): Promise<void>;
  getCredentials(): Promise<Record<string, unknown>>;
  saveCredentials(credentials: Record<string, unknown>): Promise<void>;
  [name: string]: unknown;
}

export interface FlowStorageOptions {
  config: Pick<FloorflowConfig, 'flowsDir' | 'dashboardsDir'>;
  versions: FlowVersions;
  pool?: Pool;
  localBrokerCredentials?: { user: string; password: string };
  credentialSecret: string;
  /** Why a deploy from the editor must be refused now (other runtimes run these flows), or undefined. */
  deployRefusal?: () => Promise<string | undefined>;
  /** The editor definitions of the installed node types (default: read from their .html files once). */
  editorDefinitions?: () => Map<string, EditorDefinition>;
}

/** A hash of a file's nodes in which what does not change the flow does not count: their order (the editor exports by kind), and what the editor derives. */
function nodesHash(nodes: FlowNode[]): string {
  return contentHash(withoutDerived(nodes).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
}

/**
 * The hashes a file's nodes may come back with from a deploy that did not change them: as
 * served, and in the form the editor writes them (it drops properties its definition does not
 * declare, and rebuilds wires and port counts).
 */
function unchangedHashes(
  files: FlowFile[],
  definitions: Map<string, EditorDefinition>,
  ids: Set<string> = allNodeIds(files),
): Map<string, Set<string>> {
  return new Map(
    files.map((f) => [
      f.file,
      new Set([nodesHash(f.nodes), nodesHash(editorForm(f.nodes, definitions, ids))]),
    ]),
  );
}

export function loadFlowStorage(options: FlowStorageOptions): object {
  // Node-RED's own file storage keeps credentials, sessions, settings and the library.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const local = require('@node-red/runtime/lib/storage/localfilesystem') as NodeRedStorage;
  const dirs: FlowDirs = { flowsDir: options.config.flowsDir, dashboardsDir: options.config.dashboardsDir };
  let known = new Map<string, string>();
  // Per file, the hashes of its content as last served to (or deployed by) the editor.
  let served = new Map<string, Set<string>>();
  let definitions: Map<string, EditorDefinition> | undefined;
  const definitionsOf = () =>
    (definitions ??= options.editorDefinitions?.() ?? editorDefinitions(loadNodeCatalog()));
  let log: { info(message: string): void } | undefined;

  const storage = {
    ...local,
    init: (settings: object, runtime: object) => {
      log = (runtime as { log?: { info(message: string): void } }).log;
      return local.init(settings, runtime);
    },
    async getFlows(): Promise<FlowNode[]> {
      const files = readFlowFiles(dirs);
      const manifest = readManifest(dirs);
      options.versions.update(nextManifest(manifest, files));
      known = new Map();
      for (const f of files) {
        const container = f.nodes.find((n) => n.type === 'tab' || n.type === 'subflow');
        if (container) known.set(container.id, f.file);
      }
      // Old node configurations run in their current shape; the files change only when the
      // editor deploys (or `flows migrate` runs), so the manifest versions stay true to them.
      const upgraded = files.map((f) => {
        const result = migrateFlowNodes(f.nodes);
        for (const m of result.migrated) {
          log?.info(`${f.file}: node ${m.id} (${m.type}) configuration upgraded v${m.from} → v${m.to}`);
        }
        return { file: f.file, nodes: result.nodes };
      });
      served = unchangedHashes(upgraded, definitionsOf());
      return joinFlows(upgraded, manifest.order);
    },
    async saveFlows(flows: FlowNode[], user?: { username?: string }): Promise<void> {
      // Refused before anything is written: Node-RED then keeps the running flows as they are.
      const refusal = await options.deployRefusal?.();
      if (refusal) throw new Error(refusal);
      const previous = readManifest(dirs);
      const files = splitFlows(flows, known);
      // Node-RED's full deploy (the editor's default) sends every tab. A tab nobody edited keeps
      // its file as it is: an old node configuration that loads upgraded, or a property the
      // editor does not write, is no reason to rewrite the tab and raise its version.
      const changed = files.filter((f) => !served.get(f.file)?.has(nodesHash(f.nodes)));
      for (const f of changed) writeFlowFile(dirs, f.file, f.nodes);
      // A tab deleted in the editor deletes its file.
      const keep = new Set(files.map((f) => f.file));
      for (const stale of [
        ...listJson(dirs.flowsDir, 'flows/'),
        ...listJson(dirs.dashboardsDir, 'dashboards/'),
      ]) {
        if (!keep.has(stale)) {
          fs.rmSync(absolute(dirs, stale), { force: true });
          const templates = templatesDir(dirs, stale);
          if (templates) fs.rmSync(templates, { recursive: true, force: true });
        }
      }
      // Versions follow the files as they now are; the tab order is the editor's.
      const manifest = {
        ...nextManifest(previous, readFlowFiles(dirs)),
        order: files.filter((f) => f.nodes[0]?.type === 'tab').map((f) => f.file),
      };
      writeManifest(dirs, manifest);
      for (const [file, hashes] of unchangedHashes(changed, definitionsOf(), allNodeIds(files)))
        served.set(file, hashes);
      for (const file of served.keys()) if (!keep.has(file)) served.delete(file);
      options.versions.update(manifest);
      // An empty config file has no first node: only tabs and subflows name their files.
      known = new Map(
        files.flatMap((f) =>
          f.nodes[0]?.type === 'tab' || f.nodes[0]?.type === 'subflow'
            ? [[f.nodes[0].id, f.file] as [string, string]]
            : [],
        ),
      );
      if (options.pool) {
        await options.pool.query(
          `INSERT INTO floorflow.flow_deployments (deployed_by, deploy_type, package_version, flows) VALUES ($1, $2, $3, $4)`,
          [
            user?.username ?? null,
            'editor',
            manifest.package.version,
            JSON.stringify(Object.entries(manifest.flows).map(([file, e]) => ({ file, ...e }))),
          ],
        );
      }
    },
    async getCredentials(): Promise<Record<string, unknown>> {
      const stored = decryptCredentials(await local.getCredentials(), options.credentialSecret);
      if (options.localBrokerCredentials) stored[LOCAL_BROKER_ID] = { ...options.localBrokerCredentials };
      return stored;
    },
    async saveCredentials(credentials: Record<string, unknown>): Promise<void> {
      const plain = decryptCredentials(credentials, options.credentialSecret);
      delete plain[LOCAL_BROKER_ID];
      await local.saveCredentials(encryptCredentials(plain, options.credentialSecret));
    },
  };
  return storage;
}
