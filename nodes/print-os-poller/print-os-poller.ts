// Node-RED glue for print-os-poller: wakes on its interval, on a NOTIFY from the source's insert
// trigger, or on an input message, and catches its source up in batches through
// store/job-status processBatch (lock, rows, effects and marker in one transaction per batch).
import type { NodeAPI, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { PoolClient } from 'pg';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { onCloseAsync, onInputAsync } from '../common/node-kit';
import { onRuntimeGone, runOnce } from '../common/run-once';
import type { TimerHandle } from '../common/services';
import {
  SOURCES,
  catchUp,
  gapReport,
  sourceStatus,
  type BatchResult,
  type SourceType,
} from '../../store/job-status';
import { scanNoticeLine } from '../../core/scan-notice';
import { JOB_STATUS_EVENT } from '../common/scan-notices';
import { scansByIds } from '../../store/scan-notices';
import configSchema from './schema.json';

/** Skipped scans logged one line each per batch; the rest are in the summary line above and the ledger. */
const MAX_SCAN_LINES = 50;

interface PollerConfig {
  name: string;
  db: string;
  source: SourceType;
  batchSize: number;
  intervalSeconds: number;
  lookBack: number;
  listen: boolean;
  schemaVersion: 1;
}

export = function register(RED: NodeAPI): void {
  defineNode<PollerConfig>(
    RED,
    { type: 'floorflow-print-os-poller', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, services, clock, pool, flowVersion }) => {
      const { batchSize, lookBack, source } = config;
      const intervalMs = config.intervalSeconds * 1000;
      let timer: TimerHandle | undefined;
      let listener: PoolClient | undefined;
      let releaseListener: ((destroy: boolean) => void) | undefined;
      let listening: Promise<void> | undefined;
      let running: Promise<BatchResult> | undefined;
      let again = false;
      let closing = false;
      let reportedGaps = '';

      const showStatus = async (result: BatchResult | undefined): Promise<void> => {
        const status = await sourceStatus(pool, source);
        let gaps = 0;
        if (result && result.processed > 0) {
          const report = await gapReport(pool, source, lookBack);
          gaps = report.gaps.length;
          const key = JSON.stringify(report.gaps);
          if (gaps > 0 && key !== reportedGaps)
            node.warn(
              `${source}: markers missing: ${report.gaps.map((g) => (g.from === g.to ? g.from : `${g.from}-${g.to}`)).join(', ')}`,
            );
          reportedGaps = key;
        }
        node.status({
          fill: status.lag > 0 || gaps > 0 ? 'yellow' : 'green',
          shape: 'dot',
          text: `marker ${status.last_marker} · lag ${status.lag}${gaps > 0 ? ` · ${gaps} gaps` : ''}`,
        });
      };

      /** Catches the source up; overlapping wake-ups coalesce into one more run. */
      const run = async (force: boolean, waitMs?: number): Promise<BatchResult> => {
        if (running) {
          again = true;
          return running;
        }
        running = (async () => {
          node.status({ fill: 'blue', shape: 'dot', text: 'processing' });
          const result = await catchUp(pool, source, {
            batchSize,
            lookBack,
            force,
            waitMs,
            now: clock.now(),
            flowVersion: flowVersion(),
          });
          // A skipped record took no effect: say why in the log too (the ledger and the gaps route keep it).
          if (result.skipped > 0)
            node.warn(
              `${source}: ${result.skipped} record(s) skipped: ${result.skips
                .slice(0, 5)
                .map((k) => `${k.source_id}: ${k.reason}`)
                .join('; ')}${result.skipped > 5 ? '; ...' : ''}`,
            );
          // Scans: one line per skipped scan with its machine and code, as the job mapper logs them.
          if (source === 'scanner' && result.skipped > 0) {
            const scans = await scansByIds(
              pool,
              result.skips.slice(0, MAX_SCAN_LINES).map((k) => k.source_id),
            ).catch(() => new Map<number, { machine_id: string; code_text: string }>());
            for (const k of result.skips.slice(0, MAX_SCAN_LINES)) {
              const scan = scans.get(k.source_id);
              if (scan) node.warn(scanNoticeLine('skipped', scan.machine_id, scan.code_text, k.reason));
            }
            services.events.emit(JOB_STATUS_EVENT, { type: 'scan_skipped', count: result.skipped });
          }
          if (!result.locked)
            node.status({ fill: 'grey', shape: 'ring', text: 'another poller holds the source' });
          else await showStatus(result);
          return result;
        })();
        try {
          return await running;
        } finally {
          running = undefined;
          if (again && !closing) {
            again = false;
            void tick();
          }
        }
      };

      const schedule = (): void => {
        clock.clearTimeout(timer);
        if (!closing) timer = clock.setTimeout(() => void tick(), intervalMs);
      };

      const summary = (result: BatchResult): Record<string, unknown> => {
        return {
          source,
          processed_count: result.processed,
          applied: result.applied,
          skipped: result.skipped,
          jobs_updated: result.jobs_updated,
          last_marker: result.last_marker,
          locked: result.locked,
          skips: result.skips,
        };
      };

      // Timer and NOTIFY runs report failures with a message, so a Catch node sees them.
      const tick = async (): Promise<void> => {
        if (!lease.held()) {
          node.status({ fill: 'grey', shape: 'ring', text: 'standby: another runtime polls' });
          return;
        }
        if (running) {
          again = true;
          return;
        }
        try {
          await ensureListening();
          const result = await run(false);
          if (result.processed > 0) node.send({ topic: source, payload: summary(result) });
        } catch (err) {
          node.status({ fill: 'red', shape: 'ring', text: (err as Error).message.slice(0, 60) });
          node.error(err, { topic: source, payload: { source } } as NodeMessage);
        } finally {
          schedule();
        }
      };

      // The start and the first tick both ask to listen: they share one attempt, because a second
      // client would be checked out, never released, and hold the pool open at stop.
      const ensureListening = (): Promise<void> => {
        if (!config.listen || listener || closing) return Promise.resolve();
        listening ??= (async () => {
          const client = await pool.connect();
          const onNotification = () => void tick();
          // pg reports a connection the server ends twice (its message, then the closed socket),
          // and a connection given back to the pool is the pool's: release once, and stop
          // listening to it when it goes back, or a later error releases it a second time.
          let released = false;
          const release = (destroy: boolean) => {
            if (released) return;
            released = true;
            client.off('notification', onNotification);
            client.off('error', onError);
            if (listener === client) listener = undefined;
            client.release(destroy);
          };
          // The connection broke: forget it; the next tick listens again, the interval covers the gap.
          const onError = () => release(true);
          client.on('notification', onNotification);
          client.on('error', onError);
          try {
            await client.query(`LISTEN ${SOURCES[source].channel}`);
          } catch (err) {
            release(true);
            throw err;
          }
          // Closed while connecting: this client must not outlive the node.
          if (closing) release(true);
          else if (!released) {
            listener = client;
            releaseListener = release;
          }
        })().finally(() => {
          listening = undefined;
        });
        return listening;
      };

      // Several runtimes on one database: the one holding the lease polls; the others stand by and
      // one of them takes over within seconds if it dies. (Each batch also holds the source's
      // advisory lock, so two pollers could never apply a record twice; the lease saves the work.)
      const lease = runOnce(services, `poller/${source}`, (held) => {
        if (held) void tick();
        else {
          clock.clearTimeout(timer);
          node.status({ fill: 'grey', shape: 'ring', text: 'standby: another runtime polls' });
        }
      });

      // A runtime that died may have stored records it never applied: catch up now, not at the interval.
      const stopWatching = onRuntimeGone(services, () => void tick());

      onInputAsync(node, async (msg: NodeMessageInFlow, send, done) => {
        const body = (msg.payload ?? {}) as { force?: unknown };
        if (typeof body !== 'object' || (body.force !== undefined && typeof body.force !== 'boolean')) {
          throw new FloorflowError('FF_INPUT_INVALID', 'msg.payload.force must be true or false');
        }
        const result = await run(body.force === true, 30000);
        send(Object.assign(msg, { payload: summary(result) }));
        done();
      });

      onCloseAsync(node, async () => {
        closing = true;
        clock.clearTimeout(timer);
        stopWatching();
        await lease.release();
        await running?.catch(() => undefined);
        await listening?.catch(() => undefined);
        const client = listener;
        const release = releaseListener;
        listener = undefined;
        releaseListener = undefined;
        if (client && release) {
          await client.query(`UNLISTEN ${SOURCES[source].channel}`).catch(() => undefined);
          release(false);
        }
      });

      node.status({ fill: 'grey', shape: 'ring', text: 'starting' });
      ensureListening().catch((err: Error) =>
        node.warn(`LISTEN failed, polling on the interval only: ${err.message}`),
      );
      // The first run waits for the flow to finish starting, then runs on the interval.
      timer = clock.setTimeout(() => void tick(), 0);
    },
  );
};
