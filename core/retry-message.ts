// The message contract of the retry-backoff node, as pure functions: how a message records
// which attempt it is making (msg.retry) and what went wrong before (msg.attempts), so that
// the same message can go round a failing step several times and leave with its history.
import { FailureLike, RetryDecision } from './backoff';

/** msg.retry: set on every message the node sends to the wrapped step. */
export interface RetryState {
  /** Id of the retry-backoff node that owns the count (a message may pass several). */
  node: string;
  /** The attempt this message is making, 1 for the first. */
  attempt: number;
  maxAttempts: number;
}

/** One entry of msg.attempts: a failed attempt. */
export interface AttemptRecord {
  attempt: number;
  /** ISO time the failure reached the retry node. */
  at: string;
  error: { message: string; code?: string };
  /** Wait before the next attempt; absent on the last one. */
  delayMs?: number;
}

/** msg.deadLetter: why the message left on the dead-letter output. */
export interface DeadLetter {
  reason: 'non-retryable' | 'attempts-exhausted';
  at: string;
  attempts: number;
}

/** The parts of a Node-RED message this contract reads. */
export interface RetryEnvelope {
  error?: unknown;
  retry?: unknown;
  attempts?: unknown;
  [property: string]: unknown;
}

/** The failure a message carries (msg.error from a Catch node or set by the step), if any. */
export function failureOf(msg: RetryEnvelope): FailureLike | undefined {
  const error = msg.error;
  if (error === undefined || error === null || error === false) return undefined;
  if (typeof error === 'string') return { message: error };
  if (typeof error !== 'object') return { message: String(error) };
  const e = error as { message?: unknown; code?: unknown; retryable?: unknown };
  return {
    message: typeof e.message === 'string' ? e.message : JSON.stringify(error),
    code: typeof e.code === 'string' ? e.code : undefined,
    retryable: typeof e.retryable === 'boolean' ? e.retryable : undefined,
  };
}

/** The attempt that failed: the one msg.retry names if this node sent it, otherwise the first. */
export function failedAttempt(msg: RetryEnvelope, nodeId: string): number {
  const retry = msg.retry as Partial<RetryState> | undefined;
  if (retry && retry.node === nodeId && typeof retry.attempt === 'number' && retry.attempt >= 1) {
    return Math.floor(retry.attempt);
  }
  return 1;
}

/** The history so far, when msg.attempts was written by this node. */
export function historyOf(msg: RetryEnvelope, nodeId: string): AttemptRecord[] {
  const retry = msg.retry as Partial<RetryState> | undefined;
  if (!retry || retry.node !== nodeId || !Array.isArray(msg.attempts)) return [];
  return msg.attempts as AttemptRecord[];
}

export interface FailureOutcome {
  decision: RetryDecision;
  attempts: AttemptRecord[];
  /** msg.retry for the next attempt, when there is one. */
  retry?: RetryState;
  deadLetter?: DeadLetter;
}

/** What happens to a failed message, with the history and state it leaves with. */
export function afterFailure(
  msg: RetryEnvelope,
  nodeId: string,
  maxAttempts: number,
  decision: RetryDecision,
  failure: FailureLike,
  now: Date,
): FailureOutcome {
  const attempt = failedAttempt(msg, nodeId);
  const record: AttemptRecord = {
    attempt,
    at: now.toISOString(),
    error: failure.code
      ? { message: failure.message ?? '', code: failure.code }
      : { message: failure.message ?? '' },
  };
  if (decision.action === 'retry') record.delayMs = decision.delayMs;
  const attempts = [...historyOf(msg, nodeId), record];
  if (decision.action === 'retry') {
    return { decision, attempts, retry: { node: nodeId, attempt: decision.nextAttempt, maxAttempts } };
  }
  return { decision, attempts, deadLetter: { reason: decision.reason, at: record.at, attempts: attempt } };
}
