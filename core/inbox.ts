// Reading machine messages for the durable inbox, as pure functions: what of a publish can be
// stored as typed data (PostgreSQL text and jsonb take neither NUL nor a lone UTF-16 surrogate),
// and how a payload that cannot is kept as it arrived, escaped, so nothing a machine sent is lost.

/** The machine topics the inbox stores before it acknowledges a publish. */
export type InboxKind = 'scan' | 'event' | 'status';

/** NUL or any UTF-16 surrogate (paired ones too): only text holding one needs the closer look. */
// eslint-disable-next-line no-control-regex -- NUL is what this looks for
const MAYBE_UNSTORABLE = /[\u0000\ud800-\udfff]/;

/** Why a string cannot be stored in PostgreSQL text or jsonb, or undefined when it can. */
export function unstorableInText(text: string): string | undefined {
  if (!MAYBE_UNSTORABLE.test(text)) return undefined;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    if (unit === 0) return 'a NUL character';
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i += 1;
        continue;
      }
      return 'a lone UTF-16 surrogate';
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return 'a lone UTF-16 surrogate';
  }
  return undefined;
}

/** Whether any string or key in the value holds what cannot be stored (no paths built: the common case). */
function holdsUnstorable(value: unknown): boolean {
  if (typeof value === 'string') return MAYBE_UNSTORABLE.test(value);
  if (Array.isArray(value)) return value.some(holdsUnstorable);
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (MAYBE_UNSTORABLE.test(key) || holdsUnstorable(item)) return true;
    }
  }
  return false;
}

/** The first string or key in a parsed JSON value that cannot be stored, as "<where> holds <what>". */
export function unstorableInValue(value: unknown, where = 'the message'): string | undefined {
  if (!holdsUnstorable(value)) return undefined;
  return unstorableAt(value, where);
}

function unstorableAt(value: unknown, where: string): string | undefined {
  if (typeof value === 'string') {
    const problem = unstorableInText(value);
    return problem && `${where} holds ${problem}`;
  }
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const problem = unstorableAt(item, `${where}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const keyProblem = unstorableInText(key);
      if (keyProblem) return `a field name in ${where} holds ${keyProblem}`;
      const problem = unstorableAt(item, `${where}.${key}`);
      if (problem) return problem;
    }
  }
  return undefined;
}

function hex(byte: number): string {
  return `\\x${byte.toString(16).padStart(2, '0')}`;
}

/** Length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there starts none. */
function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const b = bytes[i];
  if (b < 0x80) return 1;
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) length = 2;
  else if (b >= 0xe0 && b <= 0xef) {
    length = 3;
    if (b === 0xe0) low = 0xa0;
    if (b === 0xed) high = 0x9f; // UTF-8 of a surrogate is not UTF-8
  } else if (b >= 0xf0 && b <= 0xf4) {
    length = 4;
    if (b === 0xf0) low = 0x90;
    if (b === 0xf4) high = 0x8f;
  } else return 0;
  if (i + length > bytes.length) return 0;
  if (bytes[i + 1] < low || bytes[i + 1] > high) return 0;
  for (let k = 2; k < length; k += 1) if (bytes[i + k] < 0x80 || bytes[i + k] > 0xbf) return 0;
  return length;
}

export const ESCAPES_EXPLAINED =
  'stored escaped: \\xNN for a byte that is not UTF-8, \\u0000 for NUL, \\uDXXX for a lone surrogate, \\\\ for a backslash';

/**
 * A payload as text PostgreSQL can store. Valid UTF-8 (or a well-formed string) without NUL comes
 * back unchanged; anything else is escaped in full (backslashes doubled too, so the escaping can
 * be read back without doubt) and `escaped` says so.
 */
export function escapeRaw(payload: Buffer | Uint8Array | string): { text: string; escaped: boolean } {
  if (typeof payload === 'string') {
    if (unstorableInText(payload) === undefined) return { text: payload, escaped: false };
    let out = '';
    for (let i = 0; i < payload.length; i += 1) {
      const unit = payload.charCodeAt(i);
      const next = payload.charCodeAt(i + 1);
      if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        out += payload[i] + payload[i + 1];
        i += 1;
      } else if (unit === 0 || (unit >= 0xd800 && unit <= 0xdfff)) {
        out += `\\u${unit.toString(16).padStart(4, '0')}`;
      } else if (unit === 0x5c) out += '\\\\';
      else out += payload[i];
    }
    return { text: out, escaped: true };
  }
  const bytes = payload;
  let clean = !bytes.includes(0);
  for (let i = 0; clean && i < bytes.length;) {
    const length = utf8SequenceLength(bytes, i);
    if (length === 0) clean = false;
    i += Math.max(1, length);
  }
  if (clean) return { text: Buffer.from(bytes).toString('utf8'), escaped: false };
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const length = utf8SequenceLength(bytes, i);
    if (length === 0) {
      out += hex(bytes[i]);
      i += 1;
    } else if (bytes[i] === 0) {
      out += '\\u0000';
      i += 1;
    } else if (bytes[i] === 0x5c) {
      out += '\\\\';
      i += 1;
    } else {
      out += Buffer.from(bytes.subarray(i, i + length)).toString('utf8');
      i += length;
    }
  }
  return { text: out, escaped: true };
}

/** A payload kept as it arrived: at most `limit` characters of its (escaped) text. */
export function rawExcerpt(payload: Buffer | string, limit = 4096): { text: string; note?: string } {
  const { text, escaped } = escapeRaw(payload);
  const notes: string[] = [];
  if (escaped) notes.push(ESCAPES_EXPLAINED);
  let kept = text;
  if (text.length > limit) {
    kept = text.slice(0, limit);
    notes.push(`first ${limit} of ${text.length} characters`);
  }
  return notes.length > 0 ? { text: kept, note: notes.join('; ') } : { text: kept };
}

function textOf(payload: Buffer | string): string {
  return typeof payload === 'string' ? payload : payload.toString('utf8');
}

export type ReadEvent = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * A machine event as the inbox stores it: any JSON value PostgreSQL can hold. What each machine
 * means by it is its consumer's to read (an embosser's profile, the engraving rules); the inbox
 * only keeps it, or says why it cannot be kept as JSON.
 */
export function readMachineEvent(payload: Buffer | string): ReadEvent {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (escapeRaw(payload).escaped) {
    return { ok: false, reason: 'the event is not UTF-8 text without NUL characters' };
  }
  let value: unknown;
  try {
    value = JSON.parse(textOf(bytes));
  } catch {
    return { ok: false, reason: 'the event is not JSON' };
  }
  const problem = unstorableInValue(value, 'the event');
  return problem ? { ok: false, reason: problem } : { ok: true, value };
}

/**
 * A machine's status message as stored: a JSON object with `state`, or `{state: "unknown", raw}`
 * (an excerpt of what arrived) when it is not one, so the latest status is always recorded.
 */
export function readMachineStatus(payload: Buffer | string): Record<string, unknown> {
  const read = readMachineEvent(payload);
  if (read.ok && typeof read.value === 'object' && read.value !== null && !Array.isArray(read.value)) {
    return read.value as Record<string, unknown>;
  }
  return { state: 'unknown', raw: rawExcerpt(payload, 200).text };
}
