// Idempotency-Key for every POST route of /api and /v1, once, in the HTTP layer (routes of the
// flows' http-in nodes included): the first answer to a key is kept 24 h and given again to
// every replay of the same request, which never reaches its route a second time. The same key
// with another route or body is refused (422); a replay while the first copy still runs waits
// (409 with Retry-After). A 5xx, or a body refused unread (too large, not JSON), is not kept. Keys are per caller (login, API token or machine), so two callers
// choosing the same key never see each other's answers.
import crypto from 'node:crypto';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Pool } from 'pg';
import { actorOf } from '../core/access';
import { identityOfRequest } from '../nodes/common/identity';
import { claimKey, pruneKeys, recordAnswer, releaseKey } from '../store/idempotency';
import { errorBody } from './http';

/** How long an answer is replayed. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;
/** A claim without an answer this old died with its runtime: the next copy runs the route. */
const ABANDONED_MS = 60000;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** The largest body a replay reads to compare with the first (the routes' own limits are lower). */
const REPLAY_BODY_LIMIT = '5mb';

export interface IdempotencyOptions {
  now?: () => Date;
  log?: (line: string) => void;
}

/** The caller a key belongs to: the authenticated identity, else the machine a signed callback names. */
function scopeOf(req: Request): string {
  const identity = identityOfRequest(req);
  const who = identity
    ? `actor:${actorOf(identity)}`
    : req.get('x-floorflow-machine')
      ? `machine:${req.get('x-floorflow-machine')}`
      : 'anonymous';
  return crypto.createHash('sha256').update(who).digest('hex').slice(0, 32);
}

/** Sorted keys, so the same JSON sent with another key order is the same request. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The body as a fingerprint, alike whether a route parsed it (JSON object) or kept its bytes
 * (the signed callback's raw Buffer) and whether the replay read it raw.
 */
export function bodyHash(body: unknown): string {
  let value = body;
  if (Buffer.isBuffer(body)) {
    const text = body.toString('utf8');
    try {
      value = text.trim() === '' ? undefined : JSON.parse(text);
    } catch {
      // A text body (CSV): a route's text parser keeps the same string.
      value = text;
    }
  }
  if (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.keys(value).length === 0
  ) {
    value = undefined; // no body and an empty parsed one are the same request
  }
  return crypto
    .createHash('sha256')
    .update(canonical(value ?? null))
    .digest('hex');
}

/**
 * Said by a body parser that refused a body it could not read (too large, not JSON, a type it
 * does not take). The route's body is then empty, so the answer's fingerprint would be of no
 * body and the very same request sent again would be told it has "another body": such a refusal
 * is not kept, and a copy is refused again the same way. (Body parsers mark a body read before
 * they fail, so the request itself cannot tell.)
 */
export function markBodyUnread(res: Response): void {
  res.locals.idempotencyBodyUnread = true;
}

export function idempotencyKeys(pool: Pool, options: IdempotencyOptions = {}): RequestHandler {
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => undefined);
  const readRaw = express.raw({ type: () => true, limit: REPLAY_BODY_LIMIT });
  let lastPrune = 0;

  return (req: Request, res: Response, next: NextFunction) => {
    const key = req.get('idempotency-key');
    if (req.method !== 'POST' || key === undefined || !/^\/(api|v1)(\/|$)/.test(req.path)) return next();
    if (!KEY_PATTERN.test(key)) {
      res.status(400).json(errorBody('Idempotency-Key must be 1 to 255 printable characters'));
      return;
    }
    const scope = scopeOf(req);
    const route = `POST ${req.path}`;
    const at = now();
    void (async () => {
      const claim = await claimKey(pool, {
        scope,
        key,
        route,
        at,
        expiredBefore: new Date(at.getTime() - IDEMPOTENCY_WINDOW_MS),
        abandonedBefore: new Date(at.getTime() - ABANDONED_MS),
      });
      if (claim.kind !== 'new' && claim.route !== route) {
        res.status(422).json(errorBody(`this Idempotency-Key was used for another request (${claim.route})`));
        return;
      }
      if (claim.kind === 'in_flight') {
        res
          .status(409)
          .set('Retry-After', '1')
          .json(errorBody('a request with this Idempotency-Key is still being handled'));
        return;
      }
      if (claim.kind === 'answered') {
        // The route will not run: the body is this layer's to read, to tell a replay from a reuse.
        readRaw(req, res, (err?: unknown) => {
          if ((err as { type?: string } | undefined)?.type === 'entity.too.large') {
            res
              .status(413)
              .json(
                errorBody(
                  `this replay's body is larger than ${REPLAY_BODY_LIMIT}, more than any route takes: it is not the request this Idempotency-Key was used for`,
                ),
              );
            return;
          }
          if (err) return next(err);
          if (bodyHash(req.body) !== claim.requestHash) {
            res.status(422).json(errorBody('this Idempotency-Key was used with another body'));
            return;
          }
          res.status(claim.answer.status).set('Idempotent-Replayed', 'true');
          if (claim.answer.contentType) res.set('Content-Type', claim.answer.contentType);
          res.send(Buffer.from(claim.answer.body, 'base64'));
        });
        return;
      }
      if (at.getTime() - lastPrune > 600000) {
        lastPrune = at.getTime();
        void pruneKeys(pool, new Date(at.getTime() - IDEMPOTENCY_WINDOW_MS)).catch(() => undefined);
      }
      keepAnswer(req, res, scope, key);
      next();
    })().catch((err: unknown) => {
      log(`idempotency key not checked: ${(err as Error).message}`);
      if (!res.headersSent)
        res.status(503).set('Retry-After', '1').json(errorBody('the database is not reachable'));
    });
  };

  /**
   * Holds the route's answer back until it is stored with its key: a client that replays as soon
   * as it has the first answer must find it. A 5xx is not kept (a later copy may succeed).
   */
  function keepAnswer(req: Request, res: Response, scope: string, key: string): void {
    const chunks: Buffer[] = [];
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    const collect = (chunk: unknown, encoding?: unknown) => {
      if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
      chunks.push(
        Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'),
      );
    };
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      collect(chunk, rest[0]);
      return write(chunk, ...rest);
    }) as typeof res.write;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      collect(chunk, rest[0]);
      const status = res.statusCode;
      const stored =
        status >= 500 || res.locals.idempotencyBodyUnread === true
          ? releaseKey(pool, scope, key)
          : recordAnswer(pool, {
              scope,
              key,
              requestHash: bodyHash(req.body),
              answer: {
                status,
                contentType: (res.getHeader('content-type') as string | undefined) ?? null,
                body: Buffer.concat(chunks).toString('base64'),
              },
              at: now(),
            });
      void stored
        .catch((err: unknown) => log(`idempotency answer not stored: ${(err as Error).message}`))
        .then(() => end(chunk, ...rest));
      return res;
    }) as typeof res.end;
  }
}
