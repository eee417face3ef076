// POST /api/admin/orders/:orderId/confirm: confirms the order and creates its processing job
// (pending, progress 0) in one transaction. Confirming twice answers with the same job.
import type { NodeAPI } from 'node-red';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { requestActor, requestOf, respond } from '../common/http-api';
import { defineRouteNode, emitProcessing, jobView } from '../common/processing-routes';
import { confirmOrder } from '../../store/processing';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineRouteNode(
    RED,
    { type: 'floorflow-processing-confirm', schema: configSchema as JsonSchema },
    async ({ services, clock, pool, flowVersion }, msg) => {
      const request = requestOf(msg);
      const orderId = request.params.orderId ?? '';
      if (!orderId) throw new FloorflowError('FF_INPUT_INVALID', 'orderId is required');
      const { job, created } = await confirmOrder(
        pool,
        orderId,
        clock.now(),
        flowVersion(),
        requestActor(request),
      );
      if (created) emitProcessing(services, 'job.created', { jobId: job.id, orderNumber: job.order_number });
      return respond(msg, 200, {
        success: true,
        message: 'Order confirmed successfully',
        data: { created, job: jobView(job) },
      });
    },
  );
};
