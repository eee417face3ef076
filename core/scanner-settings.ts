// A scanner's own settings in the machine registry (floorflow.machines.settings): the operations a
// scan that names none stands for (a serial wedge scanner sends only the code), the window within
// which the same scan sent again is one scan, and the serial port a scanner on this runtime is
// read from. Pure: reading what the registry holds, and what `floorflow machine set` is given.
import { normaliseOperations } from './scan-code';

export interface ScannerSettings {
  /** Operations a scan without any stands for (normalised names). */
  defaultOperations?: string[];
  /** Without a msg_id, the same code and operations within this many ms is one scan sent twice. */
  doubleSendWindowMs?: number;
  /** The serial port this scanner is read from (e.g. /dev/ttyUSB0). */
  serialPort?: string;
  /** Serial line speed (default 9600). */
  baudRate?: number;
}

/** The keys in floorflow.machines.settings (snake case, as the registry stores JSON). */
export interface StoredScannerSettings {
  default_operations?: string[];
  double_send_window_ms?: number;
  serial_port?: string;
  baud_rate?: number;
}

export const MAX_DOUBLE_SEND_WINDOW_MS = 600000;
const SERIAL_PORT = /^[A-Za-z0-9_./:-]{1,200}$/;

/** Reads a registry row's settings; what is not a valid scanner setting is left out. */
export function readScannerSettings(stored: unknown): ScannerSettings {
  const out: ScannerSettings = {};
  if (typeof stored !== 'object' || stored === null) return out;
  const s = stored as Record<string, unknown>;
  if (Array.isArray(s.default_operations)) {
    const ops = normaliseOperations(s.default_operations);
    if (ops.ok && ops.operations.length > 0) out.defaultOperations = ops.operations;
  }
  const w = s.double_send_window_ms;
  if (typeof w === 'number' && Number.isInteger(w) && w >= 0 && w <= MAX_DOUBLE_SEND_WINDOW_MS) {
    out.doubleSendWindowMs = w;
  }
  if (typeof s.serial_port === 'string' && SERIAL_PORT.test(s.serial_port)) out.serialPort = s.serial_port;
  if (typeof s.baud_rate === 'number' && Number.isInteger(s.baud_rate) && s.baud_rate > 0) {
    out.baudRate = s.baud_rate;
  }
  return out;
}

export type SettingResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** "2s", "1500ms", "1.5s", "0" or a bare number of milliseconds. */
export function parseWindow(text: string): SettingResult<number> {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s)?$/i.exec(text.trim());
  if (!m) return { ok: false, reason: `"${text}" is not a time such as 2s or 1500ms` };
  const ms = Math.round(Number(m[1]) * ((m[2] ?? 'ms').toLowerCase() === 's' ? 1000 : 1));
  if (ms > MAX_DOUBLE_SEND_WINDOW_MS) {
    return { ok: false, reason: `the double-send window is at most ${MAX_DOUBLE_SEND_WINDOW_MS / 1000}s` };
  }
  return { ok: true, value: ms };
}

/** "coating,kiss_cut" into normalised operation names; "" or "none" clears them. */
export function parseOperationList(text: string): SettingResult<string[]> {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.toLowerCase() === 'none') return { ok: true, value: [] };
  const ops = normaliseOperations(trimmed.split(','));
  return ops.ok ? { ok: true, value: ops.operations } : { ok: false, reason: ops.reason };
}

export function parseSerialPort(text: string): SettingResult<string> {
  return SERIAL_PORT.test(text)
    ? { ok: true, value: text }
    : { ok: false, reason: `"${text}" is not a serial port path such as /dev/ttyUSB0` };
}

/**
 * The operations a scan stands for: its own, or the scanner's defaults when it names none at all
 * (no operations, or an empty list). A scan that says `{"coating": false}` said something, and
 * keeps it.
 */
export function operationsWithDefaults(
  operations: string[] | Record<string, boolean>,
  settings: ScannerSettings | undefined,
): { operations: string[] | Record<string, boolean>; defaulted: boolean } {
  const namesNone = Array.isArray(operations)
    ? operations.length === 0
    : Object.keys(operations).length === 0;
  if (namesNone && settings?.defaultOperations?.length) {
    return { operations: [...settings.defaultOperations], defaulted: true };
  }
  return { operations, defaulted: false };
}
