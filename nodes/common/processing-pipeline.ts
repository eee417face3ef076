// What the processing flow's stage nodes share: the claimed job a pipeline message carries,
// the stage outputs handed on (msg.content, msg.usb) or read back on a resumed attempt, and
// the stage node itself: it skips a stage the job already completed (the resume rule), runs
// the stage's work and records it, with its log row, under the job's lease.
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import type { Pool } from 'pg';
import { FloorflowError } from '../../core/errors';
import {
  type ContentSelection,
  type ProcessingStage,
  STAGE_PROGRESS,
  type UsbWriteResult,
  stageIsDone,
} from '../../core/processing';
import type { JsonSchema } from '../../core/schema';
import { type ClaimedProcessingJob, completeStage, stageOutput } from '../../store/processing';
import { defineNode } from './define-node';
import { onInputAsync } from './node-kit';

export interface PipelineContext {
  pool: Pool;
  now: Date;
  flowVersion?: string;
}

/** What the stages hand on to each other on the message (msg.content, msg.usb). */
export interface Carried {
  content?: ContentSelection;
  usb?: UsbWriteResult;
}

/** The configuration every processing pipeline node has. */
export interface PipelineNodeConfig {
  name: string;
  db: string;
  schemaVersion: 1;
}

/** The claimed job a pipeline message carries, or a clear error. */
export function claimedJobOf(payload: unknown): ClaimedProcessingJob {
  const p = payload as Partial<ClaimedProcessingJob> | undefined;
  if (!p || typeof p.id !== 'string' || typeof p.lease_token !== 'string' || typeof p.attempts !== 'number') {
    throw new FloorflowError(
      'FF_INPUT_INVALID',
      'msg.payload is not a claimed processing job (from a queue worker)',
    );
  }
  return p as ClaimedProcessingJob;
}

/** The content selection: from the message, or (on a resumed attempt) from its stage's log row. */
export async function contentOf(
  ctx: PipelineContext,
  job: ClaimedProcessingJob,
  carried: Carried,
): Promise<ContentSelection> {
  if (carried.content) return carried.content;
  const saved = await stageOutput(ctx.pool, job.id, 'content_selection');
  if (!saved?.selection)
    throw new FloorflowError('FF_INTERNAL', `job ${job.id}: no content selection recorded`);
  return saved.selection as ContentSelection;
}

/** What the USB writer wrote: from the message, or (on a resumed attempt) from its stage's log row. */
export async function writtenOf(
  ctx: PipelineContext,
  job: ClaimedProcessingJob,
  carried: Carried,
): Promise<UsbWriteResult | undefined> {
  if (carried.usb) return carried.usb;
  const saved = await stageOutput(ctx.pool, job.id, 'usb_writing');
  return saved?.written as UsbWriteResult | undefined;
}

/** A stage's work found the job cannot go on: the Catch node's retry path takes it from here. */
export function stageFailed(stage: ProcessingStage, problem: string): FloorflowError {
  return new FloorflowError('FF_INPUT_INVALID', `${stage}: ${problem}`, { details: { stage } });
}

/** What a stage's work returns: its log row and what it hands on. */
export interface StageResult {
  log: { message: string; details?: Record<string, unknown> };
  carried?: Carried;
}

export type StageWork = (
  ctx: PipelineContext,
  job: ClaimedProcessingJob,
  carried: Carried,
) => Promise<StageResult>;

/**
 * Registers a stage node type: for the claimed job in msg.payload it runs `work` unless the
 * job completed this stage in an earlier attempt, records the stage (progress, completed_stage
 * and the log row in one transaction) and sends the message on. A thrown error reaches the
 * flow's Catch node with the message.
 */
export function defineStageNode(
  RED: NodeAPI,
  definition: { type: string; schema: JsonSchema; stage: ProcessingStage },
  work: StageWork,
): void {
  const { type, schema, stage } = definition;
  defineNode<PipelineNodeConfig>(
    RED,
    { type, schema, needs: 'database' },
    ({ node, clock, pool, flowVersion }) => {
      onInputAsync(node, async (input, send, done) => {
        const msg = input as NodeMessageInFlow & Carried;
        const job = claimedJobOf(msg.payload);
        if (stageIsDone(job.completed_stage, stage)) {
          node.status({ fill: 'grey', shape: 'dot', text: `job ${job.id}: done in an earlier attempt` });
        } else {
          const ctx: PipelineContext = { pool, now: clock.now(), flowVersion: flowVersion() };
          const result = await work(ctx, job, msg);
          await completeStage(
            pool,
            job,
            stage,
            STAGE_PROGRESS[stage].done,
            result.log,
            ctx.flowVersion,
            ctx.now,
          );
          if (result.carried) Object.assign(msg, result.carried);
          node.status({ fill: 'green', shape: 'dot', text: `job ${job.id}: done` });
        }
        send(msg);
        done();
      });
    },
  );
}
