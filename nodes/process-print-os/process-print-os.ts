// Node-RED glue for POST /api/process-print-os: catches the "print OS" source up now, as its
// poller would (force: from marker 0; records already processed take no second effect).
import type { NodeAPI } from 'node-red';
import { readProcessPrintOsBody } from '../../core/job-status';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { answer, answerRequests, busy, catchUpNow } from '../common/job-status-route';
import configSchema from './schema.json';

interface ProcessPrintOsConfig {
  name: string;
  db: string;
  batchSize: number;
  lookBack: number;
  schemaVersion: 1;
}

export = function register(RED: NodeAPI): void {
  defineNode<ProcessPrintOsConfig>(
    RED,
    { type: 'floorflow-process-print-os', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, clock, pool, flowVersion }) => {
      const settings = { pool, clock, batchSize: config.batchSize, lookBack: config.lookBack, flowVersion };
      answerRequests(node, (req) =>
        answer(readProcessPrintOsBody(req.body), async ({ force }) => {
          const r = await catchUpNow(settings, 'print_os', force);
          if (!r.locked) return busy('print_os');
          return {
            statusCode: 200,
            payload: {
              processed_count: r.processed,
              jobs_updated: r.jobs_updated,
              last_marker: r.last_marker,
            },
          };
        }),
      );
    },
  );
};
