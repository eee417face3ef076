import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BackoffPolicy,
  ExponentialPolicy,
  STAGE_RETRY_POLICY,
  checkPolicy,
  decide,
  nextDelay,
} from '../../core/backoff';
import { FloorflowError } from '../../core/errors';

const exponential: ExponentialPolicy = {
  kind: 'exponential',
  initialMs: 1000,
  factor: 2,
  maxMs: 30000,
  jitter: 0,
  maxAttempts: 5,
};

const arbitraryExponential = fc
  .record({
    initialMs: fc.integer({ min: 0, max: 60000 }),
    factor: fc.double({ min: 1, max: 10, noNaN: true }),
    extraMs: fc.integer({ min: 0, max: 600000 }),
    jitter: fc.double({ min: 0, max: 1, noNaN: true }),
    maxAttempts: fc.integer({ min: 1, max: 50 }),
  })
  .map((p): ExponentialPolicy => ({
    kind: 'exponential',
    initialMs: p.initialMs,
    factor: p.factor,
    maxMs: p.initialMs + p.extraMs,
    jitter: p.jitter,
    maxAttempts: p.maxAttempts,
  }));

const arbitraryList = fc
  .record({
    delaysMs: fc.array(fc.integer({ min: 0, max: 600000 }), { minLength: 1, maxLength: 8 }),
    maxAttempts: fc.integer({ min: 1, max: 20 }),
  })
  .map((p): BackoffPolicy => ({ kind: 'list', ...p }));

const arbitraryPolicy = fc.oneof(arbitraryExponential, arbitraryList);
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

function maxOf(policy: BackoffPolicy): number {
  return policy.kind === 'list' ? Math.max(...policy.delaysMs) : policy.maxMs;
}

describe('backoff policy', () => {
  it("a processing stage's list waits 5 s, 15 s and 60 s, then gives up after the fourth attempt", () => {
    const delays = [1, 2, 3].map((attempt) => decide(STAGE_RETRY_POLICY, attempt, new Error('machine busy')));
    assert.deepEqual(delays, [
      { action: 'retry', delayMs: 5000, nextAttempt: 2 },
      { action: 'retry', delayMs: 15000, nextAttempt: 3 },
      { action: 'retry', delayMs: 60000, nextAttempt: 4 },
    ]);
    assert.deepEqual(decide(STAGE_RETRY_POLICY, 4, new Error('machine busy')), {
      action: 'dead-letter',
      reason: 'attempts-exhausted',
    });
  });

  it('a list shorter than the attempts repeats its last delay', () => {
    const policy: BackoffPolicy = { kind: 'list', delaysMs: [100, 200], maxAttempts: 6 };
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((a) => nextDelay(policy, a)),
      [100, 200, 200, 200, 200],
    );
  });

  it('exponential delays double from the initial delay up to the cap', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((a) => nextDelay(exponential, a)),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000],
    );
  });

  it('jitter takes at most its share off the delay', () => {
    const jittered = { ...exponential, jitter: 0.5 };
    assert.equal(
      nextDelay(jittered, 3, () => 0),
      4000,
    );
    assert.equal(
      nextDelay(jittered, 3, () => 0.999999),
      2000,
    );
  });

  it('an error marked non-retryable goes straight to dead letter', () => {
    const conflict = new FloorflowError('FF_TRANSITION_INVALID', 'job is completed');
    assert.deepEqual(decide(exponential, 1, conflict), { action: 'dead-letter', reason: 'non-retryable' });
    assert.deepEqual(decide(exponential, 1, { message: 'x', retryable: false }), {
      action: 'dead-letter',
      reason: 'non-retryable',
    });
  });

  it('a Catch node error whose code is listed as non-retryable goes to dead letter, others retry', () => {
    const policy = { ...exponential, nonRetryableCodes: ['E_BAD_PLATE'] };
    assert.equal(decide(policy, 1, { message: 'bad', code: 'E_BAD_PLATE' }).action, 'dead-letter');
    assert.equal(decide(policy, 1, { message: 'x', code: 'FF_INPUT_INVALID' }).action, 'retry');
    assert.equal(decide(exponential, 1, { message: 'x', code: 'FF_INPUT_INVALID' }).action, 'dead-letter');
  });

  it('a retryable FloorflowError such as a machine timeout is retried', () => {
    const timeout = new FloorflowError('FF_MACHINE_TIMEOUT', 'no answer', { retryable: true });
    assert.equal(decide(exponential, 1, timeout).action, 'retry');
  });

  it('rejects policies that cannot work', () => {
    assert.match(checkPolicy({ ...exponential, factor: 0.5 }) ?? '', /factor/);
    assert.match(checkPolicy({ ...exponential, maxMs: 10 }) ?? '', /maxMs/);
    assert.match(checkPolicy({ kind: 'list', delaysMs: [], maxAttempts: 2 }) ?? '', /delaysMs/);
    assert.match(checkPolicy({ ...exponential, maxAttempts: 0 }) ?? '', /maxAttempts/);
    assert.equal(checkPolicy(exponential), undefined);
  });

  it('property: no delay exceeds the policy maximum or goes below zero', () => {
    fc.assert(
      fc.property(arbitraryPolicy, fc.integer({ min: 1, max: 2000 }), unit, (policy, attempt, r) => {
        const delay = nextDelay(policy, attempt, () => r);
        return delay >= 0 && delay <= maxOf(policy);
      }),
    );
  });

  it('property: without jitter, exponential delays never shrink from one attempt to the next', () => {
    fc.assert(
      fc.property(
        arbitraryExponential.map((p) => ({ ...p, jitter: 0 })),
        fc.integer({ min: 1, max: 2000 }),
        (policy, attempt) => nextDelay(policy, attempt + 1) >= nextDelay(policy, attempt),
      ),
    );
  });

  it('property: a message is tried at most maxAttempts times, whatever the policy', () => {
    fc.assert(
      fc.property(arbitraryPolicy, (policy) => {
        let attempt = 1;
        while (decide(policy, attempt, new Error('still failing')).action === 'retry') {
          attempt += 1;
          if (attempt > policy.maxAttempts) return false;
        }
        return attempt === policy.maxAttempts;
      }),
    );
  });
});
