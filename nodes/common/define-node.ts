// The one preamble every floorflow node shares: register the type, validate and coerce the
// configuration once against the node's schema.json, and resolve what the node works with
// (runtime services, database pool, clock, flow version). A node that cannot work shows a red
// status saying why and does nothing else: there are no silent fallbacks to a private clock or
// a guessed database.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { Pool } from 'pg';
import { FloorflowError } from '../../core/errors';
import { type JsonSchema, validate } from '../../core/schema';
import type { DbConfigNode } from './db';
import { type Clock, type FloorflowServices, servicesOf, systemClock } from './services';

/** What a node needs before it can start. */
export type NodeNeeds =
  /** The floorflow runtime (services: clock, bus, broker, leases) and a database pool. */
  | 'database'
  /** The floorflow runtime, no database. */
  | 'runtime'
  /** Nothing: a pure transform that also runs in plain Node-RED (services may be undefined). */
  | 'nothing';

interface Base<C> {
  node: Node;
  /** The configuration, validated and with numbers typed in the editor as text made numbers. */
  config: C;
  /** Version of the flow (tab) this node is on, from flows/manifest.json: written into audit rows. */
  flowVersion(): string | undefined;
}

export interface DatabaseNode<C> extends Base<C> {
  services: FloorflowServices;
  clock: Clock;
  pool: Pool;
}

export interface RuntimeNode<C> extends Base<C> {
  services: FloorflowServices;
  clock: Clock;
}

export interface StandaloneNode<C> extends Base<C> {
  services: FloorflowServices | undefined;
  clock: Clock;
}

type Setup<N> = (ctx: N) => void;

/** Why a check refuses a configuration: the status the editor shows and the error logged. */
export interface Refusal {
  status: string;
  reason: string;
}

export interface NodeDefinition<C> {
  type: string;
  schema: JsonSchema;
  /**
   * Called with the validated configuration (before setup); returns a reason to refuse it:
   * text (the status reads "invalid configuration"), or a Refusal with its own status text.
   */
  check?: (config: C) => string | Refusal | undefined;
  /** Credentials the node keeps encrypted outside the flow file (as registerType's option). */
  credentials?: Record<string, { type: 'text' | 'password' }>;
}

export function defineNode<C extends object>(
  RED: NodeAPI,
  definition: NodeDefinition<C> & { needs: 'database' },
  setup: Setup<DatabaseNode<C>>,
): void;
export function defineNode<C extends object>(
  RED: NodeAPI,
  definition: NodeDefinition<C> & { needs: 'runtime' },
  setup: Setup<RuntimeNode<C>>,
): void;
export function defineNode<C extends object>(
  RED: NodeAPI,
  definition: NodeDefinition<C> & { needs: 'nothing' },
  setup: Setup<StandaloneNode<C>>,
): void;
export function defineNode<C extends object>(
  RED: NodeAPI,
  definition: NodeDefinition<C> & { needs: NodeNeeds },
  setup: Setup<DatabaseNode<C>> | Setup<RuntimeNode<C>> | Setup<StandaloneNode<C>>,
): void {
  const { type, schema, needs, credentials } = definition;
  RED.nodes.registerType(
    type,
    function FloorflowNode(this: Node, def: NodeDef) {
      RED.nodes.createNode(this, def);
      start(this, def);
    },
    credentials ? { credentials } : undefined,
  );

  function start(node: Node, def: NodeDef): void {
    const refuse = (text: string, err: Error) => {
      node.status({ fill: 'red', shape: 'ring', text });
      node.error(err);
      // Messages that still arrive fail with the reason, so a Catch node sees them rather than
      // their vanishing into a node that does nothing.
      node.on('input', (_msg: unknown, _send: unknown, done: (err?: Error) => void) => done(err));
    };
    const config = configOf<C>(schema, def);
    if (typeof config === 'string') {
      refuse(
        'invalid configuration',
        new FloorflowError('FF_CONFIG_INVALID', `invalid configuration: ${config}`),
      );
      return;
    }
    const problem = definition.check?.(config);
    if (problem) {
      const { status, reason } =
        typeof problem === 'string' ? { status: 'invalid configuration', reason: problem } : problem;
      refuse(status, new FloorflowError('FF_CONFIG_INVALID', `invalid configuration: ${reason}`));
      return;
    }
    const services = servicesOf(RED);
    const flowVersion = () => services?.flowVersion(node.z);
    if (needs === 'nothing') {
      (setup as Setup<StandaloneNode<C>>)({
        node,
        config,
        services,
        clock: services?.clock ?? systemClock,
        flowVersion,
      });
      return;
    }
    if (!services) {
      refuse(
        'needs the floorflow runtime',
        new FloorflowError(
          'FF_CONFIG_INVALID',
          `${type} runs only in the floorflow runtime (start it with "floorflow start")`,
        ),
      );
      return;
    }
    if (needs === 'runtime') {
      (setup as Setup<RuntimeNode<C>>)({ node, config, services, clock: services.clock, flowVersion });
      return;
    }
    let pool: Pool;
    try {
      pool = poolOf(RED, services, (config as { db?: unknown }).db);
    } catch (err) {
      refuse('no database', err instanceof Error ? err : new Error(String(err)));
      return;
    }
    (setup as Setup<DatabaseNode<C>>)({ node, config, services, clock: services.clock, pool, flowVersion });
  }
}

/** The pool of the node's floorflow-db config node, or the runtime's own when it names none. */
function poolOf(RED: NodeAPI, services: FloorflowServices, dbNodeId: unknown): Pool {
  if (typeof dbNodeId !== 'string' || dbNodeId === '') return services.pool;
  const dbNode = RED.nodes.getNode(dbNodeId) as DbConfigNode | null;
  if (!dbNode || typeof dbNode.getPool !== 'function') {
    throw new FloorflowError(
      'FF_CONFIG_INVALID',
      `database config node ${dbNodeId} is missing, not a floorflow-db, or has an invalid configuration`,
    );
  }
  return dbNode.getPool();
}

/**
 * Validates the editor's configuration and returns it with numeric text made numbers (the
 * editor stores what is typed in a text box as a string). Numbers are made before validating,
 * so limits read as limits ("interval must be > 0"), and an empty box for a property that takes
 * only numbers counts as not set (its schema default applies). Returns the problem as text.
 */
export function configOf<C>(schema: JsonSchema, def: object): C | string {
  // A copy: ajv fills defaults in place, and Node-RED compares the definition on redeploy.
  const result = validate<C>(schema, coerceNumbers(schema, { ...def } as Record<string, unknown>));
  if (!result.ok || !result.value) return result.error ?? 'invalid';
  return result.value;
}

function coerceNumbers(schema: JsonSchema, value: Record<string, unknown>): Record<string, unknown> {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  for (const [name, property] of Object.entries(properties)) {
    const v = value[name];
    if (typeof v !== 'string') continue;
    const takes = typesOf(schema, property);
    if (!takes.has('number') && !takes.has('integer')) continue;
    if (v.trim() === '') {
      if (!takes.has('string')) delete value[name];
    } else if (Number.isFinite(Number(v))) {
      value[name] = Number(v);
    }
  }
  return value;
}

/** The JSON types a property's schema accepts (following local $refs and anyOf/oneOf). */
function typesOf(root: JsonSchema, property: JsonSchema): Set<string> {
  const resolved = resolveRef(root, property);
  const types = new Set(([] as unknown[]).concat(resolved.type ?? []).map(String));
  for (const alt of (resolved.anyOf ?? resolved.oneOf ?? []) as JsonSchema[]) {
    for (const t of typesOf(root, alt)) types.add(t);
  }
  return types;
}

function resolveRef(root: JsonSchema, schema: JsonSchema): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return schema;
  let at: unknown = root;
  for (const part of ref.slice(2).split('/')) at = (at as Record<string, unknown> | undefined)?.[part];
  return (at as JsonSchema | undefined) ?? schema;
}
