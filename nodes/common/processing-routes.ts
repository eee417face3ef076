// What the processing flow's HTTP nodes share: the route node itself (it always answers, an
// error becomes the API's error body rather than a Catch), the job as the API shows it, and
// the `processing` events the floor dashboards refresh on.
import type { NodeAPI, NodeMessage } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import type { ProcessingJobRow } from '../../store/processing';
import { type DatabaseNode, defineNode } from './define-node';
import { respondError } from './http-api';
import { onInputAsync } from './node-kit';
import type { PipelineNodeConfig } from './processing-pipeline';
import type { FloorflowServices } from './services';

/** The job as GET /v1/processing/job/:jobId shows it. */
export function jobView(job: ProcessingJobRow): Record<string, unknown> {
  return {
    id: Number(job.id),
    orderId: Number(job.order_id),
    orderNumber: job.order_number,
    status: job.status,
    stage: job.stage,
    progress: job.progress,
    attempts: job.attempts,
    failReason: job.fail_reason,
    nextAttemptAt: job.status === 'retry' ? job.next_attempt_at : null,
    createdAt: job.created_at,
    updatedAt: job.updated_at,
    completedAt: job.completed_at,
  };
}

/** Tells the floor dashboards a processing job changed (they read the board again). */
export function emitProcessing(
  services: FloorflowServices,
  type: string,
  data: Record<string, unknown>,
): void {
  services.events.emit('processing', { type, ...data });
}

export type RouteAnswer = (ctx: DatabaseNode<PipelineNodeConfig>, msg: NodeMessage) => Promise<NodeMessage>;

/**
 * Registers a node that answers one HTTP route: wired from an `http in` node, it sets
 * msg.statusCode and msg.payload for an `http response` node, errors included.
 */
export function defineRouteNode(
  RED: NodeAPI,
  definition: { type: string; schema: JsonSchema },
  answer: RouteAnswer,
): void {
  defineNode<PipelineNodeConfig>(RED, { ...definition, needs: 'database' }, (ctx) => {
    const { node } = ctx;
    onInputAsync(node, async (msg, send, done) => {
      try {
        send(await answer(ctx, msg));
      } catch (err) {
        send(respondError(msg, err, (m) => node.warn(m)));
      }
      done();
    });
  });
}
