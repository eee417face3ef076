// Node-RED glue for GET /api/admin/job-status/gaps?source=: where a source's marker stands, the
// markers missing below it, and the latest records it skipped with their reasons.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { gapReport, skippedRecords } from '../../store/job-status';
import { defineNode } from '../common/define-node';
import { answerRequests, fail } from '../common/job-status-route';
import configSchema from './schema.json';

interface GapsConfig {
  name: string;
  db: string;
  lookBack: number;
  schemaVersion: 1;
}

/** Skipped records listed in one report; the ledger keeps them all. */
const SKIPPED_LISTED = 100;

export = function register(RED: NodeAPI): void {
  defineNode<GapsConfig>(
    RED,
    { type: 'floorflow-job-status-gaps', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, pool }) => {
      answerRequests(node, async (req) => {
        const source = req.query?.source ?? 'print_os';
        if (source !== 'print_os' && source !== 'scanner')
          return fail(400, 'source must be "print_os" or "scanner"');
        const report = await gapReport(pool, source, config.lookBack);
        return {
          statusCode: 200,
          payload: { ...report, skipped: await skippedRecords(pool, source, SKIPPED_LISTED) },
        };
      });
    },
  );
};
