// What the job-status route nodes share (process print OS, process status updates, job status,
// reprocess, gap report): each sits between an `http in` and an `http response` node, reads its
// request off msg.req and answers with msg.statusCode and msg.payload. The answers are the API's
// of docs/job-status.md ("HTTP routes"); a failure is {"success": false, "error"}.
import type { Node, NodeMessageInFlow } from 'node-red';
import type { Pool } from 'pg';
import type { BodyResult } from '../../core/job-status';
import { httpStatusOf } from '../../core/errors';
import { catchUp, type BatchResult, type SourceType } from '../../store/job-status';
import { onInputAsync } from './node-kit';
import type { Clock } from './services';

/** The parts of the request an `http in` node puts on msg.req that these routes read. */
export interface RouteRequest {
  body?: unknown;
  params?: Record<string, string>;
  query?: Record<string, unknown>;
}

export interface Reply {
  statusCode: number;
  payload: unknown;
}

/** How long an HTTP trigger waits for a poller that is working the same source. */
const LOCK_WAIT_MS = 20000;

export const fail = (statusCode: number, error: string): Reply => ({
  statusCode,
  payload: { success: false, error },
});

/** The answer when a poller (here or on another runtime) holds the source longer than we wait. */
export const busy = (source: SourceType): Reply =>
  fail(503, `another worker is processing ${source}; retry shortly`);

/** A request body that did not read gives 400 with the reason; one that did is worked. */
export async function answer<T>(input: BodyResult<T>, work: (value: T) => Promise<Reply>): Promise<Reply> {
  return input.ok ? work(input.value) : fail(400, input.error);
}

export interface CatchUpSettings {
  pool: Pool;
  clock: Clock;
  batchSize: number;
  lookBack: number;
  flowVersion(): string | undefined;
}

/** Catches one source up now, as its poller would, waiting up to 20 s for a poller holding it. */
export function catchUpNow(
  settings: CatchUpSettings,
  source: SourceType,
  force = false,
): Promise<BatchResult> {
  return catchUp(settings.pool, source, {
    batchSize: settings.batchSize,
    lookBack: settings.lookBack,
    force,
    waitMs: LOCK_WAIT_MS,
    now: settings.clock.now(),
    flowVersion: settings.flowVersion(),
  });
}

/**
 * Answers every request that arrives with `handle`'s reply. A thrown error answers 400 or 500
 * without its text (which may hold SQL) and reaches a Catch node with the message.
 */
export function answerRequests(node: Node, handle: (req: RouteRequest) => Promise<Reply>): void {
  onInputAsync(node, async (msg: NodeMessageInFlow, send, done) => {
    const req = ((msg as { req?: RouteRequest }).req ?? {}) as RouteRequest;
    try {
      send(Object.assign(msg, await handle(req)));
      done();
    } catch (err) {
      const status = httpStatusOf(err);
      send(
        Object.assign(msg, fail(status, status < 500 ? 'invalid value in the request' : 'internal error')),
      );
      done(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
