// Hashing and sealing of secrets. Machine secrets and API tokens are random 256-bit values,
// so a salted SHA-256 is a sound verifier (a slow KDF adds nothing against brute force of
// 256 bits and would cost every MQTT connect). Machine secrets are also sealed with
// AES-256-GCM because the machine callback signature (docs/machines.md) is an HMAC keyed with the
// secret itself, which the runtime must therefore be able to recover.
import crypto from 'node:crypto';

export function randomSecret(bytes = 32): string {
  return crypto.randomBytes(bytes).toString('base64url');
}

export function hashSecret(secret: string, salt: string = randomSecret(16)): string {
  const digest = crypto.createHash('sha256').update(`${salt}:${secret}`).digest('base64url');
  return `sha256$${salt}$${digest}`;
}

export function verifySecret(secret: string, stored: string): boolean {
  const [scheme, salt, digest] = stored.split('$');
  if (scheme !== 'sha256' || !salt || !digest) return false;
  const expected = Buffer.from(hashSecret(secret, salt));
  const actual = Buffer.from(stored);
  return expected.length === actual.length && crypto.timingSafeEqual(expected, actual);
}

/** Constant-time comparison of two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a).digest();
  const hb = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(ha, hb) && a.length === b.length;
}

function keyOf(sealKey: string): Buffer {
  return crypto.createHash('sha256').update(sealKey).digest();
}

export function seal(plain: string, sealKey: string): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', keyOf(sealKey), iv);
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return [
    'v1',
    iv.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
    body.toString('base64url'),
  ].join('.');
}

export function unseal(sealed: string, sealKey: string): string {
  const [version, iv, tag, body] = sealed.split('.');
  if (version !== 'v1' || !iv || !tag || body === undefined)
    throw new Error('sealed secret has an unknown format');
  const decipher = crypto.createDecipheriv('aes-256-gcm', keyOf(sealKey), Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
}

/** What a callback signature covers besides the body (docs/machines.md). */
export interface SignedRequest {
  timestamp: string;
  nonce: string;
  method: string;
  /** The path as sent, e.g. /api/embossing-jobs/callback/42: it binds the signature to its job. */
  path: string;
}

/**
 * HMAC-SHA256 signature of a machine callback, as docs/machines.md defines it:
 * over "<timestamp>.<nonce>.<METHOD>.<path>.<raw body>", keyed with the machine secret.
 */
export function callbackSignature(secret: string, request: SignedRequest, rawBody: string | Buffer): string {
  const mac = crypto.createHmac('sha256', secret);
  mac.update(`${request.timestamp}.${request.nonce}.${request.method.toUpperCase()}.${request.path}.`);
  mac.update(rawBody);
  return `sha256=${mac.digest('hex')}`;
}
