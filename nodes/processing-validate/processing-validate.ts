// Stage 1 of the processing pipeline (progress 10): the order is confirmed and its details
// can be processed. An order that cannot fails the attempt; the flow's Catch retries it.
import type { NodeAPI } from 'node-red';
import { validateOrder } from '../../core/processing';
import type { JsonSchema } from '../../core/schema';
import { defineStageNode, stageFailed } from '../common/processing-pipeline';
import { orderOf } from '../../store/processing';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineStageNode(
    RED,
    { type: 'floorflow-processing-validate', schema: configSchema as JsonSchema, stage: 'validation' },
    async ({ pool }, job) => {
      const order = await orderOf(pool, job.id);
      const problem = validateOrder(order);
      if (problem) throw stageFailed('validation', problem);
      return { log: { message: `order ${order.order_number} validated` } };
    },
  );
};
