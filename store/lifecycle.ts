// Reads and changes an entity's lifecycle state as its model describes, with the audit row and
// the durable event in the same transaction. The entity's row is locked (FOR UPDATE) before its
// state is read, so of two concurrent transitions of one entity the second sees the first's
// result and is checked against it: both cannot win.
import type { Pool, PoolClient } from 'pg';
import {
  checkTransition,
  isEntityId,
  type LifecycleModel,
  type LifecycleTransition,
  type LoggedTransition,
  type StateName,
  type TransitionRecord,
} from '../core/lifecycle';
import { FloorflowError } from '../core/errors';
import { type Queryable, withTransaction } from './db';

/** Serialises inserts into floorflow.lifecycle_events so ids become visible in order (see 020). */
const EVENT_LOG_LOCK = 0x6c696665; // "life"

export interface TransitionInput {
  entityId: string;
  action: string;
  /** For actions with several targets (update_state). */
  targetState?: string;
  reason?: string;
  actor?: string;
  /** The entry point: "lifecycle API", "dispatch", a flow name. */
  source?: string;
  flowVersion?: string;
  /** Other request fields the model's `requires` and `sets` may name. */
  fields?: Record<string, unknown>;
  /** When it happened: the caller's clock. */
  at: Date;
}

export interface AppliedTransition extends TransitionRecord {
  at: Date;
  /** Id in floorflow.lifecycle_events (the SSE event id). */
  eventId: string;
  /** Id of the audit row. */
  auditId: string;
  /** For latest_child models: the new child row (trackopz: the new job). */
  childId?: string;
}

export type TransitionOutcome =
  | { kind: 'applied'; transition: AppliedTransition }
  | { kind: 'not_found'; reason: string }
  | {
      kind: 'rejected';
      code: 'FF_INPUT_INVALID' | 'FF_TRANSITION_INVALID';
      from: StateName | null;
      reason: string;
    };

export type StateReading = { found: false } | { found: true; state: StateName | null; childId?: string };

/** "schema.table" as a quoted identifier; names are checked by the model schema, quoting keeps it safe anyway. */
function table(qualified: string): string {
  return qualified
    .split('.')
    .map((part) => ident(part))
    .join('.');
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function stateFromDb(model: LifecycleModel, value: string | null): StateName | null {
  if (value === null && model.store.kind === 'column' && model.store.nullState !== undefined) {
    return model.store.nullState;
  }
  return value;
}

function stateToDb(model: LifecycleModel, state: StateName | null): string | null {
  if (
    model.store.kind === 'column' &&
    model.store.nullState !== undefined &&
    state === model.store.nullState
  ) {
    return null;
  }
  return state;
}

interface Reading {
  found: boolean;
  state: StateName | null;
  childId?: string;
}

async function read(db: Queryable, model: LifecycleModel, entityId: string, lock: boolean): Promise<Reading> {
  const store = model.store;
  // NO KEY UPDATE: two transitions of one entity queue behind each other, while foreign-key
  // checks of rows that merely reference the entity (they take KEY SHARE) are not blocked.
  const forUpdate = lock ? ' FOR NO KEY UPDATE' : '';
  if (store.kind === 'column') {
    const result = await db.query<{ state: string | null }>(
      `SELECT ${ident(store.column)} AS state FROM ${table(store.table)} WHERE ${ident(store.key)} = $1${forUpdate}`,
      [entityId],
    );
    const row = result.rows[0];
    return row ? { found: true, state: stateFromDb(model, row.state) } : { found: false, state: null };
  }
  const parent = await db.query(
    `SELECT 1 FROM ${table(store.table)} WHERE ${ident(store.key)} = $1${forUpdate}`,
    [entityId],
  );
  if (parent.rowCount === 0) return { found: false, state: null };
  const child = store.child;
  const latest = await db.query<{ child_id: string; state: string }>(
    `SELECT ${ident(child.key)}::text AS child_id, ${ident(child.column)} AS state
     FROM ${table(child.table)} WHERE ${ident(child.foreignKey)} = $1
     ORDER BY ${ident(child.createdAtColumn)} DESC, ${ident(child.key)} DESC LIMIT 1`,
    [entityId],
  );
  const row = latest.rows[0];
  return row ? { found: true, state: row.state, childId: row.child_id } : { found: true, state: null };
}

/** The entity's current state without locking: not found, no state yet (null), or a state. */
export async function readState(
  db: Queryable,
  model: LifecycleModel,
  entityId: string,
): Promise<StateReading> {
  if (!isEntityId(model, entityId)) return { found: false };
  const reading = await read(db, model, entityId, false);
  if (!reading.found) return { found: false };
  return reading.childId === undefined
    ? { found: true, state: reading.state }
    : { found: true, state: reading.state, childId: reading.childId };
}

function text(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

async function writeState(
  client: PoolClient,
  model: LifecycleModel,
  transition: LifecycleTransition,
  input: TransitionInput,
  reading: Reading,
  to: StateName,
): Promise<string | undefined> {
  const store = model.store;
  if (store.kind === 'column') {
    const sets = [`${ident(store.column)} = $2`];
    const params: unknown[] = [input.entityId, stateToDb(model, to), stateToDb(model, reading.state)];
    if (store.updatedAtColumn) {
      params.push(input.at);
      sets.push(`${ident(store.updatedAtColumn)} = $${params.length}`);
    }
    const fields: Record<string, unknown> = { reason: input.reason, actor: input.actor, ...input.fields };
    for (const [field, column] of Object.entries(transition.sets ?? {})) {
      params.push(text(fields[field]));
      sets.push(`${ident(column)} = $${params.length}`);
    }
    // Conditional on the state just read: the row lock already makes this hold; the condition
    // keeps the update correct should a caller ever read without the lock.
    const updated = await client.query(
      `UPDATE ${table(store.table)} SET ${sets.join(', ')}
       WHERE ${ident(store.key)} = $1 AND ${ident(store.column)} IS NOT DISTINCT FROM $3`,
      params,
    );
    if (updated.rowCount !== 1)
      throw new Error(`${model.entity} ${input.entityId} changed state during the transition`);
    return undefined;
  }
  const child = store.child;
  const columns = [ident(child.foreignKey), ident(child.column), ident(child.createdAtColumn)];
  // The new child must sort last by (created_at, id) to be the latest: never give it a time
  // before the current latest row's, even when the caller's clock is behind the database's.
  // (Compared in SQL: a JS Date would drop the microseconds of a now() default.)
  const latest = `(SELECT max(${ident(child.createdAtColumn)}) FROM ${table(child.table)} WHERE ${ident(child.foreignKey)} = $1)`;
  const values = ['$1', '$2', `GREATEST($3::timestamptz, ${latest})`];
  if (child.updatedAtColumn) {
    columns.push(ident(child.updatedAtColumn));
    values.push('$3');
  }
  const inserted = await client.query<{ child_id: string }>(
    `INSERT INTO ${table(child.table)} (${columns.join(', ')}) VALUES (${values.join(', ')})
     RETURNING ${ident(child.key)}::text AS child_id`,
    [input.entityId, to, input.at],
  );
  return inserted.rows[0].child_id;
}

async function writeAudit(
  client: PoolClient,
  model: LifecycleModel,
  input: TransitionInput,
  from: StateName | null,
  to: StateName,
  childId: string | undefined,
): Promise<string> {
  const common = [from, to, input.action, input.reason ?? null, input.actor ?? null, input.source ?? null];
  const tail = [input.flowVersion ?? null, input.at];
  if (!model.audit) {
    const result = await client.query<{ id: string }>(
      `INSERT INTO floorflow.lifecycle_transitions
         (lifecycle, entity_id, from_state, to_state, action, reason, actor, source, flow_version, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id::text AS id`,
      [model.name, input.entityId, ...common, ...tail],
    );
    return result.rows[0].id;
  }
  const audit = model.audit;
  const columns = [ident(audit.entityColumn)];
  const params: unknown[] = [input.entityId];
  if (audit.childColumn) {
    columns.push(ident(audit.childColumn));
    params.push(childId ?? null);
  }
  columns.push('from_state', 'to_state', 'action', 'reason', 'actor', 'source', 'flow_version', 'created_at');
  params.push(...common, ...tail);
  const result = await client.query<{ id: string }>(
    `INSERT INTO ${table(audit.table)} (${columns.join(', ')})
     VALUES (${params.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id::text AS id`,
    params,
  );
  return result.rows[0].id;
}

async function writeEvent(
  client: PoolClient,
  model: LifecycleModel,
  input: TransitionInput,
  from: StateName | null,
  to: StateName,
): Promise<string> {
  // Held until commit: the next transition's event gets its id only after this one is visible.
  await client.query('SELECT pg_advisory_xact_lock($1)', [EVENT_LOG_LOCK]);
  const result = await client.query<{ id: string }>(
    `INSERT INTO floorflow.lifecycle_events
       (lifecycle, entity_id, from_state, to_state, action, reason, actor, source, flow_version, occurred_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id::text AS id`,
    [
      model.name,
      input.entityId,
      from,
      to,
      input.action,
      input.reason ?? null,
      input.actor ?? null,
      input.source ?? null,
      input.flowVersion ?? null,
      input.at,
    ],
  );
  return result.rows[0].id;
}

/**
 * Applies a transition inside the caller's open transaction (for domain code that changes more
 * in the same transaction, e.g. queueing a job's plates). The entity row stays locked until the
 * caller commits; a rejected or not-found outcome writes nothing.
 */
export async function applyTransitionIn(
  client: PoolClient,
  model: LifecycleModel,
  input: TransitionInput,
): Promise<TransitionOutcome> {
  if (!isEntityId(model, input.entityId)) {
    return { kind: 'not_found', reason: `${model.entity} ${input.entityId} not found` };
  }
  const reading = await read(client, model, input.entityId, true);
  if (!reading.found) return { kind: 'not_found', reason: `${model.entity} ${input.entityId} not found` };
  const check = checkTransition(model, reading.state, {
    action: input.action,
    targetState: input.targetState,
    fields: { reason: input.reason, actor: input.actor, ...input.fields },
  });
  if (!check.ok) return { kind: 'rejected', code: check.code, from: reading.state, reason: check.reason };
  const childId = await writeState(client, model, check.transition, input, reading, check.to);
  const auditId = await writeAudit(client, model, input, reading.state, check.to, childId);
  const eventId = await writeEvent(client, model, input, reading.state, check.to);
  return {
    kind: 'applied',
    transition: {
      lifecycle: model.name,
      entityId: input.entityId,
      from: reading.state,
      to: check.to,
      action: input.action,
      reason: input.reason ?? null,
      actor: input.actor ?? null,
      source: input.source ?? null,
      flowVersion: input.flowVersion ?? null,
      at: input.at,
      eventId,
      auditId,
      ...(childId === undefined ? {} : { childId }),
    },
  };
}

/**
 * THE way domain code changes a lifecycle state: inside the caller's open transaction (the entity
 * row stays locked until the caller commits), with the audit row and the durable event that the
 * lifecycle relay (runtime/lifecycle-relay.ts) announces after commit. Returns the applied
 * transition; anything else throws one FloorflowError, the same for every domain:
 * - FF_NOT_FOUND: no such entity;
 * - FF_TRANSITION_INVALID: the action is not allowed from the entity's state (typically someone
 *   moved it first: a conflict, HTTP 409); `details.from` is the state it was in;
 * - FF_INPUT_INVALID: a field the action requires is missing or wrong.
 * Use `isRefusedTransition(err)` where refusal is an expected answer rather than an error.
 */
export async function transition(
  client: PoolClient,
  model: LifecycleModel,
  input: TransitionInput,
): Promise<AppliedTransition> {
  const outcome = await applyTransitionIn(client, model, input);
  if (outcome.kind === 'applied') return outcome.transition;
  if (outcome.kind === 'not_found') {
    throw new FloorflowError('FF_NOT_FOUND', outcome.reason, { details: { entityId: input.entityId } });
  }
  throw new FloorflowError(outcome.code, outcome.reason, {
    details: { entityId: input.entityId, action: input.action, from: outcome.from },
  });
}

/** True for the refusal `transition` throws when the state does not allow the action. */
export function isRefusedTransition(err: unknown): err is FloorflowError {
  return err instanceof FloorflowError && err.code === 'FF_TRANSITION_INVALID';
}

/** Applies a transition in its own transaction. */
export async function applyTransition(
  pool: Pool,
  model: LifecycleModel,
  input: TransitionInput,
): Promise<TransitionOutcome> {
  return withTransaction(pool, (client) => applyTransitionIn(client, model, input));
}

interface EventDbRow {
  id: string;
  lifecycle: string;
  entity_id: string;
  from_state: string | null;
  to_state: string;
  action: string;
  reason: string | null;
  actor: string | null;
  source: string | null;
  flow_version: string | null;
  occurred_at: Date;
}

/** Logged events with an id above `afterId`, oldest first; only `lifecycles` when given. */
export async function eventsAfter(
  db: Queryable,
  afterId: string,
  options: { lifecycles?: string[]; limit?: number } = {},
): Promise<LoggedTransition[]> {
  const result = await db.query<EventDbRow>(
    `SELECT e.id::text AS id, lifecycle, entity_id, from_state, to_state, action, reason, actor, source,
            flow_version, occurred_at
     FROM floorflow.lifecycle_events e
     WHERE e.id > $1::bigint AND ($2::text[] IS NULL OR e.lifecycle = ANY($2))
     ORDER BY e.id LIMIT $3`,
    [afterId, options.lifecycles ?? null, options.limit ?? 1000],
  );
  return result.rows.map((r) => ({
    id: r.id,
    lifecycle: r.lifecycle,
    entityId: r.entity_id,
    from: r.from_state,
    to: r.to_state,
    action: r.action,
    reason: r.reason,
    actor: r.actor,
    source: r.source,
    flowVersion: r.flow_version,
    at: r.occurred_at,
  }));
}

/** The highest logged event id ("0" when there is none): where a new reader starts. */
export async function lastEventId(db: Queryable): Promise<string> {
  const result = await db.query<{ id: string }>(
    'SELECT COALESCE(max(id), 0)::text AS id FROM floorflow.lifecycle_events',
  );
  return result.rows[0].id;
}
