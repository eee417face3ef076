import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { signedCallback } from '../../cli/embosser-simulator';
import { callbackAttempt, checkCallback } from '../../core/machine-callback';
import { callbackSignature } from '../../core/secrets';

const secret = 'machine-secret-EMB-1';
const now = new Date('2026-01-05T08:00:00Z');
const ts = String(now.getTime() / 1000);
const nonce = 'n0nce-0123456789abcdef';
const path = '/api/embossing-jobs/callback/42';
const body = '{"status":"completed","attempt":1,"response":{}}';

const sign = (
  overrides: Partial<{ key: string; timestamp: string; nonce: string; path: string; raw: string }> = {},
) =>
  callbackSignature(
    overrides.key ?? secret,
    {
      timestamp: overrides.timestamp ?? ts,
      nonce: overrides.nonce ?? nonce,
      method: 'POST',
      path: overrides.path ?? path,
    },
    overrides.raw ?? body,
  );

function check(
  overrides: Partial<Parameters<typeof checkCallback>[0]> = {},
  headers: Record<string, string> = {},
) {
  return checkCallback({
    headers: { machine: 'EMB-1', timestamp: ts, nonce, signature: sign(), ...headers },
    method: 'POST',
    path,
    rawBody: body,
    secret,
    jobMachineId: 'EMB-1',
    now,
    ...overrides,
  });
}

describe('machine callback signature (docs/machines.md)', () => {
  it('accepts the HMAC-SHA256 of "<timestamp>.<nonce>.POST.<path>.<raw body>" keyed with the machine secret', () => {
    const expected = crypto
      .createHmac('sha256', secret)
      .update(`${ts}.${nonce}.POST.${path}.${body}`)
      .digest('hex');
    assert.equal(sign(), `sha256=${expected}`);
    assert.deepEqual(check(), { ok: true, machineId: 'EMB-1', nonce, timestamp: Number(ts) });
  });

  it('signs in the simulator exactly as the runtime verifies', () => {
    const headers = signedCallback({ machineId: 'EMB-1', secret, path, body, timestamp: Number(ts), nonce });
    const result = check(
      {},
      {
        machine: headers['X-Floorflow-Machine'],
        timestamp: headers['X-Floorflow-Timestamp'],
        nonce: headers['X-Floorflow-Nonce'],
        signature: headers['X-Floorflow-Signature'],
      },
    );
    assert.equal(result.ok, true);
  });

  it('refuses with 401 a wrong key, a changed body, a missing header or an unknown machine', () => {
    assert.equal(check({}, { signature: sign({ key: 'other' }) }).ok, false);
    assert.deepEqual(check({ rawBody: body.replace('completed', 'failed') }), {
      ok: false,
      status: 401,
      reason: 'the signature does not match',
    });
    const missing = check({}, { signature: '' });
    assert.equal(!missing.ok && missing.status, 401);
    const unknown = check({ secret: undefined });
    assert.equal(!unknown.ok && unknown.status, 401);
  });

  it("refuses a genuine signature posted to another job's path, or with another nonce", () => {
    // Finding 3 of issue 20: a valid callback for job 42 must not complete job 43.
    const elsewhere = check({ path: '/api/embossing-jobs/callback/43' });
    assert.deepEqual(elsewhere, { ok: false, status: 401, reason: 'the signature does not match' });
    const otherNonce = check({}, { nonce: 'another-nonce-0123456789' });
    assert.equal(!otherNonce.ok && otherNonce.status, 401);
  });

  it('refuses a nonce that is missing, too short, too long or has other characters', () => {
    for (const bad of ['', 'short', 'x'.repeat(65), 'has space 0123456789', 'ünïcode-0123456789']) {
      const result = check({}, { nonce: bad, signature: sign({ nonce: bad }) });
      assert.equal(!result.ok && result.status, 401, JSON.stringify(bad));
    }
  });

  it('refuses with 401 a timestamp more than 300 s old or more than 30 s ahead, and accepts both edges', () => {
    for (const offset of [-301, 31, 299]) {
      const t = String(Number(ts) + offset);
      const result = check({}, { timestamp: t, signature: sign({ timestamp: t }) });
      assert.equal(!result.ok && result.status, 401, `offset ${offset}`);
    }
    for (const offset of [-300, 30]) {
      const t = String(Number(ts) + offset);
      assert.equal(
        check({}, { timestamp: t, signature: sign({ timestamp: t }) }).ok,
        true,
        `offset ${offset}`,
      );
    }
  });

  it("refuses with 403 a genuine signature from a machine that is not the job's", () => {
    const result = check({ jobMachineId: 'EMB-2' });
    assert.deepEqual(result, { ok: false, status: 403, reason: 'this job does not belong to this machine' });
  });

  it('reads the attempt a callback answers, and refuses a body without a whole positive one', () => {
    assert.deepEqual(callbackAttempt({ status: 'completed', attempt: 2 }), { ok: true, attempt: 2 });
    for (const bad of [{}, { attempt: 0 }, { attempt: '1' }, { attempt: 1.5 }, null, [], 'x']) {
      assert.equal(callbackAttempt(bad).ok, false, JSON.stringify(bad));
    }
  });
});
