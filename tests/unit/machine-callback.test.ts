import assert from 'node:assert/strict';
import { checkCallback } from '../../core/machine-callback';
import { callbackSignature } from '../../core/secrets';

const secret = 'machine-secret-EMB-1';
const now = new Date('2026-01-05T08:00:00Z');
const ts = String(now.getTime() / 1000);
const body = '{"status":"completed","response":{}}';

function check(
  overrides: Partial<Parameters<typeof checkCallback>[0]> = {},
  headers: Record<string, string> = {},
) {
  return checkCallback({
    headers: { machine: 'EMB-1', timestamp: ts, signature: callbackSignature(secret, ts, body), ...headers },
    rawBody: body,
    secret,
    jobMachineId: 'EMB-1',
    now,
    ...overrides,
  });
}

describe('machine callback signature (CONTRACT.md §4)', () => {
  it('accepts the HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the machine secret', () => {
    assert.deepEqual(check(), { ok: true, machineId: 'EMB-1' });
  });

  it('refuses with 401 a wrong key, a changed body, a missing header or an unknown machine', () => {
    assert.equal(check({}, { signature: callbackSignature('other', ts, body) }).ok, false);
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

  it('refuses with 401 a timestamp more than 300 s off, either way, and accepts one at 300 s', () => {
    for (const offset of [-301, 301]) {
      const t = String(Number(ts) + offset);
      const result = check({}, { timestamp: t, signature: callbackSignature(secret, t, body) });
      assert.equal(!result.ok && result.status, 401, `offset ${offset}`);
    }
    const edge = String(Number(ts) - 300);
    assert.equal(check({}, { timestamp: edge, signature: callbackSignature(secret, edge, body) }).ok, true);
  });

  it("refuses with 403 a genuine signature from a machine that is not the job's", () => {
    const result = check({ jobMachineId: 'EMB-2' });
    assert.deepEqual(result, { ok: false, status: 403, reason: 'this job does not belong to this machine' });
  });
});
