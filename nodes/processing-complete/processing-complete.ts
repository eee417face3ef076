// The end of the processing pipeline: the job is completed (progress 100) and its lease
// released. Wired back to the queue worker, which then claims the next due job.
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { onInputAsync } from '../common/node-kit';
import { type PipelineNodeConfig, claimedJobOf } from '../common/processing-pipeline';
import { emitProcessing, jobView } from '../common/processing-routes';
import { completeJob } from '../../store/processing';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineNode<PipelineNodeConfig>(
    RED,
    { type: 'floorflow-processing-complete', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, services, clock, pool, flowVersion }) => {
      onInputAsync(node, async (input: NodeMessageInFlow, send, done) => {
        const job = claimedJobOf(input.payload);
        const row = await completeJob(pool, job, flowVersion(), clock.now());
        emitProcessing(services, 'job.completed', {
          jobId: row.id,
          orderNumber: row.order_number,
          attempts: row.attempts,
        });
        node.status({ fill: 'green', shape: 'dot', text: `job ${row.id} completed` });
        send(Object.assign(input, { payload: jobView(row) }));
        done();
      });
    },
  );
};
