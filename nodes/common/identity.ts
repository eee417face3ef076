// How the authenticated identity travels with a request to the nodes: the runtime's access
// module puts it on the request object (which an `http in` node hands on as msg.req), never in
// a header or body a client could write; nodes read it back here.
import type { Identity } from '../../core/access';
import { actorOf } from '../../core/access';

const IDENTITY = Symbol.for('floorflow.identity');

export function attachIdentity(req: object, identity: Identity): void {
  (req as Record<symbol, unknown>)[IDENTITY] = identity;
}

/** The identity the runtime authenticated for this request, if any. */
export function identityOfRequest(req: unknown): Identity | undefined {
  if (!req || typeof req !== 'object') return undefined;
  return (req as Record<symbol, Identity | undefined>)[IDENTITY];
}

/** The actor name of the request on msg.req (see core/access actorOf), if it was authenticated. */
export function actorOfMessage(msg: unknown): string | undefined {
  const identity = identityOfRequest((msg as { req?: unknown } | undefined)?.req);
  return identity ? actorOf(identity) : undefined;
}
