// Node-RED glue for embossing-callback: owns POST /api/embossing-jobs/callback/:job_id. An
// `http in` node parses JSON before anyone sees the bytes, and the signature covers the raw
// body, so this node registers its own route with express.raw. It answers 401/403 itself
// (and logs the rejected message); a verified callback leaves as a message for the embosser.
import express, { Request, Response } from 'express';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import {
  MACHINE_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  checkCallback,
} from '../../core/machine-callback';
import type { JsonSchema } from '../../core/schema';
import { poolFor } from '../../kit/db';
import { checkConfig, onCloseAsync } from '../../kit/node-kit';
import { servicesOf, systemClock } from '../../kit/services';
import { getJob, logMachineMessage } from '../../store/embossing';
import configSchema from './schema.json';

interface CallbackConfig {
  name?: string;
  db?: string;
  url: string;
  windowSeconds: number | string;
  maxBody: string;
  schemaVersion: number;
}

interface RouteLayer {
  route?: { path: string; methods: Record<string, boolean> };
}
type RoutedApp = { _router?: { stack: RouteLayer[] } };

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

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType(
    'floorflow-embossing-callback',
    function EmbossingCallbackNode(this: Node, def: NodeDef & CallbackConfig) {
      RED.nodes.createNode(this, def);
      const config = checkConfig<CallbackConfig>(this, configSchema as JsonSchema, { ...def });
      if (!config) return;
      const services = servicesOf(RED);
      const clock = services?.clock ?? systemClock;
      const windowSeconds = Number(config.windowSeconds);
      let verified = 0;
      let rejected = 0;

      const handle = async (req: Request, res: Response) => {
        const pool = poolFor(RED, config.db || undefined);
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const jobId = String(req.params.job_id ?? '');
        const machine = header(req, MACHINE_HEADER);
        const job = await getJob(pool, jobId);
        const secret = machine && services ? await services.machineSecret(machine) : undefined;
        const check = checkCallback({
          headers: {
            machine,
            timestamp: header(req, TIMESTAMP_HEADER),
            signature: header(req, SIGNATURE_HEADER),
          },
          rawBody: raw,
          secret,
          jobMachineId: job?.machine_id,
          now: clock.now(),
          windowSeconds,
        });
        if (!check.ok) {
          rejected += 1;
          this.status({
            fill: 'yellow',
            shape: 'ring',
            text: `${verified} verified, ${rejected} rejected: ${check.reason}`,
          });
          await logMachineMessage(pool, {
            direction: 'in',
            machineId: machine ?? '(none)',
            jobId,
            channel: 'http',
            topic: `POST ${req.originalUrl.split('?')[0]}`,
            payload: loggable(raw),
            result: `rejected (${check.status}): ${check.reason}`,
            flowVersion: services?.flowVersion(this.z),
            at: clock.now(),
          });
          res.status(check.status).json({ success: false, error: check.reason });
          return;
        }
        const body = loggable(raw);
        verified += 1;
        this.status({ fill: 'green', shape: 'dot', text: `${verified} verified, ${rejected} rejected` });
        this.send({
          payload: body,
          callback: { machineId: check.machineId, jobId },
          topic: `callback/${jobId}`,
          req,
          res: { _res: res },
        } as unknown as Parameters<Node['send']>[0]);
      };

      const route = (req: Request, res: Response) => {
        handle(req, res).catch((err: Error) => {
          this.error(err);
          if (!res.headersSent) res.status(500).json({ success: false, error: 'internal error' });
        });
      };
      RED.httpNode.post(config.url, express.raw({ type: () => true, limit: config.maxBody }), route);
      this.status({ fill: 'green', shape: 'dot', text: 'listening' });

      onCloseAsync(this, async () => {
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
