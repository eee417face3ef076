// Runs an action a floor display asked for through the domain's own store functions, then
// tells the displays (a 'dashboard' event that makes every feed re-read; the lifecycle relay
// announces the transitions after commit), so every display updates without a reload.
import type { Pool } from 'pg';
import { isReadAction } from '../../core/access';
import type { DashboardAction } from '../../core/dashboard-actions';
import { FloorflowError } from '../../core/errors';
import { requireShippedModel } from '../../core/lifecycle-models';
import * as embossing from '../../store/embossing';
import * as engraving from '../../store/engraving';
import * as processing from '../../store/processing';
import * as workpanel from '../../store/workpanel';
import { transition } from '../../store/lifecycle';
import { withTransaction } from '../../store/db';
import type { FloorflowServices } from '../common/services';

export interface ActionResult {
  action: DashboardAction['action'];
  ok: boolean;
  /** One line for the person at the display. */
  message: string;
  /** What the action returns to the page (the logs of a job, a product's details). */
  data?: unknown;
}

export interface ActionContext {
  services: FloorflowServices | undefined;
  pool: Pool;
  now: Date;
  /** Who pressed the button: the login of the display connection (see core/access actorOf). */
  actor: string;
  flowVersion?: string;
  warn(message: string): void;
}

/** Refusals the person can act on; anything else is a fault for the node to report. */
const REFUSALS = new Set(['FF_INPUT_INVALID', 'FF_NOT_FOUND', 'FF_CONFLICT', 'FF_TRANSITION_INVALID']);

export function refusalOf(
  action: DashboardAction['action'] | 'unknown',
  err: unknown,
): ActionResult | undefined {
  if (err instanceof FloorflowError && REFUSALS.has(err.code)) {
    return { action: action as DashboardAction['action'], ok: false, message: err.message };
  }
  return undefined;
}

export async function performAction(ctx: ActionContext, request: DashboardAction): Promise<ActionResult> {
  const by = { at: ctx.now, actor: ctx.actor, source: 'dashboard', flowVersion: ctx.flowVersion };
  let result: ActionResult;
  try {
    result = await run();
  } catch (err) {
    const refusal = refusalOf(request.action, err);
    if (!refusal) throw err;
    result = refusal;
  }
  // Only a change makes every display re-read: a read (logs, a product's details) changes nothing.
  if (result.ok && !isReadAction(request.action))
    ctx.services?.events.emit('dashboard', { action: request.action, at: ctx.now.toISOString() });
  return result;

  async function run(): Promise<ActionResult> {
    switch (request.action) {
      case 'emboss': {
        const created = await embossing.createJob(
          ctx.pool,
          { plateIds: request.plateIds, machineId: request.machineId, createdBy: ctx.actor },
          by,
        );
        return {
          action: request.action,
          ok: true,
          message: `embossing job ${created.job.id} queued for ${request.machineId}`,
          data: { job_id: created.job.id },
        };
      }
      case 'retry_embossing': {
        // A job that cannot be retried throws a refusal: refusalOf answers it.
        await embossing.retryJob(ctx.pool, request.jobId, by);
        return { action: request.action, ok: true, message: `embossing job ${request.jobId} queued again` };
      }
      case 'cancel_embossing': {
        await embossing.cancelJob(ctx.pool, request.jobId, by);
        return { action: request.action, ok: true, message: `embossing job ${request.jobId} cancelled` };
      }
      case 'embossing_logs': {
        const messages = await embossing.jobMessages(ctx.pool, request.jobId);
        return {
          action: request.action,
          ok: true,
          message: `${messages.length} messages of embossing job ${request.jobId}`,
          data: {
            job_id: request.jobId,
            messages: messages.map((m) => ({
              direction: m.direction,
              machine_id: m.machine_id,
              channel: m.channel,
              result: m.result,
              payload: m.payload,
              created_at: m.created_at.toISOString(),
            })),
          },
        };
      }
      case 'move_to_past': {
        // A refusal (moved meanwhile, unknown product) throws and becomes the answer (refusalOf).
        await withTransaction(ctx.pool, (c) =>
          transition(c, requireShippedModel('trackopz-product'), {
            entityId: request.productId,
            action: 'move_to_past',
            reason: request.reason,
            actor: ctx.actor,
            source: request.source,
            flowVersion: ctx.flowVersion,
            at: ctx.now,
          }),
        );
        return { action: request.action, ok: true, message: `product ${request.productId} moved to past` };
      }
      case 'reactivate_product': {
        await withTransaction(ctx.pool, (c) =>
          transition(c, requireShippedModel('trackopz-product'), {
            entityId: request.productId,
            action: 'reactivate',
            reason: request.reason,
            actor: ctx.actor,
            source: 'workpanel',
            flowVersion: ctx.flowVersion,
            at: ctx.now,
          }),
        );
        return { action: request.action, ok: true, message: `product ${request.productId} is live again` };
      }
      case 'product_details': {
        const details = await workpanel.productDetails(ctx.pool, request.productId);
        if (!details)
          return { action: request.action, ok: false, message: `product ${request.productId} not found` };
        return {
          action: request.action,
          ok: true,
          message: `details of ${details.lifecycle.name}`,
          data: details,
        };
      }
      case 'record_finished': {
        const record = await workpanel.recordFinished(ctx.pool, {
          productId: request.productId,
          machineId: request.machineId,
          quantity: request.quantity,
          notes: request.notes,
          operatorId: ctx.actor,
          flowVersion: ctx.flowVersion,
          now: ctx.now,
        });
        return {
          action: request.action,
          ok: true,
          message: `${record.quantity} finished ${record.product} recorded on ${record.machine ?? record.machine_id}`,
          data: record,
        };
      }
      case 'recover_processing': {
        const job = await processing.resetJob(ctx.pool, request.jobId, {
          actor: ctx.actor,
          now: ctx.now,
          flowVersion: ctx.flowVersion,
        });
        ctx.services?.events.emit('processing', {
          type: 'job.reset',
          jobId: job.id,
          orderNumber: job.order_number,
        });
        return {
          action: request.action,
          ok: true,
          message: `processing job ${job.id} (${job.order_number}) reset: it runs again`,
        };
      }
      case 'processing_logs': {
        const logs = await processing.jobLogs(ctx.pool, request.jobId);
        if (!logs)
          return { action: request.action, ok: false, message: `processing job ${request.jobId} not found` };
        return {
          action: request.action,
          ok: true,
          message: `${logs.length} log rows of processing job ${request.jobId}`,
          data: {
            job_id: request.jobId,
            logs: logs.map((l) => ({
              level: l.level,
              category: l.category,
              stage: l.stage,
              message: l.message,
              error_code: l.errorCode,
              created_at: l.created_at.toISOString(),
            })),
          },
        };
      }
      case 'approve_design': {
        await engraving.approveDesign(ctx.pool, request.jobId, {
          decidedBy: ctx.actor,
          flowVersion: ctx.flowVersion,
          now: ctx.now,
        });
        ctx.services?.events.emit('engraving', { type: 'design_approved', job_id: request.jobId });
        return {
          action: request.action,
          ok: true,
          message: `design of engraving job ${request.jobId} approved`,
        };
      }
      case 'qa_pass':
      case 'qa_reengrave':
      case 'qa_escalate': {
        const { job, outcome, attempt } = await engraving.recordQa(
          ctx.pool,
          request.jobId,
          {
            passed: request.action === 'qa_pass',
            escalate: request.action === 'qa_escalate',
            inspector: ctx.actor,
            notes: request.notes,
          },
          { flowVersion: ctx.flowVersion, now: ctx.now },
        );
        ctx.services?.events.emit('engraving', {
          type: 'job.status',
          jobId: Number(job.id),
          status: job.status,
          at: job.updated_at,
        });
        if (outcome === 'escalate')
          ctx.services?.events.emit('alert', {
            name: 'engraving_job_escalated',
            severity: 'warning',
            jobId: Number(job.id),
            reason: job.escalation_reason,
            at: job.updated_at,
          });
        const said = {
          complete: `engraving job ${job.id} passed QA and is complete`,
          reengrave: `engraving job ${job.id} failed QA (attempt ${attempt}) and goes back to be re-engraved`,
          escalate: `engraving job ${job.id} failed QA (attempt ${attempt}) and is escalated to a manager`,
        }[outcome];
        return {
          action: request.action,
          ok: true,
          message: said,
          data: { job_id: job.id, outcome, attempt },
        };
      }
      case 'reject_design': {
        await engraving.rejectDesign(ctx.pool, request.jobId, {
          decidedBy: ctx.actor,
          feedback: request.feedback,
          flowVersion: ctx.flowVersion,
          now: ctx.now,
        });
        ctx.services?.events.emit('engraving', { type: 'design_rejected', job_id: request.jobId });
        return {
          action: request.action,
          ok: true,
          message: `design of engraving job ${request.jobId} rejected`,
        };
      }
    }
  }
}
