// Upgrades of floorflow node configurations. Each node config carries `schemaVersion`; when a
// release changes a node's options, it adds a step here (old config → new config) instead of
// breaking the flow files plants already have. The storage module applies the steps when it
// loads flows, and `flows check` warns about files still holding an old version, so the
// next deploy from the editor (or `floorflow flows migrate`) writes the new shape.
import type { FlowNode } from './flow-files';

export interface NodeMigration {
  /** The version this step produces; it applies to a config at version `to - 1`. */
  to: number;
  /** What changed, in a user's words (shown by `flows check` and `flows migrate`). */
  change: string;
  /** Pure: returns a new config, never edits the one it gets. */
  up(config: FlowNode): FlowNode;
}

/**
 * A config written before node configs had versions has no `schemaVersion`; it is read as
 * version 0, so a type's first step (0 → 1) may assume the oldest shape.
 */
export const UNVERSIONED = 0;

/** The steps per node type, in order. A type without an entry is at version 1. */
export const NODE_MIGRATIONS: Readonly<Record<string, readonly NodeMigration[]>> = {
  'floorflow-scan-parser': [
    {
      to: 1,
      // The first scan parser recognised only job codes, with one `pattern`; runlist and file
      // ids came with version 1, which named each pattern after the code it matches. An old
      // node keeps behaving as before: its two new patterns start empty, which turns them off,
      // so a code it rejected is not suddenly read as a runlist id.
      change:
        'the single `pattern` became `jobPattern`; the new `runlistPattern` and `filePattern` start off (empty)',
      up(config) {
        const { pattern, ...rest } = config;
        const next: FlowNode = { runlistPattern: '', filePattern: '', ...rest, schemaVersion: 1 };
        if (typeof pattern === 'string' && next.jobPattern === undefined) next.jobPattern = pattern;
        return next;
      },
    },
  ],
};

/** The version a node type's config has in this release. */
export function currentSchemaVersion(type: string): number {
  const steps = NODE_MIGRATIONS[type];
  return steps && steps.length > 0 ? steps[steps.length - 1].to : 1;
}

/** The version a node config says it has (0 when it has none and the type has a 0 → 1 step). */
export function schemaVersionOf(node: FlowNode): number | undefined {
  if (typeof node.schemaVersion === 'number') return node.schemaVersion;
  if (node.schemaVersion !== undefined) return undefined;
  return NODE_MIGRATIONS[node.type]?.[0]?.to === UNVERSIONED + 1 ? UNVERSIONED : undefined;
}

export interface MigrationResult {
  node: FlowNode;
  from: number;
  to: number;
  changes: string[];
}

export class NodeMigrationError extends Error {}

/**
 * Upgrades one node config to the current version of its type. Returns undefined when
 * nothing needs doing (not a migrated type, or already current). Throws for a config newer
 * than this release knows, which only a newer floorflow can run.
 */
export function migrateNode(node: FlowNode): MigrationResult | undefined {
  const steps = NODE_MIGRATIONS[node.type];
  if (!steps || steps.length === 0) return undefined;
  const from = schemaVersionOf(node);
  const current = currentSchemaVersion(node.type);
  if (from === undefined || from === current) return undefined;
  if (from > current) {
    throw new NodeMigrationError(
      `node ${node.id} (${node.type}) has schemaVersion ${from}, newer than ${current} which this floorflow knows: upgrade floorflow`,
    );
  }
  let config = node;
  const changes: string[] = [];
  for (const step of steps) {
    if (step.to <= from) continue;
    config = { ...step.up(config), schemaVersion: step.to };
    changes.push(`v${step.to - 1} → v${step.to}: ${step.change}`);
  }
  return { node: config, from, to: current, changes };
}

/** Upgrades every node of a flow; nodes that need nothing are returned as they are. */
export function migrateFlowNodes(nodes: FlowNode[]): {
  nodes: FlowNode[];
  migrated: Array<Omit<MigrationResult, 'node'> & { id: string; type: string }>;
} {
  const migrated: Array<Omit<MigrationResult, 'node'> & { id: string; type: string }> = [];
  const out = nodes.map((n) => {
    const result = migrateNode(n);
    if (!result) return n;
    migrated.push({ id: n.id, type: n.type, from: result.from, to: result.to, changes: result.changes });
    return result.node;
  });
  return { nodes: out, migrated };
}
