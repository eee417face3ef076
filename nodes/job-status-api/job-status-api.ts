// Node-RED glue for job-status-api: turns an http in request into a call to store/job-status
// and the result into msg.statusCode and msg.payload for an http response node. Bodies are
// checked by core/job-status; failures use the contract's {"success": false, "error"} shape.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import {
  readJobId,
  readProcessPrintOsBody,
  readProcessStatusBody,
  readReprocessBody,
  type BodyResult,
} from '../../core/job-status';
import { httpStatusOf } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { poolFor } from '../common/db';
import { checkConfig, onInputAsync } from '../common/node-kit';
import { servicesOf, systemClock } from '../common/services';
import {
  catchUp,
  gapReport,
  jobStatus,
  reprocessFrom,
  skippedRecords,
  type BatchResult,
  type SourceType,
} from '../../store/job-status';
import configSchema from './schema.json';

type Action = 'process-print-os' | 'process-status-updates' | 'job-status' | 'reprocess' | 'gaps';

interface ApiConfig {
  name: string;
  db: string;
  action: Action;
  batchSize: number | string;
  lookBack: number | string;
  schemaVersion: 1;
}

interface HttpRequestLike {
  body?: unknown;
  params?: Record<string, string>;
  query?: Record<string, unknown>;
}

interface Reply {
  statusCode: number;
  payload: unknown;
}

const schema = configSchema as JsonSchema;
/** How long an HTTP trigger waits for a poller that is working the same source. */
const LOCK_WAIT_MS = 20000;

const fail = (statusCode: number, error: string): Reply => ({
  statusCode,
  payload: { success: false, error },
});

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType(
    'floorflow-job-status-api',
    function JobStatusApiNode(this: Node, def: NodeDef & Partial<ApiConfig>) {
      RED.nodes.createNode(this, def);
      const config = checkConfig<ApiConfig>(this, schema, { ...def });
      if (!config) return;
      const services = servicesOf(RED);
      const clock = services?.clock ?? systemClock;

      const run = (source: SourceType, force = false): Promise<BatchResult> =>
        catchUp(poolFor(RED, config.db || undefined), source, {
          batchSize: Number(config.batchSize),
          lookBack: Number(config.lookBack),
          force,
          waitMs: LOCK_WAIT_MS,
          now: clock.now(),
          flowVersion: services?.flowVersion(this.z),
        });
      const busy = (source: SourceType) => fail(503, `another worker is processing ${source}; retry shortly`);

      const answer = async <T>(input: BodyResult<T>, work: (value: T) => Promise<Reply>): Promise<Reply> => {
        return input.ok ? work(input.value) : fail(400, input.error);
      };

      const handle = async (req: HttpRequestLike): Promise<Reply> => {
        const pool = () => poolFor(RED, config!.db || undefined);
        switch (config!.action) {
          case 'process-print-os':
            return answer(readProcessPrintOsBody(req.body), async ({ force }) => {
              const r = await run('print_os', force);
              if (!r.locked) return busy('print_os');
              return {
                statusCode: 200,
                payload: {
                  processed_count: r.processed,
                  jobs_updated: r.jobs_updated,
                  last_marker: r.last_marker,
                },
              };
            });
          case 'process-status-updates':
            return answer(readProcessStatusBody(req.body), async ({ source }) => {
              const printOs = source === 'scanner' ? undefined : await run('print_os');
              const scanner = source === 'print_os' ? undefined : await run('scanner');
              if (printOs && !printOs.locked) return busy('print_os');
              if (scanner && !scanner.locked) return busy('scanner');
              return {
                statusCode: 200,
                payload: {
                  print_os_processed: printOs?.processed ?? 0,
                  scanner_processed: scanner?.processed ?? 0,
                  jobs_updated: (printOs?.jobs_updated ?? 0) + (scanner?.jobs_updated ?? 0),
                },
              };
            });
          case 'job-status':
            return answer(readJobId(req.params?.jobId), async (jobId) => {
              const status = await jobStatus(pool(), jobId);
              return status ? { statusCode: 200, payload: status } : fail(404, `job ${jobId} not found`);
            });
          case 'reprocess':
            return answer(readReprocessBody(req.body), async ({ source, from_marker }) => {
              const { retried_skipped } = await reprocessFrom(pool(), source, from_marker, clock.now());
              const r = await run(source);
              if (!r.locked) return busy(source);
              return {
                statusCode: 200,
                payload: {
                  source,
                  from_marker,
                  retried_skipped,
                  processed_count: r.processed,
                  jobs_updated: r.jobs_updated,
                  last_marker: r.last_marker,
                },
              };
            });
          case 'gaps': {
            const source = req.query?.source ?? 'print_os';
            if (source !== 'print_os' && source !== 'scanner')
              return fail(400, 'source must be "print_os" or "scanner"');
            const report = await gapReport(pool(), source, Number(config!.lookBack));
            return {
              statusCode: 200,
              payload: { ...report, skipped: await skippedRecords(pool(), source, 100) },
            };
          }
        }
      };

      onInputAsync(this, async (msg: NodeMessageInFlow, send, done) => {
        const req = ((msg as { req?: HttpRequestLike }).req ?? {}) as HttpRequestLike;
        try {
          const reply = await handle(req);
          send(Object.assign(msg, reply));
          done();
        } catch (err) {
          // The caller gets the contract's error shape, the Catch node the error itself.
          const status = httpStatusOf(err);
          send(
            Object.assign(
              msg,
              fail(status, status < 500 ? 'invalid value in the request' : 'internal error'),
            ),
          );
          done(err instanceof Error ? err : new Error(String(err)));
        }
      });
    },
  );
};
