// Node-RED glue for POST /api/process-status-updates: catches up the "print OS" source, the
// scanned_codes source or both, now, as their pollers would.
import type { NodeAPI } from 'node-red';
import { readProcessStatusBody } from '../../core/job-status';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { answer, answerRequests, busy, catchUpNow } from '../common/job-status-route';
import configSchema from './schema.json';

interface ProcessStatusUpdatesConfig {
  name: string;
  db: string;
  batchSize: number;
  lookBack: number;
  schemaVersion: 1;
}

export = function register(RED: NodeAPI): void {
  defineNode<ProcessStatusUpdatesConfig>(
    RED,
    { type: 'floorflow-process-status-updates', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, clock, pool, flowVersion }) => {
      const settings = { pool, clock, batchSize: config.batchSize, lookBack: config.lookBack, flowVersion };
      answerRequests(node, (req) =>
        answer(readProcessStatusBody(req.body), async ({ source }) => {
          const printOs = source === 'scanner' ? undefined : await catchUpNow(settings, 'print_os');
          const scanner = source === 'print_os' ? undefined : await catchUpNow(settings, 'scanner');
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
        }),
      );
    },
  );
};
