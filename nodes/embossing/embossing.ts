// Node-RED glue for embossing: one seed 000 route (or the dead-letter step) per node, by its
// action. Routes answer on output 1 for an `http response` node, always in the contract's
// shape; a job that changed also leaves on output 2 (to wake the queue worker).
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { poolFor } from '../common/db';
import { EmbossingAction, announce, deadLetter, runStep } from '../common/embossing-steps';
import { requestOf, respond } from '../common/http-api';
import { checkConfig, onInputAsync } from '../common/node-kit';
import { servicesOf, systemClock } from '../common/services';
import configSchema from './schema.json';

interface EmbossingConfig {
  name?: string;
  db?: string;
  action: EmbossingAction;
  schemaVersion: number;
}

type Message = NodeMessage & Record<string, unknown>;

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType(
    'floorflow-embossing',
    function EmbossingNode(this: Node, def: NodeDef & EmbossingConfig) {
      RED.nodes.createNode(this, def);
      const config = checkConfig<EmbossingConfig>(this, configSchema as JsonSchema, { ...def });
      if (!config) return;
      const services = servicesOf(RED);
      const clock = services?.clock ?? systemClock;
      const context = () => ({
        pool: poolFor(RED, config.db || undefined),
        by: {
          at: clock.now(),
          source: `embossing ${config.action}`,
          flowVersion: services?.flowVersion(this.z),
        },
      });

      onInputAsync(this, async (input, send, done) => {
        const msg = input as Message;
        if (config.action === 'dead-letter') {
          const jobId = (msg.payload as { id?: unknown } | undefined)?.id;
          if (typeof jobId !== 'string' && typeof jobId !== 'number') {
            throw new FloorflowError(
              'FF_INPUT_INVALID',
              'dead letter without a job: expected msg.payload.id',
            );
          }
          // Only a command that never reached its machine is retried, so that is what the floor reads.
          const error = String((msg.error as { message?: unknown } | undefined)?.message ?? 'unknown error');
          // retry-backoff's history: one entry per attempt made.
          const attempts = Array.isArray(msg.attempts)
            ? `${msg.attempts.length} attempts`
            : 'the last attempt';
          const change = await deadLetter(
            String(jobId),
            `not sent after ${attempts}: ${error.replace(/^\w*Error: /, '')}`,
            context(),
          );
          if (change.kind === 'applied') {
            announce(services, change);
            this.status({ fill: 'yellow', shape: 'dot', text: `job ${jobId} failed` });
            send([Object.assign(msg, { payload: change.job }), { payload: change.job }]);
          }
          done();
          return;
        }
        const result = await runStep(config.action, requestOf(msg), context());
        send([
          respond(msg, result.statusCode, result.body),
          result.changed
            ? {
                payload: result.changed.job,
                topic: `embossing/${result.changed.job.id}`,
                // A cancelled job's state before the cancel: the embosser tells a machine that held it.
                ...(config.action === 'cancel'
                  ? { cancelled: { jobId: result.changed.job.id, from: result.changed.transitions[0]?.from } }
                  : {}),
              }
            : null,
        ]);
        if (result.changed) announce(services, result.changed);
        done();
      });
    },
  );
};
