// Node-RED glue for processing: the seed 004 routes (confirm, queue, job) and the pipeline's
// steps (stage, complete, fail), by the node's action. The rules are in core/processing, the
// SQL in store/processing, the stage steps in nodes/common/processing-pipeline.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import { FloorflowError } from '../../core/errors';
import { DEFAULT_MAX_CONCURRENCY, type ProcessingStage, queueStatusOf } from '../../core/processing';
import type { JsonSchema } from '../../core/schema';
import { poolFor } from '../common/db';
import { requestActor, requestOf, respond, respondError } from '../common/http-api';
import { announceTransition } from '../common/lifecycle';
import { checkConfig, type DoneFn, onInputAsync, type SendFn } from '../common/node-kit';
import { type Carried, claimedJobOf, runStage } from '../common/processing-pipeline';
import { workerOf } from '../common/queues';
import { servicesOf, systemClock } from '../common/services';
import {
  type ProcessingJobRow,
  completeJob,
  confirmOrder,
  failAttempt,
  getJob,
  jobLogs,
  queueCounts,
  resetJob,
} from '../../store/processing';
import type { AppliedTransition } from '../../store/lifecycle';
import configSchema from './schema.json';

interface ProcessingConfig {
  name: string;
  action: 'confirm' | 'queue' | 'job' | 'logs' | 'reset' | 'stage' | 'complete' | 'fail';
  stage: ProcessingStage | '';
  db: string;
  schemaVersion: 1;
}

type ProcessingDef = NodeDef & Partial<ProcessingConfig>;
type PipelineMessage = NodeMessageInFlow &
  Carried & { error?: { message?: string; code?: string; stack?: string; source?: { id?: string } } };

const schema = configSchema as JsonSchema;

/** The job as GET /v1/processing/job/:jobId shows it (seed 004 "Get Specific Job"). */
function jobView(job: ProcessingJobRow): Record<string, unknown> {
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

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType('floorflow-processing', function ProcessingNode(this: Node, def: ProcessingDef) {
    RED.nodes.createNode(this, def);
    const config = checkConfig<ProcessingConfig>(this, schema, { ...def });
    if (!config) return;
    const services = servicesOf(RED);
    const clock = services?.clock ?? systemClock;
    const pool = () => poolFor(RED, config.db || undefined);
    const flowVersion = () => services?.flowVersion(this.z);
    // Lifecycle transitions are announced (event bus, MQTT) after their transaction committed,
    // as the lifecycle-switch node does.
    const announce = (applied: AppliedTransition[]) => {
      for (const t of applied) void announceTransition(services, t, (m) => this.warn(m));
    };
    const emit = (type: string, data: Record<string, unknown>) =>
      services?.events.emit('processing', { type, ...data });

    onInputAsync(this, async (input: NodeMessageInFlow, send: SendFn, done: DoneFn) => {
      const msg = input as PipelineMessage;
      switch (config.action) {
        case 'confirm':
        case 'queue':
        case 'job':
        case 'logs':
        case 'reset': {
          // A route always answers: errors become the contract's error body, not a Catch.
          try {
            send(await answer(msg));
          } catch (err) {
            send(respondError(msg, err, (m) => this.warn(m)));
          }
          return done();
        }
        case 'stage': {
          const job = claimedJobOf(msg.payload);
          const carried = await runStage(
            { pool: pool(), now: clock.now(), flowVersion: flowVersion() },
            job,
            config.stage as ProcessingStage,
            msg,
          );
          this.status({ fill: 'green', shape: 'dot', text: `job ${job.id}: ${config.stage} done` });
          send(Object.assign(msg, carried));
          return done();
        }
        case 'complete': {
          const job = claimedJobOf(msg.payload);
          const applied: AppliedTransition[] = [];
          const row = await completeJob(pool(), job, flowVersion(), clock.now(), applied);
          announce(applied);
          emit('job.completed', { jobId: row.id, orderNumber: row.order_number, attempts: row.attempts });
          this.status({ fill: 'green', shape: 'dot', text: `job ${row.id} completed` });
          send(Object.assign(msg, { payload: jobView(row) }));
          return done();
        }
        case 'fail': {
          // From a Catch node: msg.payload is still the claimed job, msg.error what went wrong.
          const job = claimedJobOf(msg.payload);
          const error = msg.error ?? {};
          const applied: AppliedTransition[] = [];
          const outcome = await failAttempt(
            pool(),
            job,
            {
              message: error.message ?? 'unknown error',
              code: error.code,
              stack: error.stack,
            },
            flowVersion(),
            clock.now(),
            applied,
          );
          announce(applied);
          if (outcome.outcome !== 'lease_lost')
            emit(outcome.outcome === 'retry' ? 'job.retry' : 'job.failed', { jobId: job.id, ...outcome });
          this.status({
            fill: outcome.outcome === 'failed' ? 'red' : 'yellow',
            shape: 'dot',
            text: `job ${job.id}: ${outcome.outcome}`,
          });
          send(Object.assign(msg, { outcome }));
          return done();
        }
      }
    });

    async function answer(msg: NodeMessage): Promise<NodeMessage> {
      const request = requestOf(msg);
      const { params } = request;
      if (config!.action === 'confirm') {
        const orderId = params.orderId ?? '';
        if (!orderId) throw new FloorflowError('FF_INPUT_INVALID', 'orderId is required');
        const applied: AppliedTransition[] = [];
        const { job, created } = await confirmOrder(
          pool(),
          orderId,
          clock.now(),
          flowVersion(),
          applied,
          requestActor(request),
        );
        announce(applied);
        if (created) emit('job.created', { jobId: job.id, orderNumber: job.order_number });
        return respond(msg, 200, {
          success: true,
          message: 'Order confirmed successfully',
          data: { created, job: jobView(job) },
        });
      }
      if (config!.action === 'queue') {
        const max = workerOf('processing')?.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
        return respond(msg, 200, { success: true, data: queueStatusOf(await queueCounts(pool()), max) });
      }
      const jobId = params.jobId ?? '';
      if (config!.action === 'reset') {
        const applied: AppliedTransition[] = [];
        const job = await resetJob(pool(), jobId, {
          actor: requestActor(request),
          now: clock.now(),
          flowVersion: flowVersion(),
          applied,
        });
        announce(applied);
        emit('job.reset', { jobId: job.id, orderNumber: job.order_number });
        return respond(msg, 200, {
          success: true,
          message: `processing job ${job.id} reset: it runs again from the first stage`,
          data: jobView(job),
        });
      }
      if (config!.action === 'logs') {
        const logs = await jobLogs(pool(), jobId);
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
      }
      const job = await getJob(pool(), jobId);
      if (!job) throw new FloorflowError('FF_NOT_FOUND', `processing job ${jobId} not found`);
      return respond(msg, 200, { success: true, data: jobView(job) });
    }
  });
};
