// GET /v1/processing/job/:jobId: one processing job, its stage, progress and attempts.
import type { NodeAPI } from 'node-red';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { requestOf, respond } from '../common/http-api';
import { defineRouteNode, jobView } from '../common/processing-routes';
import { getJob } from '../../store/processing';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineRouteNode(
    RED,
    { type: 'floorflow-processing-job', schema: configSchema as JsonSchema },
    async ({ pool }, msg) => {
      const jobId = requestOf(msg).params.jobId ?? '';
      const job = await getJob(pool, jobId);
      if (!job) throw new FloorflowError('FF_NOT_FOUND', `processing job ${jobId} not found`);
      return respond(msg, 200, { success: true, data: jobView(job) });
    },
  );
};
