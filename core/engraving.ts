// The engraving process as pure rules: the order's schema, rush priority, the
// engraving-area check, the QA and machine-error decisions, the design timeout, the command
// an engraver gets and the metrics the dashboards show.
import type { JsonSchema } from './schema';

export type EngravingStatus =
  | 'queued'
  | 'designing'
  | 'pending_approval'
  | 'engraving'
  | 'qa'
  | 'complete'
  | 'blocked'
  | 'revision_requested'
  | 'escalated'
  | 'needs_attention'
  | 'cancelled';

/** States nothing leaves: an operator can cancel a job in any other. */
export const FINAL_STATUSES: readonly EngravingStatus[] = ['complete', 'cancelled'];

/** QA_FAILED: re-engrave while attempts < 3, then escalate to a manager. */
export const MAX_QA_ATTEMPTS = 3;
/** Machine errors a job may have before it is escalated instead of reassigned again. */
export const MAX_MACHINE_ERRORS = 3;
/** DESIGN_TIMEOUT: a design waiting this long is approved automatically. */
export const DEFAULT_DESIGN_TIMEOUT_MS = 24 * 60 * 60 * 1000;
export const RUSH_PRIORITY = 1;
export const STANDARD_PRIORITY = 5;
export const NO_INVENTORY = 'no_inventory';

/** An engraver that has not acknowledged (accepted) a job this long after it was sent never got it. */
export const ACCEPT_TIMEOUT_MS = 2 * 60 * 1000;
/** The least time an engraver has, after accepting or reporting progress, to report again. */
export const MIN_WORK_ALLOWANCE_MS = 15 * 60 * 1000;

/**
 * How long an engraver that accepted a job (or reported progress on it) may stay silent: twice
 * the job's estimated engraving time, and never less than MIN_WORK_ALLOWANCE_MS.
 */
export function workAllowanceMs(estimatedSeconds: number | null | undefined): number {
  return Math.max(MIN_WORK_ALLOWANCE_MS, 2 * 1000 * (estimatedSeconds ?? 0));
}

function clockTime(at: Date): string {
  return `${at.toISOString().slice(11, 16)} UTC`;
}

function duration(ms: number): string {
  const minutes = Math.round(ms / 60000);
  return minutes >= 1 ? `${minutes} min` : `${Math.round(ms / 1000)} s`;
}

/** Why a job needs a person after the engraver that accepted it went silent past its deadline. */
export function silentEngraverReason(
  machineId: string,
  acceptedAt: Date,
  lastHeardAt: Date,
  now: Date,
): string {
  return (
    `${machineId} accepted the job at ${clockTime(acceptedAt)} and has not reported since ${clockTime(lastHeardAt)} ` +
    `(${duration(now.getTime() - lastHeardAt.getTime())}); check the engraver and the item, then retry or cancel the job`
  );
}

/** Why a job went back to the queue: its engraver never acknowledged the command. */
export function unacknowledgedReason(machineId: string, waitedMs: number): string {
  return `${machineId} did not acknowledge the job within ${duration(waitedMs)}; it goes to the next free engraver`;
}

/** Why a job needs a person after no engraver acknowledged it, time after time. */
export function neverAcknowledgedReason(times: number): string {
  return `no engraver acknowledged the job (${times} times); check that the engravers are on and connected, then retry or cancel the job`;
}

/**
 * Why a job needs a person after its engraver reported a failure, in plain words: the machine's
 * own message when it gives one (response.error, .message or .reason), never a JSON dump.
 */
export function machineFailureReason(machineId: string, response?: Record<string, unknown>): string {
  const said = [response?.error, response?.message, response?.reason].find(
    (v): v is string => typeof v === 'string' && v.trim().length > 0,
  );
  const words = said ? said.trim().slice(0, 300) : 'no reason given';
  return `${machineId} reported a failure: ${words}; check the engraver and the item, then retry or cancel the job`;
}

/** The body of POST /api/engraving-jobs: the order message's schema without job_id (the server assigns it). */
export const ENGRAVING_ORDER_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['customer_id', 'item_id', 'due_date'],
  additionalProperties: false,
  properties: {
    job_id: { type: 'string', maxLength: 200 },
    customer_id: { type: 'string', minLength: 1, maxLength: 200 },
    item_id: { type: 'string', minLength: 1, maxLength: 200 },
    text: { type: 'array', items: { type: 'string', maxLength: 500 }, maxItems: 100, default: [] },
    artwork_url: { type: 'string', minLength: 1, maxLength: 2000 },
    font: { type: 'string', maxLength: 200 },
    rush: { type: 'boolean', default: false },
    due_date: { type: 'string', anyOf: [{ format: 'date-time' }, { format: 'date' }] },
  },
};

export interface EngravingOrder {
  job_id?: string;
  customer_id: string;
  item_id: string;
  text: string[];
  artwork_url?: string;
  font?: string;
  rush: boolean;
  due_date: string;
}

export const QA_RESULT_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['passed'],
  properties: {
    passed: { type: 'boolean' },
    notes: { type: 'string', maxLength: 2000 },
  },
};

export const STOCK_UPDATE_SCHEMA: JsonSchema = {
  type: 'object',
  minProperties: 1,
  maxProperties: 1,
  properties: {
    add: { type: 'integer', minimum: 1, maximum: 1000000 },
    stock_available: { type: 'integer', minimum: 0, maximum: 1000000 },
  },
};

/** POST /api/engraving-jobs/:id/cancel: why, in the operator's words (optional). */
export const CANCEL_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    reason: { type: 'string', minLength: 1, maxLength: 500 },
  },
};

/** POST /api/engraving-jobs/:id/design: the revised design after a rejection. */
export const REVISED_DESIGN_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    artwork_url: { type: 'string', minLength: 1, maxLength: 2000 },
    text: { type: 'array', items: { type: 'string', maxLength: 500 }, maxItems: 100 },
    font: { type: 'string', maxLength: 200 },
    notes: { type: 'string', maxLength: 2000 },
  },
};

export const DESIGN_DECISION_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    feedback: { type: 'string', maxLength: 2000 },
  },
};

/** sendToMachine: rush 1, others 5; the queue serves priority, then due date, then age. */
export function priorityOf(rush: boolean): number {
  return rush ? RUSH_PRIORITY : STANDARD_PRIORITY;
}

/** validateJob's engraving-area check: why the text does not fit, or undefined. */
export function textProblem(text: readonly string[], maxLines: number): string | undefined {
  if (text.length > maxLines)
    return `text has ${text.length} lines; the item's engraving area holds at most ${maxLines}`;
  return undefined;
}

export type QaOutcome = 'complete' | 'reengrave' | 'escalate';

/** After QA attempt number `attempt`. */
export function qaOutcome(attempt: number, passed: boolean): QaOutcome {
  if (passed) return 'complete';
  return attempt < MAX_QA_ATTEMPTS ? 'reengrave' : 'escalate';
}

/** After the job's `errors`-th machine error: another engraver, or a manager. */
export function machineErrorOutcome(errors: number): 'reassign' | 'escalate' {
  return errors < MAX_MACHINE_ERRORS ? 'reassign' : 'escalate';
}

export interface EngraveCommand {
  type: 'engrave';
  job_id: number;
  item_id: string;
  text: string[];
  artwork_url: string | null;
  font: string | null;
  priority: number;
  /** 1 for the first engraving, more for a re-engrave after QA or a reassignment. */
  attempt: number;
  /** calculateEngraveTime for this engraver, in seconds. */
  estimated_time: number;
}

/** Sent to an engraver whose settings say it understands it: stop this job, do not start it. */
export interface CancelCommand {
  type: 'cancel';
  job_id: number;
  reason: string;
}

export interface EngravingMetrics {
  jobs_in_queue: number;
  jobs_processing: number;
  jobs_completed_today: number;
  /** Mean minutes from order to complete, over today's completed jobs. */
  average_completion_minutes: number | null;
  /** Passed QA attempts over all QA attempts, 0–100; null before the first. */
  qa_pass_rate: number | null;
  rush_order_percentage: number | null;
}

/** The machine event a simulator or a real engraver publishes on <p>/machines/<id>/event. */
export interface MachineEvent {
  job_id: number;
  status: 'accepted' | 'in_progress' | 'completed' | 'failed';
  response?: Record<string, unknown>;
}

export function parseMachineEvent(payload: unknown): MachineEvent | undefined {
  let value = payload;
  if (typeof value === 'string' || Buffer.isBuffer(value)) {
    try {
      value = JSON.parse(value.toString());
    } catch {
      return undefined;
    }
  }
  if (!value || typeof value !== 'object') return undefined;
  const v = value as { job_id?: unknown; status?: unknown; response?: unknown };
  const jobId = typeof v.job_id === 'string' && /^[0-9]{1,18}$/.test(v.job_id) ? Number(v.job_id) : v.job_id;
  if (typeof jobId !== 'number' || !Number.isInteger(jobId) || jobId <= 0) return undefined;
  if (
    v.status !== 'accepted' &&
    v.status !== 'in_progress' &&
    v.status !== 'completed' &&
    v.status !== 'failed'
  )
    return undefined;
  const response =
    v.response && typeof v.response === 'object' ? (v.response as Record<string, unknown>) : undefined;
  return { job_id: jobId, status: v.status, ...(response ? { response } : {}) };
}
