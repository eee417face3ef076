// A failed attempt of a processing job, wired from the flow's Catch node: records fail_reason
// and a PROCESSING_FAILED log row, then schedules the next attempt (after 5 s, 15 s, 60 s) or,
// after the fourth attempt, marks the job failed. A report from an attempt whose job was
// already taken back (stuck or interrupted) changes nothing.
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { onInputAsync } from '../common/node-kit';
import { type PipelineNodeConfig, claimedJobOf } from '../common/processing-pipeline';
import { emitProcessing } from '../common/processing-routes';
import { failAttempt } from '../../store/processing';
import configSchema from './schema.json';

type CaughtMessage = NodeMessageInFlow & { error?: { message?: string; code?: string; stack?: string } };

export = function register(RED: NodeAPI): void {
  defineNode<PipelineNodeConfig>(
    RED,
    { type: 'floorflow-processing-retry', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, services, clock, pool, flowVersion }) => {
      onInputAsync(node, async (input, send, done) => {
        // msg.payload is still the claimed job; the Catch node put what went wrong on msg.error.
        const msg = input as CaughtMessage;
        const job = claimedJobOf(msg.payload);
        const error = msg.error ?? {};
        const outcome = await failAttempt(
          pool,
          job,
          { message: error.message ?? 'unknown error', code: error.code, stack: error.stack },
          flowVersion(),
          clock.now(),
        );
        if (outcome.outcome !== 'lease_lost')
          emitProcessing(services, outcome.outcome === 'retry' ? 'job.retry' : 'job.failed', {
            jobId: job.id,
            ...outcome,
          });
        node.status({
          fill: outcome.outcome === 'failed' ? 'red' : 'yellow',
          shape: 'dot',
          text: `job ${job.id}: ${outcome.outcome}`,
        });
        send(Object.assign(msg, { outcome }));
        done();
      });
    },
  );
};
