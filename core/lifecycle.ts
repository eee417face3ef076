// Lifecycle models: the states an entity (a product, a plate, a job) may be in, the named
// actions that move it between them, and where its state is kept. Pure: the store applies a
// transition, the lifecycle-switch node routes by it, and both ask checkTransition first.
import { type JsonSchema, validate } from './schema';

/** A state name exactly as the guarded column holds it (the migration's CHECK list). */
export type StateName = string;

/**
 * One named action. `from` lists the states it may start in; `null` there means "the entity
 * has no state yet" (a product without any job). `to` is the one target, or the targets the
 * request chooses from with `targetState` (e.g. update_state → ON or OFF).
 */
export interface LifecycleTransition {
  action: string;
  from: Array<StateName | null>;
  to: StateName | StateName[];
  /** Request fields this action needs, e.g. ["reason"]. `targetState` is implied by a `to` list. */
  requires?: string[];
  /** Request fields the store also writes, as field -> column of a "column" model's table. */
  sets?: Record<string, string>;
  description?: string;
}

/** The state is a column of the entity's own row. */
export interface ColumnStateStore {
  kind: 'column';
  /** "schema.table" of the entity. */
  table: string;
  key: string;
  keyType: 'bigint' | 'text';
  column: string;
  /** The state a NULL in the column stands for (job operations: NULL is "pending"). */
  nullState?: StateName;
  /** Set to the transition time on every change, when the table has one. */
  updatedAtColumn?: string;
}

/**
 * The state is the state column of the entity's latest child row (trackopz: a product's latest
 * job, by created_at then id). A transition inserts a new child row.
 */
export interface LatestChildStateStore {
  kind: 'latest_child';
  table: string;
  key: string;
  keyType: 'bigint' | 'text';
  child: {
    table: string;
    key: string;
    foreignKey: string;
    column: string;
    createdAtColumn: string;
    updatedAtColumn?: string;
  };
}

export type LifecycleStateStore = ColumnStateStore | LatestChildStateStore;

/**
 * Where the audit rows go, when the domain has its own table (trackopz.product_transitions).
 * The table has from_state, to_state, action, reason, actor, source, flow_version and created_at;
 * without this, rows go to floorflow.lifecycle_transitions.
 */
export interface LifecycleAudit {
  table: string;
  entityColumn: string;
  /** For latest_child models: the column that receives the new child row's key. */
  childColumn?: string;
}

export interface LifecycleModel {
  /** Stable name: the MQTT topic segment, the node's pick list, the audit rows' lifecycle. */
  name: string;
  label?: string;
  description?: string;
  /** What the entity is called in messages ("product", "plate"). */
  entity: string;
  states: StateName[];
  /** The state a new entity starts in (set by whatever creates it). */
  initial: StateName;
  transitions: LifecycleTransition[];
  store: LifecycleStateStore;
  audit?: LifecycleAudit;
  /** Other names of this model, so flows may keep an older name. */
  aliases?: string[];
}

const IDENTIFIER = '^[a-z_][a-z0-9_]*$';
const QUALIFIED = '^[a-z_][a-z0-9_]*\\.[a-z_][a-z0-9_]*$';
const STATE = '^[A-Za-z][A-Za-z0-9_-]{0,63}$';
const ACTION = '^[a-z][a-z0-9_]{0,63}$';

/** The JSON schema of a lifecycle model, for custom models in the editor and in flow files. */
export const LIFECYCLE_MODEL_SCHEMA: JsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'floorflow lifecycle model',
  type: 'object',
  required: ['name', 'entity', 'states', 'initial', 'transitions', 'store'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,63}$' },
    label: { type: 'string' },
    description: { type: 'string' },
    entity: { type: 'string', minLength: 1, maxLength: 64 },
    states: { type: 'array', minItems: 1, items: { type: 'string', pattern: STATE } },
    initial: { type: 'string' },
    aliases: { type: 'array', items: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,63}$' } },
    transitions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['action', 'from', 'to'],
        additionalProperties: false,
        properties: {
          action: { type: 'string', pattern: ACTION },
          from: { type: 'array', minItems: 1, items: { type: ['string', 'null'] } },
          to: {
            anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: { type: 'string' } }],
          },
          requires: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$' } },
          sets: {
            type: 'object',
            propertyNames: { pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$' },
            additionalProperties: { type: 'string', pattern: IDENTIFIER },
          },
          description: { type: 'string' },
        },
      },
    },
    store: {
      type: 'object',
      required: ['kind', 'table', 'key', 'keyType'],
      properties: {
        kind: { enum: ['column', 'latest_child'] },
        table: { type: 'string', pattern: QUALIFIED },
        key: { type: 'string', pattern: IDENTIFIER },
        keyType: { enum: ['bigint', 'text'] },
        column: { type: 'string', pattern: IDENTIFIER },
        nullState: { type: 'string' },
        updatedAtColumn: { type: 'string', pattern: IDENTIFIER },
        child: {
          type: 'object',
          required: ['table', 'key', 'foreignKey', 'column', 'createdAtColumn'],
          additionalProperties: false,
          properties: {
            table: { type: 'string', pattern: QUALIFIED },
            key: { type: 'string', pattern: IDENTIFIER },
            foreignKey: { type: 'string', pattern: IDENTIFIER },
            column: { type: 'string', pattern: IDENTIFIER },
            createdAtColumn: { type: 'string', pattern: IDENTIFIER },
            updatedAtColumn: { type: 'string', pattern: IDENTIFIER },
          },
        },
      },
      allOf: [
        {
          if: { properties: { kind: { const: 'column' } } },
          then: {
            required: ['column'],
            properties: { child: false },
          },
        },
        {
          if: { properties: { kind: { const: 'latest_child' } } },
          then: {
            required: ['child'],
            properties: { column: false, nullState: false, updatedAtColumn: false },
          },
        },
      ],
    },
    audit: {
      type: 'object',
      required: ['table', 'entityColumn'],
      additionalProperties: false,
      properties: {
        table: { type: 'string', pattern: QUALIFIED },
        entityColumn: { type: 'string', pattern: IDENTIFIER },
        childColumn: { type: 'string', pattern: IDENTIFIER },
      },
    },
  },
};

export type ModelValidation = { ok: true; model: LifecycleModel } | { ok: false; errors: string[] };

/** Targets of a transition as a list. */
export function targetsOf(transition: LifecycleTransition): StateName[] {
  return Array.isArray(transition.to) ? transition.to : [transition.to];
}

function describeFrom(state: StateName | null): string {
  return state === null ? '(no state)' : `"${state}"`;
}

/**
 * Checks a model's shape (the JSON schema) and its meaning: every state a transition names is
 * one of `states`, actions are deterministic, no transition leads from a state to itself.
 * Messages name the bad state or transition.
 */
export function validateModel(candidate: unknown): ModelValidation {
  const shape = validate<LifecycleModel>(LIFECYCLE_MODEL_SCHEMA, candidate);
  if (!shape.ok || !shape.value) return { ok: false, errors: [`model ${shape.error ?? 'is invalid'}`] };
  const model = shape.value;
  const errors: string[] = [];
  const states = new Set<string>();
  for (const state of model.states) {
    if (states.has(state)) errors.push(`state "${state}" is listed twice`);
    states.add(state);
  }
  if (!states.has(model.initial)) errors.push(`initial state "${model.initial}" is not one of the states`);
  if (
    model.store.kind === 'column' &&
    model.store.nullState !== undefined &&
    !states.has(model.store.nullState)
  ) {
    errors.push(`store.nullState "${model.store.nullState}" is not one of the states`);
  }
  const seen = new Map<string, Set<string>>();
  model.transitions.forEach((t, index) => {
    const where = `transition ${index + 1} ("${t.action}")`;
    for (const from of t.from) {
      if (from !== null && !states.has(from))
        errors.push(`${where}: from state "${from}" is not one of the states`);
    }
    const targets = targetsOf(t);
    for (const to of targets) {
      if (!states.has(to)) errors.push(`${where}: to state "${to}" is not one of the states`);
    }
    if (t.sets && model.store.kind !== 'column') {
      errors.push(`${where}: "sets" needs a store of kind "column"`);
    }
    if (!Array.isArray(t.to) && t.from.includes(t.to)) {
      errors.push(`${where}: leads from "${t.to}" to itself; a transition must change the state`);
    }
    const starts = seen.get(t.action) ?? new Set<string>();
    for (const from of t.from) {
      const key = String(from);
      if (starts.has(key)) {
        errors.push(`${where}: action "${t.action}" is defined twice for from state ${describeFrom(from)}`);
      }
      starts.add(key);
    }
    seen.set(t.action, starts);
  });
  return errors.length === 0 ? { ok: true, model } : { ok: false, errors };
}

/** What a request asks of a lifecycle, beyond the entity. */
export interface TransitionRequest {
  action: string;
  /** The chosen target, for transitions with several (`to` is a list). */
  targetState?: string;
  /** The request's other fields, for `requires` (e.g. { reason: "dispatched" }). */
  fields?: Record<string, unknown>;
}

export type TransitionCheck =
  | { ok: true; from: StateName | null; to: StateName; transition: LifecycleTransition }
  | {
      ok: false;
      /** FF_INPUT_INVALID: the request is incomplete; FF_TRANSITION_INVALID: not allowed from this state. */
      code: 'FF_INPUT_INVALID' | 'FF_TRANSITION_INVALID';
      reason: string;
    };

function present(value: unknown): boolean {
  return value !== undefined && value !== null && !(typeof value === 'string' && value.trim() === '');
}

/**
 * Whether `action` may be applied to an entity in state `current` (null: no state yet), and the
 * state it leads to. Never throws; the reason is one sentence for the HTTP error body.
 */
export function checkTransition(
  model: LifecycleModel,
  current: StateName | null,
  request: TransitionRequest | string,
): TransitionCheck {
  const { action, targetState, fields = {} } = typeof request === 'string' ? { action: request } : request;
  const named = model.transitions.filter((t) => t.action === action);
  if (named.length === 0) {
    const actions = [...new Set(model.transitions.map((t) => t.action))].join(', ');
    return {
      ok: false,
      code: 'FF_INPUT_INVALID',
      reason: `unknown action "${action}"; use one of ${actions}`,
    };
  }
  if (current !== null && !model.states.includes(current)) {
    return {
      ok: false,
      code: 'FF_TRANSITION_INVALID',
      reason: `${model.entity} is in state "${current}", which the ${model.name} lifecycle does not know`,
    };
  }
  const transition = named.find((t) => t.from.includes(current));
  if (!transition) {
    const from = [...new Set(named.flatMap((t) => t.from))].map(describeFrom).join(', ');
    return {
      ok: false,
      code: 'FF_TRANSITION_INVALID',
      reason: `cannot ${action} a ${model.entity} in state ${describeFrom(current)}; allowed from ${from}`,
    };
  }
  const missing = (transition.requires ?? []).filter((field) => !present(fields[field]));
  if (missing.length > 0) {
    return { ok: false, code: 'FF_INPUT_INVALID', reason: `${action} needs ${missing.join(', ')}` };
  }
  let to: StateName;
  if (Array.isArray(transition.to)) {
    if (!present(targetState)) {
      return {
        ok: false,
        code: 'FF_INPUT_INVALID',
        reason: `${action} needs a target state: one of ${transition.to.join(', ')}`,
      };
    }
    if (!transition.to.includes(targetState as string)) {
      return {
        ok: false,
        code: 'FF_TRANSITION_INVALID',
        reason: `${action} cannot lead to "${targetState}"; allowed targets are ${transition.to.join(', ')}`,
      };
    }
    to = targetState as string;
  } else {
    if (present(targetState) && targetState !== transition.to) {
      return {
        ok: false,
        code: 'FF_TRANSITION_INVALID',
        reason: `${action} leads to "${transition.to}", not "${targetState}"`,
      };
    }
    to = transition.to;
  }
  if (to === current) {
    return { ok: false, code: 'FF_TRANSITION_INVALID', reason: `${model.entity} is already ${to}` };
  }
  return { ok: true, from: current, to, transition };
}

/** The switch node's output for a state (0-based); the reject output is the last. */
export function outputOf(model: LifecycleModel, state: StateName): number {
  const index = model.states.indexOf(state);
  return index >= 0 ? index : model.states.length;
}

/** Output labels of the lifecycle-switch node: one per state, then "reject". */
export function outputLabelsOf(model: LifecycleModel): string[] {
  return [...model.states, 'reject'];
}

/** Every (from, action, to) step the model allows, for documentation and property tests. */
export function allowedSteps(
  model: LifecycleModel,
): Array<{ from: StateName | null; action: string; to: StateName }> {
  return model.transitions.flatMap((t) =>
    t.from.flatMap((from) =>
      targetsOf(t)
        .filter((to) => to !== from)
        .map((to) => ({ from, action: t.action, to })),
    ),
  );
}

/** Whether an entity id has the shape the model's key column takes (bigint ids are digits). */
export function isEntityId(model: LifecycleModel, id: string): boolean {
  if (model.store.keyType === 'bigint') return /^[0-9]{1,18}$/.test(id);
  return id.length > 0 && id.length <= 200;
}

/** The in-process event name (services.events) of an applied transition. */
export const LIFECYCLE_EVENT = 'lifecycle';

/** What every record of an applied transition says: audit rows, logged events, announcements. */
export interface TransitionRecord {
  lifecycle: string;
  entityId: string;
  /** null: the entity had no state yet. */
  from: StateName | null;
  to: StateName;
  action: string;
  reason: string | null;
  actor: string | null;
  source: string | null;
  flowVersion: string | null;
}

/** An applied transition as published on MQTT and the event bus. */
export interface LifecycleEvent extends TransitionRecord {
  /** ISO-8601 time of the transition. */
  at: string;
  /** Id in the durable event log; readers resume after it. */
  eventId: string;
}

/** An applied transition as logged in floorflow.lifecycle_events. */
export interface LoggedTransition extends TransitionRecord {
  id: string;
  at: Date;
}

/** MQTT topic of a lifecycle event: <prefix>/events/<lifecycle>/<entity id>. */
export function lifecycleEventTopic(prefix: string, lifecycle: string, entityId: string): string {
  // MQTT wildcards and separators in an id would change which subscribers match.
  return `${prefix}/events/${lifecycle}/${entityId.replace(/[/+#\0]/g, '_')}`;
}

/** What the lifecycle-switch node reads from a message. */
export interface SwitchInput {
  entityId: string;
  action: string;
  targetState?: string;
  reason?: string;
  actor?: string;
  source?: string;
  fields?: Record<string, unknown>;
}

function optionalText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/**
 * Reads msg.entityId, msg.action and the optional msg.targetState, msg.reason, msg.actor,
 * msg.source and msg.fields; the reason says which is missing or malformed.
 */
export function readSwitchInput(
  msg: Record<string, unknown>,
): { ok: true; input: SwitchInput } | { ok: false; reason: string } {
  const entityId = optionalText(msg.entityId);
  if (entityId === undefined || typeof msg.entityId === 'boolean') {
    return { ok: false, reason: 'msg.entityId is required (a string or number)' };
  }
  const action = optionalText(msg.action);
  if (action === undefined || typeof msg.action !== 'string') {
    return { ok: false, reason: 'msg.action is required (a string)' };
  }
  const fields = msg.fields;
  if (fields !== undefined && (typeof fields !== 'object' || fields === null || Array.isArray(fields))) {
    return { ok: false, reason: 'msg.fields must be an object' };
  }
  const input: SwitchInput = { entityId, action };
  const targetState = optionalText(msg.targetState);
  const reason = optionalText(msg.reason);
  const actor = optionalText(msg.actor);
  const source = optionalText(msg.source);
  if (targetState !== undefined) input.targetState = targetState;
  if (reason !== undefined) input.reason = reason;
  if (actor !== undefined) input.actor = actor;
  if (source !== undefined) input.source = source;
  if (fields !== undefined) input.fields = fields as Record<string, unknown>;
  return { ok: true, input };
}

/** msg.error on the lifecycle-switch node's reject output. */
export interface SwitchRejection {
  code: 'FF_INPUT_INVALID' | 'FF_NOT_FOUND' | 'FF_TRANSITION_INVALID';
  /** The HTTP status an HTTP flow answers with: 400, 404 or 409. */
  statusCode: number;
  reason: string;
  message: string;
}
