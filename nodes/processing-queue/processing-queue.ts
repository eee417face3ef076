// GET /v1/processing/queue (and its admin twin): jobs counted by status, the jobs running now,
// the worker's concurrency limit and the average duration of a completed job.
import type { NodeAPI } from 'node-red';
import { DEFAULT_MAX_CONCURRENCY, queueStatusOf } from '../../core/processing';
import type { JsonSchema } from '../../core/schema';
import { respond } from '../common/http-api';
import { defineRouteNode } from '../common/processing-routes';
import { workerOf } from '../common/queues';
import { queueCounts } from '../../store/processing';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineRouteNode(
    RED,
    { type: 'floorflow-processing-queue', schema: configSchema as JsonSchema },
    async ({ pool }, msg) => {
      // The limit of the worker running on this runtime, when one does.
      const max = workerOf('processing')?.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
      return respond(msg, 200, { success: true, data: queueStatusOf(await queueCounts(pool), max) });
    },
  );
};
