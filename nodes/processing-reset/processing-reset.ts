// POST /v1/processing/job/:jobId/reset: manual recovery of a failed job. It goes back to
// pending with its attempts cleared and runs again from the first stage; any other status is
// refused (409), so two people pressing Recover at once reset it once.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { requestActor, requestOf, respond } from '../common/http-api';
import { defineRouteNode, emitProcessing, jobView } from '../common/processing-routes';
import { resetJob } from '../../store/processing';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineRouteNode(
    RED,
    { type: 'floorflow-processing-reset', schema: configSchema as JsonSchema },
    async ({ services, clock, pool, flowVersion }, msg) => {
      const request = requestOf(msg);
      const job = await resetJob(pool, request.params.jobId ?? '', {
        actor: requestActor(request),
        now: clock.now(),
        flowVersion: flowVersion(),
      });
      emitProcessing(services, 'job.reset', { jobId: job.id, orderNumber: job.order_number });
      return respond(msg, 200, {
        success: true,
        message: `processing job ${job.id} reset: it runs again from the first stage`,
        data: jobView(job),
      });
    },
  );
};
