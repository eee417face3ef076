// The steps of seed 000's embossing routes as the floorflow-embossing node runs them: each
// validates its request (ajv), calls store/embossing and returns the answer in the
// contract's shape with the events to announce. Also the dead-letter step (a job the retry
// loop gave up on fails and lets its plates go).
import type { Pool } from 'pg';
import { FloorflowError, httpStatusOf } from '../../core/errors';
import { JsonSchema, validate } from '../../core/schema';
import {
  Actor,
  Change,
  EmbossingJob,
  SELECTABLE_PLATE_STATES,
  cancelJob,
  createJob,
  failJob,
  getJob,
  jobMessages,
  listJobs,
  retryJob,
  selectablePlates,
} from '../../store/embossing';
import type { AppliedTransition } from '../../store/lifecycle';
import { type HttpRequestPart, requestActor } from './http-api';
import type { FloorflowServices } from './services';

export const EMBOSSING_EVENT = 'embossing';

export type EmbossingAction =
  'plates' | 'create' | 'list' | 'get' | 'retry' | 'cancel' | 'logs' | 'dead-letter';
export const EMBOSSING_ACTIONS: readonly EmbossingAction[] = [
  'plates',
  'create',
  'list',
  'get',
  'retry',
  'cancel',
  'logs',
  'dead-letter',
];

export const CREATE_JOB_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['plate_ids', 'machine_id'],
  additionalProperties: false,
  properties: {
    plate_ids: {
      type: 'array',
      minItems: 1,
      maxItems: 500,
      items: {
        anyOf: [
          { type: 'integer', minimum: 1 },
          { type: 'string', pattern: '^[0-9]{1,18}$' },
        ],
      },
    },
    machine_id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
  },
};

export interface Answer {
  statusCode: number;
  body: Record<string, unknown>;
}

/** What a step changed, for services.events. */
export interface StepResult extends Answer {
  changed?: { job: EmbossingJob; transitions: AppliedTransition[] };
}

/** The contract's error shape for anything thrown; unknown errors are a 500 without details. */
export function errorAnswer(err: unknown): Answer {
  return {
    statusCode: httpStatusOf(err),
    body: { success: false, error: err instanceof FloorflowError ? err.message : 'internal error' },
  };
}

function statusList(value: unknown): string[] | undefined {
  if (value === undefined || value === '') return undefined;
  const list = (Array.isArray(value) ? value : String(value).split(','))
    .map((s) => String(s).trim())
    .filter(Boolean);
  return list.length > 0 ? list : undefined;
}

function changeAnswer(change: Change, okStatus: number): StepResult {
  if (change.kind === 'not_found') throw new FloorflowError('FF_NOT_FOUND', change.reason);
  if (change.kind === 'conflict') throw new FloorflowError('FF_CONFLICT', change.reason);
  return { statusCode: okStatus, body: { success: true, data: change.job }, changed: change };
}

export interface StepContext {
  pool: Pool;
  by: Actor;
}

/** Runs one route; a thrown FloorflowError becomes the contract's error answer. */
export async function runStep(
  action: EmbossingAction,
  request: HttpRequestPart,
  ctx: StepContext,
): Promise<StepResult> {
  try {
    return await step(action, request, ctx);
  } catch (err) {
    return errorAnswer(err);
  }
}

async function step(
  action: EmbossingAction,
  request: HttpRequestPart,
  { pool, by: node }: StepContext,
): Promise<StepResult> {
  const id = request.params.id ?? request.params.job_id ?? '';
  // Who acts is the login or API token of the request; a request without one keeps the node's.
  const acting = (): Actor => {
    const actor = requestActor(request);
    return actor ? { ...node, actor } : node;
  };
  switch (action) {
    case 'plates': {
      const wanted = statusList(request.query.status);
      const unknown = (wanted ?? []).filter(
        (s) => !(SELECTABLE_PLATE_STATES as readonly string[]).includes(s),
      );
      if (unknown.length > 0) {
        throw new FloorflowError(
          'FF_INPUT_INVALID',
          `status ${unknown.join(', ')} is not selectable; use ${SELECTABLE_PLATE_STATES.join(' or ')}`,
        );
      }
      return { statusCode: 200, body: { success: true, data: await selectablePlates(pool, wanted) } };
    }
    case 'create': {
      const by = acting();
      // A copy: ajv may fill defaults in place, and the request body stays as it arrived.
      const checked = validate<{
        plate_ids: Array<string | number>;
        machine_id: string;
      }>(CREATE_JOB_SCHEMA, structuredClone(request.body));
      if (!checked.ok || !checked.value)
        throw new FloorflowError('FF_INPUT_INVALID', checked.error ?? 'invalid body');
      const created = await createJob(
        pool,
        {
          plateIds: checked.value.plate_ids.map(String),
          machineId: checked.value.machine_id,
          createdBy: by.actor,
        },
        by,
      );
      return { statusCode: 202, body: { success: true, data: created.job }, changed: created };
    }
    case 'list': {
      const limit = Number(request.query.limit ?? 200);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new FloorflowError('FF_INPUT_INVALID', 'limit must be a whole number from 1 to 1000');
      }
      const machine = request.query.machine_id;
      const jobs = await listJobs(pool, {
        status: statusList(request.query.status),
        machineId: typeof machine === 'string' && machine !== '' ? machine : undefined,
        limit,
      });
      return { statusCode: 200, body: { success: true, data: jobs } };
    }
    case 'get': {
      const job = await getJob(pool, id);
      if (!job) throw new FloorflowError('FF_NOT_FOUND', `embossing job ${id} not found`);
      return { statusCode: 200, body: { success: true, data: job } };
    }
    case 'logs': {
      const job = await getJob(pool, id);
      if (!job) throw new FloorflowError('FF_NOT_FOUND', `embossing job ${id} not found`);
      return { statusCode: 200, body: { success: true, data: await jobMessages(pool, id) } };
    }
    case 'retry':
      return changeAnswer(await retryJob(pool, id, acting()), 202);
    case 'cancel':
      return changeAnswer(await cancelJob(pool, id, acting()), 200);
    case 'dead-letter':
      throw new FloorflowError('FF_INPUT_INVALID', 'dead letters are not a route');
  }
}

/**
 * The retry loop gave up on a job (retry-backoff's dead-letter output): the job fails with
 * the last error and its plates are selectable again. Only a queued job (as a failed attempt
 * leaves it) is failed: one that meanwhile finished, was cancelled or is being sent again
 * is left as it is.
 */
export async function deadLetter(jobId: string, error: string, { pool, by }: StepContext): Promise<Change> {
  return failJob(pool, jobId, error, by, ['queued']);
}

/** Tells the dashboards the job as it is now (its lifecycle events are the relay's to announce). */
export function announce(
  services: FloorflowServices | undefined,
  change: { job: EmbossingJob; transitions: AppliedTransition[] },
): void {
  if (!services) return;
  services.events.emit(EMBOSSING_EVENT, { type: 'job', job: change.job });
}
