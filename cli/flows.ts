// `floorflow flows check | manifest | migrate | format | diff`: the versioned flows as a plant's CI
// and its engineers see them. The rules and the diff are pure (core/flow-check,
// core/flow-diff); this file reads the files and prints.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { checkFlows, formatFinding } from '../core/flow-check';
import { diffFlows, formatFlowDiffs } from '../core/flow-diff';
import { EditorDefinition, awaitsMigration, editorFile } from '../core/editor-form';
import { FlowFile, FlowNode, assembleTemplates, contentHash, stringifyFlowFile } from '../core/flow-files';
import { migrateFlowNodes } from '../core/node-migrations';
import {
  FlowDirs,
  Manifest,
  listFlowFiles,
  nextManifest,
  readFlowFiles,
  readManifest,
  templatesDir,
  withTemplates,
  writeFlowFile,
  writeManifest,
} from '../runtime/flow-runtime';
import type { FloorflowConfig } from '../settings';
import { editorDefinitions, loadNodeCatalog } from '../runtime/node-catalog';

export interface Output {
  log(line: string): void;
  error(line: string): void;
}

const FLOWS_USAGE = `usage:
  floorflow flows check [--dir <flows dir>] [--dashboards <dir>]
  floorflow flows manifest [--dir <flows dir>]      record changed files in flows/manifest.json, raising their versions
  floorflow flows migrate [--dir <flows dir>]       write old node configurations in their current shape
  floorflow flows format [--dir <flows dir>]        write the files exactly as an editor deploy writes them
  floorflow flows diff <git-rev> [--dir <flows dir>]`;

class FlowsUsageError extends Error {}

function takeOption(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const value = args[i + 1];
  if (!value || value.startsWith('--')) throw new FlowsUsageError(`${name} needs a value`);
  args.splice(i, 2);
  return value;
}

/** --dir names the flows directory; dashboards/ beside it is read too unless --dashboards says otherwise. */
function dirsFrom(config: Pick<FloorflowConfig, 'flowsDir' | 'dashboardsDir'>, args: string[]): FlowDirs {
  const dir = takeOption(args, '--dir');
  const dashboards = takeOption(args, '--dashboards');
  const flowsDir = dir ? path.resolve(dir) : config.flowsDir;
  return {
    flowsDir,
    dashboardsDir: dashboards
      ? path.resolve(dashboards)
      : dir
        ? path.join(path.dirname(flowsDir), 'dashboards')
        : config.dashboardsDir,
  };
}

function check(dirs: FlowDirs, out: Output): number {
  if (!fs.existsSync(dirs.flowsDir)) {
    out.error(`flows check: ${dirs.flowsDir} does not exist`);
    return 1;
  }
  const files = listFlowFiles(dirs).map(({ file, path: full }) => ({
    file,
    text: fs.readFileSync(full, 'utf8'),
    assemble: templatesDir(dirs, file) ? (nodes: FlowNode[]) => withTemplates(dirs, file, nodes) : undefined,
  }));
  const manifestFile = path.join(dirs.flowsDir, 'manifest.json');
  const manifest = fs.existsSync(manifestFile) ? fs.readFileSync(manifestFile, 'utf8') : undefined;
  const findings = checkFlows({ files, manifest, catalog: loadNodeCatalog() });
  for (const f of findings) (f.level === 'error' ? out.error : out.log)(formatFinding(f));
  const errors = findings.filter((f) => f.level === 'error').length;
  const warnings = findings.length - errors;
  const where = path.relative(process.cwd(), dirs.flowsDir) || '.';
  out.log(
    `flows check: ${files.length} file${files.length === 1 ? '' : 's'} in ${where}: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`,
  );
  return errors > 0 ? 1 : 0;
}

function manifest(dirs: FlowDirs, out: Output): number {
  const previous = readManifest(dirs);
  const next = nextManifest(previous, readFlowFiles(dirs));
  writeManifest(dirs, next);
  let changed = 0;
  for (const [file, entry] of Object.entries(next.flows)) {
    const before = previous.flows[file];
    if (!before) out.log(`${file}: new, version ${entry.version}`);
    else if (before.version !== entry.version)
      out.log(`${file}: changed, version ${before.version} → ${entry.version}`);
    else continue;
    changed++;
  }
  for (const file of Object.keys(previous.flows)) {
    if (!next.flows[file]) {
      out.log(`${file}: removed`);
      changed++;
    }
  }
  out.log(
    changed === 0
      ? 'flows manifest: up to date'
      : `flows manifest: ${changed} change${changed === 1 ? '' : 's'} recorded in ${path.join(dirs.flowsDir, 'manifest.json')}`,
  );
  return 0;
}

/**
 * Writes every file exactly as an editor deploy would (the editor's properties and node order,
 * stable key order). The flows do not change, so neither do their versions: the manifest
 * records the new hashes under the same versions.
 */
function format(dirs: FlowDirs, out: Output): number {
  const files: Array<FlowFile & { path: string; text: string }> = [];
  for (const { file, path: full } of listFlowFiles(dirs)) {
    const text = fs.readFileSync(full, 'utf8');
    try {
      files.push({ file, path: full, text, nodes: JSON.parse(text) as FlowNode[] });
    } catch (err) {
      out.error(`${file}: not valid JSON, left as it is (${(err as Error).message})`);
    }
  }
  const definitions = editorDefinitions(loadNodeCatalog());
  const manifest = readManifest(dirs);
  let count = 0;
  for (const f of files) {
    const before = withTemplates(dirs, f.file, f.nodes);
    // Written as a deploy writes it: dashboard templates go to their own files.
    writeFlowFile(dirs, f.file, editorFile(before, definitions, undefined, awaitsMigration));
    if (fs.readFileSync(f.path, 'utf8') === f.text) continue;
    const entry = manifest.flows[f.file];
    // Recorded only where the manifest was true to the file: a hand edit still needs `flows manifest`.
    if (entry && entry.hash === contentHash(before)) {
      const after = withTemplates(dirs, f.file, JSON.parse(fs.readFileSync(f.path, 'utf8')) as FlowNode[]);
      manifest.flows[f.file] = { ...entry, hash: contentHash(after) };
    }
    out.log(`${f.file}: formatted`);
    count++;
  }
  if (count > 0) writeManifest(dirs, manifest);
  out.log(`flows format: ${count} file${count === 1 ? '' : 's'} rewritten`);
  return 0;
}

function migrate(dirs: FlowDirs, out: Output): number {
  let count = 0;
  let definitions: Map<string, EditorDefinition> | undefined;
  for (const { file, nodes } of readFlowFiles(dirs)) {
    const result = migrateFlowNodes(nodes);
    if (result.migrated.length === 0) continue;
    const target = listFlowFiles(dirs).find((f) => f.file === file)!.path;
    // Written as a deploy of the upgraded flow would write it.
    definitions ??= editorDefinitions(loadNodeCatalog());
    fs.writeFileSync(
      target,
      stringifyFlowFile(editorFile(result.nodes, definitions, undefined, awaitsMigration)),
    );
    for (const m of result.migrated) {
      out.log(`${file} node ${m.id} (${m.type}): v${m.from} → v${m.to}: ${m.changes.join('; ')}`);
      count++;
    }
  }
  if (count === 0) {
    out.log('flows migrate: every node configuration is current');
    return 0;
  }
  out.log(`flows migrate: ${count} node${count === 1 ? '' : 's'} upgraded; recording the new versions:`);
  return manifest(dirs, out);
}

function git(cwd: string, args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** The flow files and manifest as they were at a git revision. */
function filesAtRevision(
  dirs: FlowDirs,
  rev: string,
  out: Output,
): { files: FlowFile[]; manifest?: Manifest } {
  let top: string;
  try {
    top = git(dirs.flowsDir, ['rev-parse', '--show-toplevel']).trim();
    git(top, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
  } catch {
    throw new FlowsUsageError(`${rev} is not a commit of the git repository holding ${dirs.flowsDir}`);
  }
  const files: FlowFile[] = [];
  let manifest: Manifest | undefined;
  for (const [dir, prefix] of [
    [dirs.flowsDir, 'flows/'],
    [dirs.dashboardsDir, 'dashboards/'],
  ] as const) {
    const rel = path.relative(top, dir).split(path.sep).join('/');
    const listed = git(top, ['ls-tree', '-r', '--name-only', rev, '--', rel])
      .split('\n')
      .filter((p) => p.endsWith('.json'));
    for (const gitPath of listed) {
      const file = prefix + gitPath.slice(rel.length + 1);
      const text = git(top, ['show', `${rev}:${gitPath}`]);
      if (file === 'flows/manifest.json') {
        manifest = JSON.parse(text) as Manifest;
        continue;
      }
      try {
        const nodes = JSON.parse(text) as FlowNode[];
        const templates = prefix === 'dashboards/' && file !== 'dashboards/config.json';
        // The dashboard templates of that revision, from their files beside it.
        const stem = gitPath.replace(/\.json$/, '').slice(rel.length + 1);
        const read = (name: string) => {
          try {
            return git(top, ['show', `${rev}:${rel}/templates/${stem}/${name}`]);
          } catch {
            return undefined;
          }
        };
        files.push({ file, nodes: templates ? assembleTemplates(nodes, read) : nodes });
      } catch (err) {
        out.error(`${file} at ${rev} is not valid JSON (${(err as Error).message}); compared as if empty`);
        files.push({ file, nodes: [] });
      }
    }
  }
  return { files, manifest };
}

function diff(dirs: FlowDirs, rev: string | undefined, out: Output): number {
  if (!rev) throw new FlowsUsageError('flows diff needs a git revision, e.g. HEAD~1 or main');
  const before = filesAtRevision(dirs, rev, out);
  const files = readFlowFiles(dirs);
  const diffs = diffFlows(before.files, files, {
    from: before.manifest?.flows,
    to: readManifest(dirs).flows,
  });
  for (const line of formatFlowDiffs(diffs)) out.log(line);
  return 0;
}

export async function flowsCommand(
  config: Pick<FloorflowConfig, 'flowsDir' | 'dashboardsDir'>,
  args: string[],
  out: Output = { log: (l) => console.log(l), error: (l) => console.error(l) },
): Promise<number> {
  const [sub, ...rest] = args;
  try {
    const dirs = dirsFrom(config, rest);
    switch (sub) {
      case 'check':
        return check(dirs, out);
      case 'manifest':
        return manifest(dirs, out);
      case 'migrate':
        return migrate(dirs, out);
      case 'format':
        return format(dirs, out);
      case 'diff':
        return diff(dirs, rest[0], out);
      default:
        throw new FlowsUsageError(`unknown flows command "${sub ?? ''}"`);
    }
  } catch (err) {
    if (err instanceof FlowsUsageError) {
      out.error(`floorflow flows: ${err.message}\n${FLOWS_USAGE}`);
      return 2;
    }
    throw err;
  }
}
