// Node-RED glue for retry-backoff: a message without msg.error goes to the wrapped step at
// once; a failed one (msg.error, from a Catch node or the step) waits in
// floorflow.pending_retries for the delay core/backoff decides, then goes again, or leaves
// on the dead-letter output with its history. Waiting messages survive a restart.
import type { NodeAPI, NodeMessage } from 'node-red';
import { type BackoffPolicy, type PolicySettings, decide, policyFromSettings } from '../../core/backoff';
import { FloorflowError } from '../../core/errors';
import { afterFailure, failedAttempt, failureOf } from '../../core/retry-message';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { onCloseAsync, onInputAsync } from '../common/node-kit';
import type { TimerHandle } from '../common/services';
import { addPendingRetry, pendingRetriesOf, takePendingRetry } from '../../store/retries';
import configSchema from './schema.json';

interface RetryBackoffConfig extends PolicySettings {
  name?: string;
  db?: string;
  schemaVersion: number;
}

type Message = NodeMessage & Record<string, unknown>;

/** How long a retry whose row could not be taken (database down) waits before trying again. */
const TAKE_RETRY_MS = 5000;

export = function register(RED: NodeAPI): void {
  defineNode<RetryBackoffConfig>(
    RED,
    {
      type: 'floorflow-retry-backoff',
      schema: configSchema as JsonSchema,
      needs: 'database',
      check: (config) => {
        const parsed = policyFromSettings(config);
        return 'error' in parsed ? { status: 'invalid policy', reason: parsed.error } : undefined;
      },
    },
    ({ node, config, clock, pool }) => {
      const parsed = policyFromSettings(config);
      if ('error' in parsed) return; // refused by check
      const policy: BackoffPolicy = parsed;
      // Retries this node has scheduled, by row id; `msg` is the live message when it failed in
      // this process (it keeps msg.req/res), absent for rows loaded after a restart.
      const waiting = new Map<string, { timer: TimerHandle; msg?: Message }>();
      let deadLetters = 0;
      let closed = false;

      const showStatus = () => {
        if (waiting.size > 0) node.status({ fill: 'yellow', shape: 'ring', text: `${waiting.size} waiting` });
        else
          node.status({
            fill: 'green',
            shape: 'dot',
            text: deadLetters > 0 ? `idle, ${deadLetters} dead-lettered` : 'idle',
          });
      };

      const fire = async (id: string) => {
        if (closed) return;
        const live = waiting.get(id)?.msg;
        const row = await takePendingRetry(pool, id);
        waiting.delete(id);
        showStatus();
        if (!row) return; // another runtime, or an earlier timer, sent it
        if (closed) {
          // Closed while the row was being taken: put it back for the next start to send.
          await addPendingRetry(pool, {
            nodeId: node.id,
            dueAt: row.dueAt,
            attempt: row.attempt,
            msg: row.msg,
          });
          return;
        }
        node.send([live ?? (row.msg as Message), null]);
      };

      const schedule = (id: string, dueAt: Date, msg?: Message) => {
        if (waiting.has(id) || closed) return;
        const delay = Math.max(0, dueAt.getTime() - clock.now().getTime());
        const timer = clock.setTimeout(() => {
          fire(id).catch((err: Error) => {
            // The row is still there: try again shortly rather than lose the message.
            node.warn(`retry ${id} could not be taken: ${err.message}`);
            waiting.delete(id);
            schedule(id, new Date(clock.now().getTime() + TAKE_RETRY_MS), msg);
          });
        }, delay);
        waiting.set(id, { timer, msg });
        showStatus();
      };

      pendingRetriesOf(pool, node.id).then(
        (rows) => {
          for (const row of rows) schedule(row.id, row.dueAt);
          showStatus();
        },
        (err: Error) => {
          node.status({ fill: 'red', shape: 'ring', text: 'database unavailable' });
          node.error(new FloorflowError('FF_DB_UNAVAILABLE', `pending retries not loaded: ${err.message}`));
        },
      );

      onInputAsync(node, async (input, send, done) => {
        const msg = input as Message;
        const failure = failureOf(msg);
        if (!failure) {
          send([
            Object.assign(msg, {
              retry: { node: node.id, attempt: 1, maxAttempts: policy.maxAttempts },
              attempts: [],
            }),
            null,
          ]);
          done();
          return;
        }
        const decision = decide(policy, failedAttempt(msg, node.id), failure);
        const outcome = afterFailure(msg, node.id, policy.maxAttempts, decision, failure, clock.now());
        if (decision.action === 'retry' && outcome.retry) {
          const next = Object.assign(msg, { retry: outcome.retry, attempts: outcome.attempts });
          delete next.error;
          const dueAt = new Date(clock.now().getTime() + decision.delayMs);
          const row = await addPendingRetry(pool, {
            nodeId: node.id,
            dueAt,
            attempt: outcome.retry.attempt,
            msg: next,
            lastError: failure,
          });
          schedule(row.id, row.dueAt, next);
        } else {
          deadLetters += 1;
          showStatus();
          send([null, Object.assign(msg, { attempts: outcome.attempts, deadLetter: outcome.deadLetter })]);
        }
        done();
      });

      onCloseAsync(node, async () => {
        // The rows stay: the next start of this node (same id) schedules them again.
        closed = true;
        for (const { timer } of waiting.values()) clock.clearTimeout(timer);
        waiting.clear();
      });
    },
  );
};
