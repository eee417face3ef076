// Node-RED glue for POST /api/admin/job-status/reprocess: gives the records a source skipped from
// a marker on another try, then catches the source up. Records already applied take no second
// effect (the processed-record ledger), so reprocessing is safe to repeat.
import type { NodeAPI } from 'node-red';
import { readReprocessBody } from '../../core/job-status';
import type { JsonSchema } from '../../core/schema';
import { reprocessFrom } from '../../store/job-status';
import { defineNode } from '../common/define-node';
import { answer, answerRequests, busy, catchUpNow } from '../common/job-status-route';
import configSchema from './schema.json';

interface ReprocessConfig {
  name: string;
  db: string;
  batchSize: number;
  lookBack: number;
  schemaVersion: 1;
}

export = function register(RED: NodeAPI): void {
  defineNode<ReprocessConfig>(
    RED,
    { type: 'floorflow-job-status-reprocess', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, clock, pool, flowVersion }) => {
      const settings = { pool, clock, batchSize: config.batchSize, lookBack: config.lookBack, flowVersion };
      answerRequests(node, (req) =>
        answer(readReprocessBody(req.body), async ({ source, from_marker }) => {
          const { retried_skipped } = await reprocessFrom(pool, source, from_marker, clock.now());
          const r = await catchUpNow(settings, source);
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
        }),
      );
    },
  );
};
