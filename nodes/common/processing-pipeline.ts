// The steps of seed 004's pipeline as the flow's nodes run them: each stage skips itself when
// the job's last completed stage is at or past it (the resume rule), does its work from
// core/processing, and records itself through store/processing under the job's lease.
import type { Pool } from 'pg';
import { FloorflowError } from '../../core/errors';
import {
  type ContentSelection,
  type ProcessingStage,
  STAGE_PROGRESS,
  type UsbWriteResult,
  selectContent,
  simulateUsbWrite,
  simulatedFailure,
  simulatedHang,
  stageIsDone,
  validateOrder,
  verifyWrite,
} from '../../core/processing';
import {
  type ClaimedProcessingJob,
  completeStage,
  orderOf,
  stageOutput,
  startStage,
} from '../../store/processing';

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

async function contentOf(
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

async function writtenOf(
  ctx: PipelineContext,
  job: ClaimedProcessingJob,
  carried: Carried,
): Promise<UsbWriteResult | undefined> {
  if (carried.usb) return carried.usb;
  const saved = await stageOutput(ctx.pool, job.id, 'usb_writing');
  return saved?.written as UsbWriteResult | undefined;
}

/** Runs one stage (validation, content selection, verification) or records the USB write. */
export async function runStage(
  ctx: PipelineContext,
  job: ClaimedProcessingJob,
  stage: ProcessingStage,
  carried: Carried,
): Promise<Carried> {
  if (stageIsDone(job.completed_stage, stage)) return carried;
  const progress = STAGE_PROGRESS[stage].done;
  const order = await orderOf(ctx.pool, job.id);
  const fail = (problem: string) => {
    throw new FloorflowError('FF_INPUT_INVALID', `${stage}: ${problem}`, { details: { stage } });
  };
  switch (stage) {
    case 'validation': {
      const problem = validateOrder(order) ?? simulatedFailure(order, stage, job.attempts);
      if (problem) fail(problem);
      await completeStage(
        ctx.pool,
        job,
        stage,
        progress,
        { message: `order ${order.order_number} validated` },
        ctx.flowVersion,
        ctx.now,
      );
      return carried;
    }
    case 'content_selection': {
      const problem = simulatedFailure(order, stage, job.attempts);
      if (problem) fail(problem);
      const selection = selectContent(order);
      await completeStage(
        ctx.pool,
        job,
        stage,
        progress,
        { message: `${selection.files.length} file(s) selected`, details: { selection } },
        ctx.flowVersion,
        ctx.now,
      );
      return { ...carried, content: selection };
    }
    case 'usb_writing': {
      const written = await writtenOf(ctx, job, carried);
      if (!written) fail('the USB writer returned no result (msg.usb)');
      await completeStage(
        ctx.pool,
        job,
        stage,
        progress,
        { message: `${written!.bytesWritten} bytes written to ${written!.device}`, details: { written } },
        ctx.flowVersion,
        ctx.now,
      );
      return { ...carried, usb: written };
    }
    case 'verification': {
      const problem =
        verifyWrite(await contentOf(ctx, job, carried), await writtenOf(ctx, job, carried)) ??
        simulatedFailure(order, stage, job.attempts);
      if (problem) fail(problem);
      await completeStage(
        ctx.pool,
        job,
        stage,
        progress,
        { message: 'written content verified' },
        ctx.flowVersion,
        ctx.now,
      );
      return carried;
    }
  }
}

/**
 * The default USB writer, simulated: marks the write as started (progress 50) and returns
 * what a real writer would. `fail` is the node's failure switch; the order's
 * details.simulate is the per-order one.
 */
export async function writeUsbSimulated(
  ctx: PipelineContext,
  job: ClaimedProcessingJob,
  carried: Carried,
  options: { device: string; fail: boolean },
): Promise<Carried> {
  if (stageIsDone(job.completed_stage, 'usb_writing')) return carried;
  const order = await orderOf(ctx.pool, job.id);
  await startStage(ctx.pool, job, 'usb_writing', STAGE_PROGRESS.usb_writing.start, ctx.now);
  if (simulatedHang(order, 'usb_writing')) {
    // A device that stopped answering: this attempt never ends; the stuck-job monitor (or the
    // next start) takes the job back, and the lease keeps this attempt from touching it again.
    return new Promise<Carried>(() => undefined);
  }
  const problem = options.fail
    ? `USB writer ${options.device} failed (failure switch on)`
    : simulatedFailure(order, 'usb_writing', job.attempts);
  if (problem)
    throw new FloorflowError('FF_MACHINE_FAILED', problem, {
      retryable: true,
      details: { stage: 'usb_writing' },
    });
  return { ...carried, usb: simulateUsbWrite(await contentOf(ctx, job, carried), options.device) };
}
