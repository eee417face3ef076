// Node-RED glue for embossing-callback: owns POST /api/embossing-jobs/callback/:job_id. An
// `http in` node parses JSON before anyone sees the bytes, and the signature covers the raw
// body, so this node registers its own route with express.raw. It answers 401/403 itself (and
// logs a bounded excerpt of the refused message, a few per minute per address), remembers each
// verified nonce with the answer it got (an exact repeat is answered the same, a reused nonce
// refused), and a verified callback leaves as a message for the embosser.
import crypto from 'node:crypto';
import express, { Request, Response } from 'express';
import type { Node, NodeAPI } from 'node-red';
import { excerptOf } from '../../core/excerpt';
import {
  CALLBACK_FUTURE_SKEW_SECONDS,
  MACHINE_HEADER,
  NONCE_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  checkCallback,
} from '../../core/machine-callback';
import { SourceLimiter } from '../../core/rate-limit';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { onCloseAsync } from '../common/node-kit';
import {
  claimCallbackNonce,
  getJob,
  logMachineMessage,
  pruneCallbackNonces,
  recordCallbackAnswer,
} from '../../store/embossing';
import configSchema from './schema.json';

interface CallbackConfig {
  name?: string;
  db?: string;
  url: string;
  /** Seconds a callback's timestamp may lie in the past. */
  windowSeconds: number;
  maxBody: string;
  schemaVersion: number;
}

interface RouteLayer {
  route?: { path: string; methods: Record<string, boolean> };
}
type RoutedApp = { _router?: { stack: RouteLayer[] } };

/** Refused callbacks logged per address and minute; the rest are counted in the next logged one. */
const REJECTIONS_LOGGED_PER_MINUTE = 10;
/** Nonces are pruned at most this often. */
const PRUNE_EVERY_MS = 60000;

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The body as logged: JSON when it parses, otherwise the first characters of the text. */
function loggable(raw: Buffer): unknown {
  const text = raw.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return { raw: text.slice(0, 1000) };
  }
}

/** Calls `answered` with the status and body the request gets, whichever node sends them. */
function onAnswer(res: Response, answered: (status: number, body: unknown) => void): void {
  const send = res.send.bind(res);
  let body: unknown;
  res.send = ((value: unknown) => {
    // jsonp and json call send again with the serialised text: keep the first, richer value.
    if (body === undefined) body = value;
    return send(value);
  }) as Response['send'];
  res.once('finish', () => {
    let stored = body;
    if (Buffer.isBuffer(stored)) stored = stored.toString('utf8');
    if (typeof stored === 'string') {
      const text = stored;
      try {
        stored = JSON.parse(text);
      } catch {
        stored = { raw: text.slice(0, 1000) };
      }
    }
    answered(res.statusCode, stored);
  });
}

export = function register(RED: NodeAPI): void {
  defineNode<CallbackConfig>(
    RED,
    { type: 'floorflow-embossing-callback', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, services, clock, pool, flowVersion }) => {
      const windowSeconds = config.windowSeconds;
      const rejectionLog = new SourceLimiter(REJECTIONS_LOGGED_PER_MINUTE, 60000);
      let verified = 0;
      let rejected = 0;
      let prunedAt = 0;

      const refuse = async (
        req: Request,
        res: Response,
        raw: Buffer,
        status: number,
        reason: string,
        machine: string | undefined,
        jobId: string,
      ) => {
        rejected += 1;
        node.status({
          fill: 'yellow',
          shape: 'ring',
          text: `${verified} verified, ${rejected} rejected: ${reason}`,
        });
        res.status(status).json({ success: false, error: reason });
        // Unauthenticated bytes: a bounded excerpt and a hash, and only a few rows a minute per address.
        const source = req.socket.remoteAddress ?? 'unknown';
        const window = rejectionLog.take(source, clock.now().getTime());
        if (!window.allowed) return;
        await logMachineMessage(pool, {
          direction: 'in',
          machineId: (machine ?? '(none)').slice(0, 64),
          jobId,
          channel: 'http',
          topic: `POST ${req.originalUrl.split('?')[0]}`.slice(0, 200),
          payload: { ...excerptOf(raw), from: source, not_logged_before: window.suppressed },
          result: `rejected (${status}): ${reason}`,
          flowVersion: flowVersion(),
          at: clock.now(),
        });
      };

      const handle = async (req: Request, res: Response) => {
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const jobId = String(req.params.job_id ?? '');
        const path = req.originalUrl.split('?')[0];
        const machine = header(req, MACHINE_HEADER);
        const now = clock.now();
        const job = /^[0-9]{1,18}$/.test(jobId) ? await getJob(pool, jobId) : undefined;
        const secret = machine ? await services.machineSecret(machine) : undefined;
        const check = checkCallback({
          headers: {
            machine,
            timestamp: header(req, TIMESTAMP_HEADER),
            nonce: header(req, NONCE_HEADER),
            signature: header(req, SIGNATURE_HEADER),
          },
          method: req.method,
          path,
          rawBody: raw,
          secret,
          jobMachineId: job?.machine_id,
          now,
          windowSeconds,
        });
        if (!check.ok) return refuse(req, res, raw, check.status, check.reason, machine, jobId);

        if (now.getTime() - prunedAt > PRUNE_EVERY_MS) {
          prunedAt = now.getTime();
          const keep = (windowSeconds + CALLBACK_FUTURE_SKEW_SECONDS + 60) * 1000;
          await pruneCallbackNonces(pool, new Date(now.getTime() - keep));
        }
        const claim = await claimCallbackNonce(pool, {
          machineId: check.machineId,
          nonce: check.nonce,
          path,
          bodySha256: crypto.createHash('sha256').update(raw).digest('hex'),
          at: now,
        });
        if (claim.kind === 'reused') {
          return refuse(
            req,
            res,
            raw,
            401,
            'this nonce was already used for another request',
            machine,
            jobId,
          );
        }
        if (claim.kind === 'repeat') {
          // A machine that did not hear the answer sends the same callback again: same answer, no change.
          res.status(claim.status).json(claim.answer);
          return;
        }
        if (claim.kind === 'in_flight') {
          res.status(503).set('Retry-After', '1').json({
            success: false,
            error: 'this callback is still being applied: send it again for its answer',
          });
          return;
        }
        onAnswer(res, (status, body) => {
          recordCallbackAnswer(pool, {
            machineId: check.machineId,
            nonce: check.nonce,
            status,
            body,
            at: clock.now(),
          }).catch((err: Error) =>
            node.error(`answer to callback for job ${jobId} not kept: ${err.message}`),
          );
        });
        const body = loggable(raw);
        verified += 1;
        node.status({ fill: 'green', shape: 'dot', text: `${verified} verified, ${rejected} rejected` });
        node.send({
          payload: body,
          callback: { machineId: check.machineId, jobId },
          topic: `callback/${jobId}`,
          req,
          res: { _res: res },
        } as unknown as Parameters<Node['send']>[0]);
      };

      const route = (req: Request, res: Response) => {
        handle(req, res).catch((err: Error) => {
          node.error(err);
          if (!res.headersSent) res.status(500).json({ success: false, error: 'internal error' });
        });
      };
      RED.httpNode.post(config.url, express.raw({ type: () => true, limit: config.maxBody }), route);
      node.status({ fill: 'green', shape: 'dot', text: 'listening' });

      onCloseAsync(node, async () => {
        const app = RED.httpNode as unknown as RoutedApp;
        if (app._router) {
          app._router.stack = app._router.stack.filter(
            (layer) => !(layer.route?.path === config.url && layer.route.methods.post),
          );
        }
      });
    },
  );
};
