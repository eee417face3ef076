// Retry policies as pure functions: how long to wait before the next attempt, and whether a
// failure is worth another attempt at all. No timers here; the retry-backoff node and the
// workers schedule with the injected clock, tests call these directly.

/** Codes no retry can fix (bad input, a wrong state, a missing record, a refused caller). */
export const DEFAULT_NON_RETRYABLE_CODES: readonly string[] = [
  'FF_CONFIG_INVALID',
  'FF_INPUT_INVALID',
  'FF_SCAN_UNPARSEABLE',
  'FF_NOT_FOUND',
  'FF_CONFLICT',
  'FF_TRANSITION_INVALID',
  'FF_UNAUTHORIZED',
  'FF_FORBIDDEN',
];

interface PolicyCommon {
  /** Attempts in all, the first included: 4 = one try and three retries. */
  maxAttempts: number;
  /** Error codes that go straight to dead letter. */
  nonRetryableCodes?: readonly string[];
}

/** initialMs × factor^(retry-1), capped at maxMs; jitter 0..1 takes up to that share off at random. */
export interface ExponentialPolicy extends PolicyCommon {
  kind: 'exponential';
  initialMs: number;
  factor: number;
  maxMs: number;
  jitter: number;
}

/** An explicit schedule, e.g. [5000, 15000, 60000] for processing stages; the last delay repeats if attempts remain. */
export interface ListPolicy extends PolicyCommon {
  kind: 'list';
  delaysMs: readonly number[];
}

export type BackoffPolicy = ExponentialPolicy | ListPolicy;

/** A processing stage: attempt 1 at once, then after 5 s, 15 s and 60 s; after that the job fails. */
export const STAGE_RETRY_POLICY: ListPolicy = {
  kind: 'list',
  delaysMs: [5000, 15000, 60000],
  maxAttempts: 4,
};

/** What a failure looks like to a policy: a FloorflowError, a Catch node's msg.error, or anything thrown. */
export interface FailureLike {
  message?: string;
  code?: string;
  retryable?: boolean;
}

export type RetryDecision =
  | { action: 'retry'; delayMs: number; nextAttempt: number }
  | { action: 'dead-letter'; reason: 'non-retryable' | 'attempts-exhausted' };

/** Why a policy cannot be used, or undefined when it is sound. */
export function checkPolicy(policy: BackoffPolicy): string | undefined {
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1)
    return 'maxAttempts must be a whole number of at least 1';
  if (policy.kind === 'list') {
    if (policy.delaysMs.length === 0) return 'delaysMs needs at least one delay';
    if (policy.delaysMs.some((d) => !Number.isFinite(d) || d < 0))
      return 'delaysMs must be delays of 0 ms or more';
    return undefined;
  }
  if (!Number.isFinite(policy.initialMs) || policy.initialMs < 0) return 'initialMs must be 0 or more';
  if (!Number.isFinite(policy.factor) || policy.factor < 1) return 'factor must be 1 or more';
  if (!Number.isFinite(policy.maxMs) || policy.maxMs < policy.initialMs)
    return 'maxMs must be at least initialMs';
  if (!Number.isFinite(policy.jitter) || policy.jitter < 0 || policy.jitter > 1)
    return 'jitter must be from 0 to 1';
  return undefined;
}

/**
 * The wait after failed attempt number `attempt` (1 = the first try failed), before the next.
 * `random` returns a number in [0, 1); it only matters for exponential jitter.
 */
export function nextDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const retry = Math.max(1, Math.floor(attempt));
  if (policy.kind === 'list') {
    return policy.delaysMs[Math.min(retry, policy.delaysMs.length) - 1];
  }
  // The power overflows to Infinity after enough attempts; the cap must hold then too.
  const exponent = retry - 1;
  const raw = policy.factor === 1 ? policy.initialMs : policy.initialMs * Math.pow(policy.factor, exponent);
  const base = Math.min(policy.maxMs, Number.isFinite(raw) ? raw : policy.maxMs);
  if (policy.jitter === 0) return Math.round(base);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(base * (1 - policy.jitter * r));
}

export function isRetryable(policy: BackoffPolicy, error: FailureLike | undefined): boolean {
  if (!error) return true;
  if (error.retryable === false) return false;
  if (error.retryable === true) return true;
  const codes = policy.nonRetryableCodes ?? DEFAULT_NON_RETRYABLE_CODES;
  return !(error.code !== undefined && codes.includes(error.code));
}

/** After failed attempt number `attempt`: retry after a delay, or give the message up. */
export function decide(
  policy: BackoffPolicy,
  attempt: number,
  error: FailureLike | undefined,
  random: () => number = Math.random,
): RetryDecision {
  if (!isRetryable(policy, error)) return { action: 'dead-letter', reason: 'non-retryable' };
  if (attempt >= policy.maxAttempts) return { action: 'dead-letter', reason: 'attempts-exhausted' };
  return { action: 'retry', delayMs: nextDelay(policy, attempt, random), nextAttempt: attempt + 1 };
}

/** A policy as the retry-backoff node's editor stores it: numbers may arrive as strings, lists as "5000, 15000". */
export interface PolicySettings {
  policy: 'exponential' | 'list';
  initialMs?: number | string;
  factor?: number | string;
  maxMs?: number | string;
  jitter?: number | string;
  delaysMs?: string | number[];
  maxAttempts?: number | string;
  nonRetryableCodes?: string | string[];
}

function listOf(value: string | readonly (string | number)[] | undefined): string[] {
  if (value === undefined) return [];
  const items = typeof value === 'string' ? value.split(/[\s,]+/) : value.map(String);
  return items.map((s) => s.trim()).filter((s) => s !== '');
}

/** The policy the settings describe, or the reason they describe none. */
export function policyFromSettings(settings: PolicySettings): BackoffPolicy | { error: string } {
  const codes = listOf(settings.nonRetryableCodes);
  const nonRetryableCodes = codes.length > 0 ? codes : undefined;
  let policy: BackoffPolicy;
  if (settings.policy === 'list') {
    const delaysMs = listOf(settings.delaysMs).map(Number);
    const maxAttempts =
      settings.maxAttempts === undefined || settings.maxAttempts === ''
        ? delaysMs.length + 1
        : Number(settings.maxAttempts);
    policy = { kind: 'list', delaysMs, maxAttempts, nonRetryableCodes };
  } else {
    policy = {
      kind: 'exponential',
      initialMs: Number(settings.initialMs ?? 1000),
      factor: Number(settings.factor ?? 2),
      maxMs: Number(settings.maxMs ?? 60000),
      jitter: Number(settings.jitter ?? 0),
      maxAttempts: Number(settings.maxAttempts ?? 5),
      nonRetryableCodes,
    };
  }
  const problem = checkPolicy(policy);
  return problem ? { error: problem } : policy;
}
