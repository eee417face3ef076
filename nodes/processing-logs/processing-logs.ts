// GET /v1/processing/job/:jobId/logs: the job's log rows, oldest first.
import type { NodeAPI } from 'node-red';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { requestOf, respond } from '../common/http-api';
import { defineRouteNode } from '../common/processing-routes';
import { jobLogs } from '../../store/processing';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineRouteNode(
    RED,
    { type: 'floorflow-processing-logs', schema: configSchema as JsonSchema },
    async ({ pool }, msg) => {
      const jobId = requestOf(msg).params.jobId ?? '';
      const logs = await jobLogs(pool, jobId);
      if (!logs) throw new FloorflowError('FF_NOT_FOUND', `processing job ${jobId} not found`);
      return respond(msg, 200, {
        success: true,
        data: {
          jobId: Number(jobId),
          logs: logs.map((l) => ({
            id: Number(l.id),
            level: l.level,
            category: l.category,
            stage: l.stage,
            message: l.message,
            errorCode: l.errorCode,
            details: l.details,
            flowVersion: l.flowVersion,
            createdAt: l.created_at,
          })),
          count: logs.length,
        },
      });
    },
  );
};
