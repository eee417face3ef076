// The embossing routes (see docs/embossing.md) as the floorflow-embossing-* nodes answer them:
// each validates its request, calls store/embossing and answers in the API's shape
// ({"success": true, "data": ...} or {"success": false, "error": ...}); a route that changed a
// job says which (the lifecycle relay announces its transitions after commit,
// docs/architecture.md). Also the dead-letter step: a job the retry loop gave up on fails and
// lets its plates go. `defineEmbossingRoute` is the one registration every route node shares.
import type { NodeAPI, NodeMessage } from 'node-red';
import type { Pool } from 'pg';
import { FloorflowError, httpStatusOf } from '../../core/errors';
import { JsonSchema, validate } from '../../core/schema';
import {
  Actor,
  EmbossingJob,
  JobChange,
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
import { defineNode } from './define-node';
import { type HttpRequestPart, requestActor, requestOf, respond } from './http-api';
import { onInputAsync } from './node-kit';
import type { FloorflowServices } from './services';

/**
 * The event-bus channel on which a changed embossing job is told, as it is now, so the pages
 * showing it re-read: also for a change without a transition (an attempt's error, a moved
 * deadline). Transitions themselves are announced by the lifecycle relay.
 */
export const EMBOSSING_EVENT = 'embossing';

export function jobChanged(services: FloorflowServices | undefined, job: EmbossingJob): void {
  services?.events.emit(EMBOSSING_EVENT, { type: 'job', job });
}

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

export interface RouteResult extends Answer {
  /** The job the route changed, with the transitions it applied. */
  changed?: JobChange;
}

export interface RouteContext {
  pool: Pool;
  /** The node as the actor; a request with a login or API token acts as that person instead. */
  by: Actor;
}

/** The request as a route reads it: the parts of msg.req, and the route's path pattern. */
export interface RouteRequest extends HttpRequestPart {
  /** The `http in` node's URL pattern that matched ("/api/embossing-jobs/:id/logs"), if known. */
  routePath?: string;
}

/** One route: the request in, the answer (and the job it changed) out. Throws FloorflowError. */
export type Route = (request: RouteRequest, ctx: RouteContext) => Promise<RouteResult>;

/** The request an `http in` node put on the message, with the route pattern that matched. */
export function routeRequestOf(msg: NodeMessage): RouteRequest {
  const req = (msg as NodeMessage & { req?: { route?: { path?: unknown } } }).req;
  const routePath = req?.route?.path;
  return { ...requestOf(msg), routePath: typeof routePath === 'string' ? routePath : undefined };
}

/** The API's error shape for anything thrown; unknown errors are a 500 without details. */
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

function changeAnswer(change: JobChange, okStatus: number): RouteResult {
  return { statusCode: okStatus, body: { success: true, data: change.job }, changed: change };
}

/** Who acts: the login or API token of the request; a request without one acts as the node. */
function acting(request: HttpRequestPart, node: Actor): Actor {
  const actor = requestActor(request);
  return actor ? { ...node, actor } : node;
}

function jobIdOf(request: HttpRequestPart): string {
  return request.params.id ?? request.params.job_id ?? '';
}

/** GET /api/plates?status=: plates a person may pick for embossing. */
export const selectablePlatesRoute: Route = async (request, { pool }) => {
  const wanted = statusList(request.query.status);
  const unknown = (wanted ?? []).filter((s) => !(SELECTABLE_PLATE_STATES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    throw new FloorflowError(
      'FF_INPUT_INVALID',
      `status ${unknown.join(', ')} is not selectable; use ${SELECTABLE_PLATE_STATES.join(' or ')}`,
    );
  }
  return { statusCode: 200, body: { success: true, data: await selectablePlates(pool, wanted) } };
};

/** POST /api/embossing-jobs: one queued job holding the plates (202), or 409 and nothing. */
export const createJobRoute: Route = async (request, { pool, by: node }) => {
  const by = acting(request, node);
  // A copy: ajv may fill defaults in place, and the request body stays as it arrived.
  const checked = validate<{ plate_ids: Array<string | number>; machine_id: string }>(
    CREATE_JOB_SCHEMA,
    structuredClone(request.body),
  );
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
};

/**
 * The read-only job routes, told apart by the request: GET /api/embossing-jobs (no id: the
 * list), GET /api/embossing-jobs/:id (the job) and GET /api/embossing-jobs/:id/logs (its
 * machine messages; the route's path ends in /logs).
 */
export const jobsRoute: Route = async (request, { pool }) => {
  const id = jobIdOf(request);
  if (id === '') {
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
  const job = await getJob(pool, id);
  if (!job) throw new FloorflowError('FF_NOT_FOUND', `embossing job ${id} not found`);
  if (request.routePath?.endsWith('/logs')) {
    return { statusCode: 200, body: { success: true, data: await jobMessages(pool, id) } };
  }
  return { statusCode: 200, body: { success: true, data: job } };
};

/** POST /api/embossing-jobs/:id/retry: a failed job queued again if its plates are still free. */
export const retryJobRoute: Route = async (request, { pool, by }) =>
  changeAnswer(await retryJob(pool, jobIdOf(request), acting(request, by)), 202);

/** POST /api/embossing-jobs/:id/cancel: the job ends and its plates go back. */
export const cancelJobRoute: Route = async (request, { pool, by }) =>
  changeAnswer(await cancelJob(pool, jobIdOf(request), acting(request, by)), 200);

/** Runs one route; a thrown error becomes the API's error answer. */
export async function answer(
  route: Route,
  request: RouteRequest,
  ctx: RouteContext,
  /** Where an unexpected failure (a 500, answered without details) is told, so it can be found. */
  log?: (message: string) => void,
): Promise<RouteResult> {
  try {
    return await route(request, ctx);
  } catch (err) {
    const failed = errorAnswer(err);
    if (failed.statusCode >= 500 && log)
      log(`request failed: ${err instanceof Error ? err.message : String(err)}`);
    return failed;
  }
}

/**
 * The retry loop gave up on a job (retry-backoff's dead-letter output): the job fails with
 * the last error and its plates are selectable again. Only a queued job (as a failed attempt
 * leaves it) is failed: one that meanwhile finished, was cancelled or is being sent again
 * is left as it is.
 */
export async function deadLetter(
  jobId: string,
  error: string,
  { pool, by }: RouteContext,
): Promise<JobChange> {
  return failJob(pool, jobId, error, by, ['queued']);
}

interface RouteConfig {
  name?: string;
  db?: string;
  schemaVersion: number;
}

export interface EmbossingRouteNode {
  type: string;
  schema: JsonSchema;
  /** The actor's source in audit rows: "embossing create". */
  source: string;
  route: Route;
  /**
   * The second output's message for a job the route changed (wired to the queue worker or the
   * embosser). A route node without it has one output: the answer.
   */
  changedMessage?: (changed: JobChange) => NodeMessage;
}

/**
 * Registers a node that answers one embossing route behind an `http in` node: output 1 the
 * answer (for an `http response` node), output 2 (if the route changes jobs) the changed job.
 */
export function defineEmbossingRoute(RED: NodeAPI, definition: EmbossingRouteNode): void {
  const { type, schema, source, route, changedMessage } = definition;
  defineNode<RouteConfig>(
    RED,
    { type, schema, needs: 'database' },
    ({ node, services, clock, pool, flowVersion }) => {
      onInputAsync(node, async (msg, send, done) => {
        const result = await answer(
          route,
          routeRequestOf(msg),
          { pool, by: { at: clock.now(), source, flowVersion: flowVersion() } },
          (message) => node.warn(message),
        );
        const reply = respond(msg, result.statusCode, result.body);
        if (!changedMessage) send(reply);
        else send([reply, result.changed ? changedMessage(result.changed) : null]);
        if (result.changed) jobChanged(services, result.changed.job);
        done();
      });
    },
  );
}
