// Node-RED glue for GET /api/job-status/:jobId: a job's operations and its update history.
import type { NodeAPI } from 'node-red';
import { readJobId } from '../../core/job-status';
import type { JsonSchema } from '../../core/schema';
import { jobStatus } from '../../store/job-status';
import { defineNode } from '../common/define-node';
import { answer, answerRequests, fail } from '../common/job-status-route';
import configSchema from './schema.json';

interface JobStatusConfig {
  name: string;
  db: string;
  schemaVersion: 1;
}

export = function register(RED: NodeAPI): void {
  defineNode<JobStatusConfig>(
    RED,
    { type: 'floorflow-job-status', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, pool }) => {
      answerRequests(node, (req) =>
        answer(readJobId(req.params?.jobId), async (jobId) => {
          const status = await jobStatus(pool, jobId);
          return status ? { statusCode: 200, payload: status } : fail(404, `job ${jobId} not found`);
        }),
      );
    },
  );
};
