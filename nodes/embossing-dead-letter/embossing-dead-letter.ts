// Node-RED glue for embossing-dead-letter: a job the retry loop gave up on (retry-backoff's
// dead-letter output) fails with the last error, and its plates become selectable again.
import type { NodeAPI, NodeMessage } from 'node-red';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { deadLetter, jobChanged } from '../common/embossing-routes';
import { defineNode } from '../common/define-node';
import { onInputAsync } from '../common/node-kit';
import { isRefusedChange } from '../../store/embossing';
import configSchema from './schema.json';

interface DeadLetterConfig {
  name?: string;
  db?: string;
  schemaVersion: number;
}

type Message = NodeMessage & Record<string, unknown>;

/** What the floor reads: only a command that never reached its machine is retried. */
function reasonOf(msg: Message): string {
  const error = String((msg.error as { message?: unknown } | undefined)?.message ?? 'unknown error');
  // retry-backoff's history: one entry per attempt made.
  const attempts = Array.isArray(msg.attempts) ? `${msg.attempts.length} attempts` : 'the last attempt';
  return `not sent after ${attempts}: ${error.replace(/^\w*Error: /, '')}`;
}

export = function register(RED: NodeAPI): void {
  defineNode<DeadLetterConfig>(
    RED,
    { type: 'floorflow-embossing-dead-letter', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, services, clock, pool, flowVersion }) => {
      onInputAsync(node, async (input, send, done) => {
        const msg = input as Message;
        const jobId = (msg.payload as { id?: unknown } | undefined)?.id;
        if (typeof jobId !== 'string' && typeof jobId !== 'number') {
          throw new FloorflowError('FF_INPUT_INVALID', 'dead letter without a job: expected msg.payload.id');
        }
        try {
          const change = await deadLetter(String(jobId), reasonOf(msg), {
            pool,
            by: { at: clock.now(), source: 'embossing dead-letter', flowVersion: flowVersion() },
          });
          jobChanged(services, change.job);
          node.status({ fill: 'yellow', shape: 'dot', text: `job ${jobId} failed` });
          send(Object.assign(msg, { payload: change.job }));
        } catch (err) {
          // A job that meanwhile completed, was cancelled or is being sent again is left as it is.
          if (!isRefusedChange(err)) throw err;
        }
        done();
      });
    },
  );
};
