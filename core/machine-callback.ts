// Verification of a machine's signed callback (CONTRACT.md §4), pure: the caller supplies the
// headers, the raw body as received, the machine's secret and the time. Authentication
// (who signed) is checked before authorisation (is it that machine's job), and every
// rejection says which, without revealing whether a machine or job exists.
import { callbackSignature, safeEqual } from './secrets';

export const CALLBACK_WINDOW_SECONDS = 300;
export const MACHINE_HEADER = 'x-floorflow-machine';
export const TIMESTAMP_HEADER = 'x-floorflow-timestamp';
export const SIGNATURE_HEADER = 'x-floorflow-signature';

export interface CallbackHeaders {
  machine?: string;
  timestamp?: string;
  signature?: string;
}

export type CallbackCheck =
  { ok: true; machineId: string } | { ok: false; status: 401 | 403; reason: string };

/** The signed headers, or why they cannot be checked at all. */
export function readCallbackHeaders(
  headers: CallbackHeaders,
): { ok: true; machine: string; timestamp: string; signature: string } | { ok: false; reason: string } {
  if (!headers.machine) return { ok: false, reason: 'X-Floorflow-Machine is missing' };
  if (!headers.timestamp || !/^\d{1,12}$/.test(headers.timestamp)) {
    return { ok: false, reason: 'X-Floorflow-Timestamp is missing or not unix seconds' };
  }
  if (!headers.signature || !/^sha256=[0-9a-f]{64}$/i.test(headers.signature)) {
    return { ok: false, reason: 'X-Floorflow-Signature is missing or not sha256=<hex>' };
  }
  return {
    ok: true,
    machine: headers.machine,
    timestamp: headers.timestamp,
    signature: headers.signature.toLowerCase(),
  };
}

/**
 * Checks a callback: signature over "<timestamp>.<raw body>" with the machine's secret
 * (constant-time), timestamp within the window, and the job belonging to that machine.
 * `secret` is undefined for an unknown machine; `jobMachineId` undefined for an unknown job.
 */
export function checkCallback(input: {
  headers: CallbackHeaders;
  rawBody: Buffer | string;
  secret: string | undefined;
  jobMachineId: string | undefined;
  now: Date;
  windowSeconds?: number;
}): CallbackCheck {
  const headers = readCallbackHeaders(input.headers);
  if (!headers.ok) return { ok: false, status: 401, reason: headers.reason };
  // An unknown machine is checked against a throwaway key, so timing does not tell it apart.
  const expected = callbackSignature(input.secret ?? 'no such machine', headers.timestamp, input.rawBody);
  const signed = safeEqual(expected, headers.signature);
  if (!signed || input.secret === undefined)
    return { ok: false, status: 401, reason: 'the signature does not match' };
  const skew = Math.abs(input.now.getTime() / 1000 - Number(headers.timestamp));
  if (skew > (input.windowSeconds ?? CALLBACK_WINDOW_SECONDS)) {
    return { ok: false, status: 401, reason: 'the timestamp is outside the allowed window' };
  }
  if (input.jobMachineId !== headers.machine) {
    return { ok: false, status: 403, reason: 'this job does not belong to this machine' };
  }
  return { ok: true, machineId: headers.machine };
}
