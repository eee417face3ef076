import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fc from 'fast-check';
import { callbackSignature, hashSecret, randomSecret, seal, unseal, verifySecret } from '../../core/secrets';

describe('secrets', () => {
  it('verifies a secret against its salted hash and rejects any other', () => {
    const secret = randomSecret();
    const stored = hashSecret(secret);
    assert.equal(verifySecret(secret, stored), true);
    assert.equal(verifySecret(secret + 'x', stored), false);
    assert.equal(verifySecret(secret, 'garbage'), false);
    assert.notEqual(hashSecret(secret), stored, 'each hash has its own salt');
  });

  it('seals and unseals a secret, and refuses a sealed value that was tampered with', () => {
    const sealed = seal('machine-secret', 'key-1');
    assert.equal(unseal(sealed, 'key-1'), 'machine-secret');
    assert.throws(() => unseal(sealed, 'key-2'));
    const parts = sealed.split('.');
    parts[3] = Buffer.from('other').toString('base64url');
    assert.throws(() => unseal(parts.join('.'), 'key-1'));
  });

  it('signs a callback exactly as docs/machines.md says: HMAC-SHA256 of "<timestamp>.<nonce>.POST.<path>.<raw body>"', () => {
    const expected = crypto
      .createHmac('sha256', 's3cret')
      .update('1700000000.abcdefgh12345678.POST./api/embossing-jobs/callback/42.{"status":"completed"}')
      .digest('hex');
    assert.equal(
      callbackSignature(
        's3cret',
        {
          timestamp: '1700000000',
          nonce: 'abcdefgh12345678',
          method: 'post',
          path: '/api/embossing-jobs/callback/42',
        },
        '{"status":"completed"}',
      ),
      `sha256=${expected}`,
    );
  });

  it('round-trips any text through seal and unseal', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.string({ minLength: 1 }),
        (text, key) => unseal(seal(text, key), key) === text,
      ),
    );
  });
});
