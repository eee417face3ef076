// Verification of a machine's signed callback (docs/machines.md), pure: the caller supplies the
// headers, the method and path as sent, the raw body as received, the machine's secret and the
// time. The signature covers nonce, method and path with the body, so it is bound to its job;
// authentication (who signed, and when) is checked before authorisation (is it that machine's
// job), and every rejection says which, without revealing whether a machine or job exists.
// Whether the nonce was used before is the caller's to check (store/embossing.ts).
import { callbackSignature, safeEqual } from './secrets';

/** How old a callback may be. */
export const CALLBACK_WINDOW_SECONDS = 300;
/** How far ahead of the runtime's clock a machine's clock may be. */
export const CALLBACK_FUTURE_SKEW_SECONDS = 30;
export const MACHINE_HEADER = 'x-floorflow-machine';
export const TIMESTAMP_HEADER = 'x-floorflow-timestamp';
export const NONCE_HEADER = 'x-floorflow-nonce';
export const SIGNATURE_HEADER = 'x-floorflow-signature';

const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
const MACHINE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface CallbackHeaders {
  machine?: string;
  timestamp?: string;
  nonce?: string;
  signature?: string;
}

export type CallbackCheck =
  | { ok: true; machineId: string; nonce: string; timestamp: number }
  | { ok: false; status: 401 | 403; reason: string };

interface ReadHeaders {
  ok: true;
  machine: string;
  timestamp: string;
  nonce: string;
  signature: string;
}

/** The signed headers, or why they cannot be checked at all. */
export function readCallbackHeaders(headers: CallbackHeaders): ReadHeaders | { ok: false; reason: string } {
  if (!headers.machine || !MACHINE_ID.test(headers.machine))
    return { ok: false, reason: 'X-Floorflow-Machine is missing or not a machine id' };
  if (!headers.timestamp || !/^\d{1,12}$/.test(headers.timestamp)) {
    return { ok: false, reason: 'X-Floorflow-Timestamp is missing or not unix seconds' };
  }
  if (!headers.nonce || !NONCE.test(headers.nonce)) {
    return { ok: false, reason: 'X-Floorflow-Nonce is missing or not 16–64 characters of A-Z a-z 0-9 _ -' };
  }
  if (!headers.signature || !/^sha256=[0-9a-f]{64}$/i.test(headers.signature)) {
    return { ok: false, reason: 'X-Floorflow-Signature is missing or not sha256=<hex>' };
  }
  return {
    ok: true,
    machine: headers.machine,
    timestamp: headers.timestamp,
    nonce: headers.nonce,
    signature: headers.signature.toLowerCase(),
  };
}

/**
 * Checks a callback: signature over "<timestamp>.<nonce>.<METHOD>.<path>.<raw body>" with the
 * machine's secret (constant-time), timestamp at most `windowSeconds` old and at most
 * `futureSkewSeconds` ahead, and the job belonging to that machine. `secret` is undefined for
 * an unknown machine; `jobMachineId` undefined for an unknown job.
 */
export function checkCallback(input: {
  headers: CallbackHeaders;
  method: string;
  path: string;
  rawBody: Buffer | string;
  secret: string | undefined;
  jobMachineId: string | undefined;
  now: Date;
  windowSeconds?: number;
  futureSkewSeconds?: number;
}): CallbackCheck {
  const headers = readCallbackHeaders(input.headers);
  if (!headers.ok) return { ok: false, status: 401, reason: headers.reason };
  // An unknown machine is checked against a throwaway key, so timing does not tell it apart.
  const expected = callbackSignature(
    input.secret ?? 'no such machine',
    { timestamp: headers.timestamp, nonce: headers.nonce, method: input.method, path: input.path },
    input.rawBody,
  );
  const signed = safeEqual(expected, headers.signature);
  if (!signed || input.secret === undefined)
    return { ok: false, status: 401, reason: 'the signature does not match' };
  const age = input.now.getTime() / 1000 - Number(headers.timestamp);
  if (age > (input.windowSeconds ?? CALLBACK_WINDOW_SECONDS)) {
    return { ok: false, status: 401, reason: 'the timestamp is too old' };
  }
  if (-age > (input.futureSkewSeconds ?? CALLBACK_FUTURE_SKEW_SECONDS)) {
    return { ok: false, status: 401, reason: 'the timestamp is in the future: check the machine clock' };
  }
  if (input.jobMachineId !== headers.machine) {
    return { ok: false, status: 403, reason: 'this job does not belong to this machine' };
  }
  return { ok: true, machineId: headers.machine, nonce: headers.nonce, timestamp: Number(headers.timestamp) };
}

/** The attempt a callback reports on (the `attempt` of the command it answers), or why it has none. */
export function callbackAttempt(
  body: unknown,
): { ok: true; attempt: number } | { ok: false; reason: string } {
  const attempt =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>).attempt
      : undefined;
  if (typeof attempt === 'number' && Number.isSafeInteger(attempt) && attempt >= 1)
    return { ok: true, attempt };
  return {
    ok: false,
    reason: 'attempt is missing: send the attempt number of the command this callback answers',
  };
}
