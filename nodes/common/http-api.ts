// What nodes behind an `http in` node share: reading the request off the message, and
// answering in the API's shape ({"success": true, "data": ...} or {"success": false,
// "error": ...} with the status httpStatusOf gives), never with a stack trace.
import type { NodeMessage } from 'node-red';
import { type Identity, actorOf, whoFieldIn, whoFieldMessage } from '../../core/access';
import { FloorflowError, httpStatusOf } from '../../core/errors';
import { identityOfRequest } from './identity';

export interface HttpRequestPart {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  /** Who the runtime authenticated (login session or API token); absent outside the runtime. */
  identity?: Identity;
}

/**
 * Who made the request, for created_by, actor and audit rows: the authenticated identity,
 * never the body. A body that names someone (created_by, actor, ...) is refused with
 * FF_INPUT_INVALID, so a client learns that the field no longer decides anything.
 */
export function requestActor(request: HttpRequestPart): string | undefined {
  const actor = request.identity ? actorOf(request.identity) : undefined;
  const field = whoFieldIn(request.body);
  if (field) throw new FloorflowError('FF_INPUT_INVALID', whoFieldMessage(field, actor));
  return actor;
}

/** The request an `http in` node put on msg.req (empty parts when there is none). */
export function requestOf(msg: NodeMessage): HttpRequestPart {
  const req = (msg as NodeMessage & { req?: Partial<HttpRequestPart> }).req;
  return {
    params: req?.params ?? {},
    query: req?.query ?? {},
    body: req?.body ?? (msg as NodeMessage & { payload?: unknown }).payload,
    headers: req?.headers ?? {},
    identity: identityOfRequest(req),
  };
}

/** Sets the response an `http response` node sends. */
export function respond(msg: NodeMessage, statusCode: number, body: unknown): NodeMessage {
  return Object.assign(msg, { statusCode, payload: body, headers: { 'content-type': 'application/json' } });
}

/**
 * The API's error response for any thrown value; unknown errors are 500 "internal error"
 * to the caller, and their message goes to `log` (the node's warn) so they can be found.
 */
export function respondError(msg: NodeMessage, err: unknown, log?: (message: string) => void): NodeMessage {
  const status = httpStatusOf(err);
  if (status >= 500 && log) log(`request failed: ${err instanceof Error ? err.message : String(err)}`);
  const error =
    err instanceof FloorflowError
      ? err.message
      : status < 500
        ? 'invalid value in the request'
        : 'internal error';
  return respond(msg, status, { success: false, error });
}
