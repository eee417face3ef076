// The steps of the engraving process, one function per node of flows/engraving.json: the HTTP
// routes (validated with ajv, answered as {"success", "data"|"error"}), the engrave command,
// engraver events, the engravers' deadlines and the design timeout. Each returns what to answer,
// which events to emit, and the messages for the next steps of the flow. See docs/engraving.md.
import type { NodeMessage } from 'node-red';
import type { Pool } from 'pg';
import {
  CANCEL_SCHEMA,
  DESIGN_DECISION_SCHEMA,
  ENGRAVING_ORDER_SCHEMA,
  type EngravingMetrics,
  type EngravingOrder,
  QA_RESULT_SCHEMA,
  REVISED_DESIGN_SCHEMA,
  STOCK_UPDATE_SCHEMA,
  parseMachineEvent,
} from '../../core/engraving';
import { previewSvg } from '../../core/design-preview';
import { FloorflowError } from '../../core/errors';
import { type JsonSchema, validate } from '../../core/schema';
import { parseMachineTopic } from '../../core/topics';
import {
  type ClaimedEngraving,
  type EngraverCommand,
  type EngravingJobRow,
  type MachineEventResult,
  applyMachineEvent,
  approveDesign,
  autoApproveDesigns,
  cancelEngravingJob,
  createEngravingJob,
  engravingMetrics,
  engravingQueue,
  expireEngravingDeadlines,
  getEngravingJob,
  recordQa,
  rejectDesign,
  retryEngravingJob,
  statusCounts,
  submitRevisedDesign,
  updateStock,
} from '../../store/engraving';
import { recordWithoutEffect, type LedgerEntry } from '../../store/ledger';
import { type HttpRequestPart, requestActor } from './http-api';

export interface StepContext {
  pool: Pool;
  now: Date;
  flowVersion?: string;
}

/** Something for services.events: `engraving` (job changes, metrics) or `alert`. */
export interface StepEvent {
  channel: 'engraving' | 'alert';
  body: Record<string, unknown>;
}

export interface RouteAnswer {
  statusCode: number;
  body: Record<string, unknown>;
  events: StepEvent[];
  /** An answer that is not JSON (the design preview): its content type; the body is `text`. */
  contentType?: string;
  text?: string;
  /** Messages for the node's outputs after the answer (output 2 on), one entry per output. */
  next?: Array<NodeMessage | NodeMessage[] | null>;
}

function parsed<T>(schema: JsonSchema, value: unknown): T {
  // A copy: ajv fills defaults in place, and the request body stays as it arrived.
  const result = validate<T>(schema, value && typeof value === 'object' ? structuredClone(value) : value);
  if (!result.ok) throw new FloorflowError('FF_INPUT_INVALID', result.error ?? 'invalid body');
  return result.value as T;
}

/**
 * A request that carries no body (curl -X POST, a dashboard button) is an empty object: an
 * absent body, an empty string (what Node-RED's text parser gives for an empty text/plain
 * body) or an empty buffer all mean "nothing to add".
 */
export function bodyOrEmpty(body: unknown): unknown {
  if (body === undefined || body === null) return {};
  if (typeof body === 'string' && body.trim() === '') return {};
  if (Buffer.isBuffer(body) && body.length === 0) return {};
  return body;
}

/** The job as GET /api/engraving-jobs/:id shows it. */
export function jobView(job: EngravingJobRow): Record<string, unknown> {
  return {
    id: Number(job.id),
    customer_id: job.customer_id,
    item_id: job.item_id,
    text: job.text,
    artwork_url: job.artwork_url,
    rush: job.rush,
    priority: job.priority,
    due_date: job.due_date,
    status: job.status,
    reason: job.attention_reason ?? job.cancel_reason ?? job.block_reason ?? job.escalation_reason,
    machine_id: job.machine_id,
    deadline_at: job.deadline_at,
    estimated_seconds: job.estimated_seconds,
    retry_count: Math.max(0, job.qa_attempts - (job.status === 'complete' ? 1 : 0)),
    qa_attempts: job.qa_attempts,
    machine_errors: job.machine_errors,
    created_at: job.created_at,
    updated_at: job.updated_at,
    completed_at: job.completed_at,
  };
}

function changed(job: EngravingJobRow): StepEvent {
  return {
    channel: 'engraving',
    body: { type: 'job.status', jobId: Number(job.id), status: job.status, at: job.updated_at },
  };
}

/** What a follow-on message (jobMessage) carries. */
export interface JobMessagePayload {
  jobId: number;
  status: string;
  machineId: string | null;
  reason: string | null;
  at: Date;
}

/**
 * A job a person must decide on (escalated after QA, or needing attention after its engraver
 * failed or went silent): an alert the floor pages show, with the reason in plain words.
 */
export function personNeededAlert(job: JobMessagePayload): StepEvent {
  if (job.status === 'escalated')
    return {
      channel: 'alert',
      body: {
        name: 'engraving_job_escalated',
        severity: 'warning',
        jobId: job.jobId,
        reason: job.reason,
        at: job.at,
      },
    };
  return {
    channel: 'alert',
    body: {
      name: 'engraving_job_needs_attention',
      severity: 'warning',
      jobId: job.jobId,
      machineId: job.machineId,
      reason: job.reason,
      at: job.at,
    },
  };
}

export async function metricsEvent(
  ctx: StepContext,
): Promise<{ metrics: EngravingMetrics; event: StepEvent }> {
  const metrics = await engravingMetrics(ctx.pool, ctx.now);
  return { metrics, event: { channel: 'engraving', body: { type: 'metrics', at: ctx.now, ...metrics } } };
}

/** A follow-on message for the next step of the process: the job, small, never the request. */
export function jobMessage(job: EngravingJobRow, topic: string): NodeMessage {
  return {
    topic,
    payload: {
      jobId: Number(job.id),
      status: job.status,
      machineId: job.machine_id,
      reason: job.attention_reason ?? job.escalation_reason ?? job.block_reason ?? job.cancel_reason,
      at: job.updated_at,
    },
  };
}

const noteOf = (ctx: StepContext) => ({ flowVersion: ctx.flowVersion, now: ctx.now });

/**
 * An order comes in: the item and text are checked, one unit of stock is reserved, and the job
 * is queued, waits for its design to be approved, or waits for stock. A queued job goes on
 * (output 2) to the engraver queue.
 */
export async function placeOrder(ctx: StepContext, request: HttpRequestPart): Promise<RouteAnswer> {
  const actor = requestActor(request);
  const order = parsed<EngravingOrder>(ENGRAVING_ORDER_SCHEMA, request.body);
  const key = request.headers['idempotency-key'];
  const { job, created } = await createEngravingJob(ctx.pool, order, {
    ...noteOf(ctx),
    actor,
    idempotencyKey: typeof key === 'string' && key ? key : undefined,
  });
  return {
    statusCode: created ? 202 : 200,
    body: { success: true, data: jobView(job) },
    events: created ? [changed(job)] : [],
    next: [created && job.status === 'queued' ? jobMessage(job, 'engraving/queued') : null],
  };
}

/** Stock arrives for an item: its jobs waiting for stock resume (output 2, one message each). */
export async function stockArrives(ctx: StepContext, request: HttpRequestPart): Promise<RouteAnswer> {
  const actor = requestActor(request);
  const change = parsed<{ add?: number; stock_available?: number }>(STOCK_UPDATE_SCHEMA, request.body);
  const itemId = request.params.itemId ?? '';
  const { stock_available, resumed } = await updateStock(ctx.pool, itemId, change, { ...noteOf(ctx), actor });
  return {
    statusCode: 200,
    body: {
      success: true,
      data: {
        item_id: itemId,
        stock_available,
        resumed: resumed.map((j) => ({ id: Number(j.id), status: j.status })),
      },
    },
    events: resumed.map(changed),
    next: [resumed.filter((j) => j.status === 'queued').map((j) => jobMessage(j, 'engraving/queued'))],
  };
}

/** The customer (or the person logged in) approves the design: the job goes to the queue. */
export async function approveDesignStep(ctx: StepContext, request: HttpRequestPart): Promise<RouteAnswer> {
  // The decision is the logged-in person's (or the API token's), never a name in the body.
  const decidedBy = requestActor(request);
  parsed<{ feedback?: string }>(DESIGN_DECISION_SCHEMA, bodyOrEmpty(request.body));
  const job = await approveDesign(ctx.pool, request.params.id ?? '', { ...noteOf(ctx), decidedBy });
  return {
    statusCode: 200,
    body: { success: true, data: jobView(job) },
    events: [changed(job)],
    next: [jobMessage(job, 'engraving/queued')],
  };
}

/** The design is rejected: the job waits for a revised design, its stock goes back. */
export async function rejectDesignStep(ctx: StepContext, request: HttpRequestPart): Promise<RouteAnswer> {
  const decidedBy = requestActor(request);
  const decision = parsed<{ feedback?: string }>(DESIGN_DECISION_SCHEMA, bodyOrEmpty(request.body));
  const job = await rejectDesign(ctx.pool, request.params.id ?? '', {
    ...noteOf(ctx),
    decidedBy,
    feedback: decision.feedback,
  });
  return { statusCode: 200, body: { success: true, data: jobView(job) }, events: [changed(job)] };
}

/** A revised design goes back for approval (or waits for stock). */
export async function reviseDesignStep(ctx: StepContext, request: HttpRequestPart): Promise<RouteAnswer> {
  const actor = requestActor(request);
  const revision = parsed<{ artwork_url?: string; text?: string[]; font?: string; notes?: string }>(
    REVISED_DESIGN_SCHEMA,
    bodyOrEmpty(request.body),
  );
  const job = await submitRevisedDesign(ctx.pool, request.params.id ?? '', revision, {
    ...noteOf(ctx),
    actor,
  });
  return { statusCode: 200, body: { success: true, data: jobView(job) }, events: [changed(job)] };
}

/** An operator cancels a job; the engraver holding it gets a cancel command (output 2). */
export async function cancelJobStep(
  ctx: StepContext,
  request: HttpRequestPart,
  topicPrefix: string,
): Promise<RouteAnswer> {
  const actor = requestActor(request);
  const body = parsed<{ reason?: string }>(CANCEL_SCHEMA, bodyOrEmpty(request.body));
  const { job, commands } = await cancelEngravingJob(ctx.pool, request.params.id ?? '', {
    ...noteOf(ctx),
    actor,
    reason: body.reason,
  });
  return {
    statusCode: 200,
    body: { success: true, data: { ...jobView(job), cancel_sent_to: commands.map((c) => c.machine_id) } },
    events: [changed(job)],
    next: [commands.map((c) => engraverCommandMessage(topicPrefix, c))],
  };
}

/** An operator sends a job that needs attention back to the engraver queue (output 2). */
export async function retryJobStep(ctx: StepContext, request: HttpRequestPart): Promise<RouteAnswer> {
  const actor = requestActor(request);
  parsed<Record<string, never>>({ type: 'object', additionalProperties: false }, bodyOrEmpty(request.body));
  const job = await retryEngravingJob(ctx.pool, request.params.id ?? '', { ...noteOf(ctx), actor });
  return {
    statusCode: 200,
    body: { success: true, data: jobView(job) },
    events: [changed(job)],
    next: [jobMessage(job, 'engraving/queued')],
  };
}

/**
 * The QA inspector's result, the decision of the process: a pass completes the job, a failure
 * goes back to the engraver queue to be re-engraved (output 2), the last allowed failure goes
 * to a manager (output 3).
 */
export async function qualityCheck(ctx: StepContext, request: HttpRequestPart): Promise<RouteAnswer> {
  const inspector = requestActor(request);
  const result = parsed<{ passed: boolean; notes?: string }>(QA_RESULT_SCHEMA, request.body);
  const { job, outcome, attempt } = await recordQa(
    ctx.pool,
    request.params.id ?? '',
    { ...result, inspector },
    noteOf(ctx),
  );
  return {
    statusCode: 200,
    body: { success: true, data: { ...jobView(job), qa_outcome: outcome, qa_attempt: attempt } },
    events: [changed(job)],
    next: [
      outcome === 'reengrave' ? jobMessage(job, 'engraving/re-engrave') : null,
      outcome === 'escalate' ? jobMessage(job, 'engraving/escalated') : null,
    ],
  };
}

/**
 * The read side of one job and of the queue, by what the request asks: an id and a path ending
 * in `.svg` is the design preview, an id the job, no id the queue.
 */
export async function lookUp(ctx: StepContext, request: HttpRequestPart, path: string): Promise<RouteAnswer> {
  const id = request.params.id;
  if (id === undefined) {
    const [queue, counts] = await Promise.all([engravingQueue(ctx.pool), statusCounts(ctx.pool)]);
    return {
      statusCode: 200,
      body: {
        success: true,
        data: { queue: queue.map((q) => ({ ...q, id: Number(q.id) })), depth: queue.length, counts },
      },
      events: [],
    };
  }
  const found = await getEngravingJob(ctx.pool, id);
  if (!found) throw new FloorflowError('FF_NOT_FOUND', `engraving job ${id} not found`);
  if (path.endsWith('.svg')) {
    const item = await ctx.pool.query<{ name: string }>(`SELECT name FROM engraving.items WHERE id = $1`, [
      found.job.item_id,
    ]);
    return {
      statusCode: 200,
      body: {},
      events: [],
      contentType: 'image/svg+xml; charset=utf-8',
      text: previewSvg({
        itemName: item.rows[0]?.name ?? found.job.item_id,
        text: found.job.text,
        font: found.job.font,
        artworkUrl: found.job.artwork_url,
      }),
    };
  }
  return {
    statusCode: 200,
    body: {
      success: true,
      data: {
        ...jobView(found.job),
        queue_position: found.queuePosition,
        design: found.design,
        qa_results: found.qa,
      },
    },
    events: [],
  };
}

/** The MQTT message (for an `mqtt out` node) for a command to an engraver that is not a job. */
export function engraverCommandMessage(
  topicPrefix: string,
  command: EngraverCommand,
): { topic: string; payload: string; qos: 1 } {
  return {
    topic: `${topicPrefix}/machines/${command.machine_id}/cmd`,
    payload: JSON.stringify(command.command),
    qos: 1,
  };
}

/** The MQTT message (for an `mqtt out` node) that sends a claimed job to its engraver. */
export function commandMessage(
  topicPrefix: string,
  claimed: ClaimedEngraving,
): { topic: string; payload: string; qos: 1 } {
  return {
    topic: `${topicPrefix}/machines/${claimed.machine_id}/cmd`,
    payload: JSON.stringify(claimed.command),
    qos: 1,
  };
}

/** A message from `<p>/machines/<id>/event`; the machine is the topic's, never the payload's. */
export async function handleMachineEvent(
  ctx: StepContext,
  topicPrefix: string,
  topic: string,
  payload: unknown,
  /** The inbox record the event came from (machine-events node): applied once, through the ledger. */
  record?: LedgerEntry,
): Promise<{ result: MachineEventResult; events: StepEvent[] }> {
  const ignored = async (reason: string) => {
    if (record) await recordWithoutEffect(ctx.pool, record, 'skipped', reason, ctx);
    return { result: { result: 'ignored' as const, reason }, events: [] };
  };
  const parsedTopic = parseMachineTopic(topicPrefix, topic);
  if (!parsedTopic || parsedTopic.kind !== 'event') return ignored(`not an event topic: ${topic}`);
  const event = parseMachineEvent(payload);
  if (!event) return ignored('not a machine event ({job_id, status})');
  const result = await applyMachineEvent(ctx.pool, parsedTopic.machineId, event, {
    flowVersion: ctx.flowVersion,
    now: ctx.now,
    record,
  });
  const events: StepEvent[] = [];
  if (result.result === 'qa' || result.result === 'attention') events.push(changed(result.job));
  return { result, events };
}

/**
 * The engravers' deadlines: a job whose engraver did not acknowledge it goes back to the queue
 * for another engraver (and that engraver is told to cancel it where it understands a cancel);
 * a job whose engraver went silent needs a person.
 */
export async function deadlineRound(ctx: StepContext): Promise<{
  /** Jobs back in the queue after their engraver did not acknowledge them. */
  requeued: string[];
  /** Jobs that now need a person. */
  attention: EngravingJobRow[];
  events: StepEvent[];
  commands: EngraverCommand[];
}> {
  const expired = await expireEngravingDeadlines(ctx.pool, {
    flowVersion: ctx.flowVersion,
    now: ctx.now,
  });
  const events: StepEvent[] = expired.attention.map(changed);
  for (const id of expired.requeued)
    events.push({
      channel: 'engraving',
      body: {
        type: 'job.status',
        jobId: Number(id),
        status: 'queued',
        reason: 'engraver did not acknowledge',
      },
    });
  return { requeued: expired.requeued, attention: expired.attention, events, commands: expired.commands };
}

/** DESIGN_TIMEOUT: designs waiting longer than `designTimeoutMs` are approved, the jobs queued. */
export async function designTimeoutRound(
  ctx: StepContext,
  designTimeoutMs: number,
): Promise<{ autoApproved: string[]; events: StepEvent[] }> {
  const autoApproved = await autoApproveDesigns(ctx.pool, {
    timeoutMs: designTimeoutMs,
    flowVersion: ctx.flowVersion,
    now: ctx.now,
  });
  const events: StepEvent[] = autoApproved.map((id) => ({
    channel: 'engraving',
    body: { type: 'job.status', jobId: Number(id), status: 'queued', reason: 'design auto-approved' },
  }));
  return { autoApproved, events };
}
