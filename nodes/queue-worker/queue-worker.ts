// Node-RED glue for queue-worker: polls a durable PostgreSQL queue (nodes/common/queues.ts) on the
// injected clock, sends one message per claimed job, takes back orphaned work at start and
// stuck work periodically. Any input message asks for a poll now (e.g. after a job ends).
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { coalesced } from '../common/coalesce';
import { defineNode } from '../common/define-node';
import { type DoneFn, onCloseAsync } from '../common/node-kit';
import { announceWorker, queueNames, queueSource, withdrawWorker } from '../common/queues';
import { runOnce } from '../common/run-once';
import type { TimerHandle } from '../common/services';
import configSchema from './schema.json';

interface QueueWorkerConfig {
  name: string;
  queue: string;
  db: string;
  interval: number;
  maxConcurrency: number;
  stuckAfter: number;
  monitorInterval: number;
  schemaVersion: 1;
}

/** How often the runtime holding a queue's monitor looks for work of runtimes that died. */
const ORPHAN_CHECK_MS = 5000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export = function register(RED: NodeAPI): void {
  defineNode<QueueWorkerConfig>(
    RED,
    {
      type: 'floorflow-queue-worker',
      schema: configSchema as JsonSchema,
      needs: 'database',
      check: (config) =>
        queueSource(config.queue)
          ? undefined
          : {
              status: `unknown queue ${config.queue}`,
              reason: `unknown queue "${config.queue}"; known: ${queueNames().join(', ')}`,
            },
    },
    ({ node, config, services, clock, pool, flowVersion }) => {
      const source = queueSource(config.queue);
      if (!source) return; // refused by check
      const owner = `${services.runtimeId}/${node.id}`;
      const intervalMs = config.interval * 1000;
      let pollTimer: TimerHandle | undefined;
      let monitorTimer: TimerHandle | undefined;
      let orphanTimer: TimerHandle | undefined;
      // Every runtime claims work (SKIP LOCKED); one at a time watches for stuck and orphaned work.
      const monitorLease = runOnce(services, `queue-monitor/${source.name}`);
      let closed = false;
      let started = 0;

      const context = () => ({
        pool,
        owner,
        now: clock.now(),
        flowVersion: flowVersion(),
      });

      // One claim at a time (nodes/common/coalesce): a tick or poke meanwhile claims again right after.
      const polls = coalesced(
        async () => {
          try {
            const ctx = { ...context(), max: config.maxConcurrency };
            const jobs = await source.claim(ctx);
            for (const job of jobs) {
              started += 1;
              node.send({ payload: job, queue: source.name, topic: `${source.name}/${job.id}` });
            }
            node.status({
              fill: 'green',
              shape: 'dot',
              text: `${started} started, polling every ${config.interval} s`,
            });
          } catch (err) {
            node.status({ fill: 'red', shape: 'ring', text: `claim failed: ${message(err)}` });
            node.warn(`claim from ${source.name} failed: ${message(err)}`);
          }
        },
        () => closed,
      );
      const poll = () => polls.run();

      const tick = () => {
        pollTimer = clock.setTimeout(tick, intervalMs);
        void poll();
      };

      const takeBackOrphans = async (): Promise<void> => {
        if (!source.recoverOrphans) return;
        try {
          const ctx = context();
          const ids = await source.recoverOrphans(ctx);
          if (ids.length > 0) {
            node.warn(`took back ${ids.length} interrupted ${source.name} job(s): ${ids.join(', ')}`);
            void poll();
          }
        } catch (err) {
          node.warn(`recovery of ${source.name} failed: ${message(err)}`);
        }
      };

      // A runtime that dies holding jobs: the runtime holding the monitor takes them back once
      // the dead runtime's lease expired, within seconds rather than at the next stuck check.
      const orphanCheck = () => {
        orphanTimer = clock.setTimeout(orphanCheck, ORPHAN_CHECK_MS);
        if (monitorLease.held()) void takeBackOrphans();
      };

      const monitor = () => {
        monitorTimer = clock.setTimeout(monitor, config.monitorInterval * 1000);
        if (!source.recoverStuck || config.stuckAfter <= 0 || !monitorLease.held()) return;
        const ctx = { ...context(), stuckAfterMs: config.stuckAfter * 1000 };
        source.recoverStuck(ctx).then(
          (ids) => {
            if (ids.length > 0) {
              node.warn(`took back ${ids.length} stuck ${source.name} job(s): ${ids.join(', ')}`);
              void poll();
            }
          },
          (err: unknown) => node.warn(`stuck-job check of ${source.name} failed: ${message(err)}`),
        );
      };

      announceWorker(source.name, { nodeId: node.id, intervalMs, maxConcurrency: config.maxConcurrency });
      node.status({ fill: 'yellow', shape: 'ring', text: 'starting' });
      // Work a killed runtime held is taken back before the first claim, so it is neither lost
      // nor run twice (docs/processing.md).
      const startup = (async () => {
        await takeBackOrphans();
        if (closed) return;
        pollTimer = clock.setTimeout(tick, intervalMs);
        monitorTimer = clock.setTimeout(monitor, config.monitorInterval * 1000);
        if (source.recoverOrphans) orphanTimer = clock.setTimeout(orphanCheck, ORPHAN_CHECK_MS);
        await poll();
      })();

      node.on('input', (_msg: NodeMessageInFlow, _send: unknown, done: DoneFn) => {
        void poll();
        done();
      });

      onCloseAsync(node, async () => {
        closed = true;
        clock.clearTimeout(pollTimer);
        clock.clearTimeout(monitorTimer);
        clock.clearTimeout(orphanTimer);
        withdrawWorker(source.name, node.id);
        await startup;
        await polls.idle();
        await monitorLease.release();
        if (source.release) {
          // The messages of this worker's jobs stop with the flow: give the jobs back now rather
          // than leave them to the stuck-job monitor.
          try {
            const ctx = context();
            const ids = await source.release(ctx);
            if (ids.length > 0)
              node.log(`gave back ${ids.length} ${source.name} job(s) on stop: ${ids.join(', ')}`);
          } catch (err) {
            node.warn(`could not give back ${source.name} jobs on stop: ${message(err)}`);
          }
        }
      });
    },
  );
};
