// `floorflow machine set` and the scanner options of `machine add` / `machine list`: what the
// command line says, as a change of the scanner's settings in the registry.
import {
  parseOperationList,
  parseSerialPort,
  parseWindow,
  type ScannerSettings,
  type SettingResult,
} from '../core/scanner-settings';
import type { ScannerSettingsChange } from '../store/scanner-settings';

export class SettingsUsageError extends Error {}

function take(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) throw new SettingsUsageError(`${name} needs a value`);
  args.splice(i, 2);
  return value;
}

function valueOf<T>(name: string, result: SettingResult<T>): T {
  if (!result.ok) throw new SettingsUsageError(`${name}: ${result.reason}`);
  return result.value;
}

/**
 * Reads (and removes from `args`) --default-operations, --double-send-window, --serial and
 * --baud. "none" clears a setting.
 */
export function scannerSettingsChange(args: string[]): ScannerSettingsChange {
  const change: ScannerSettingsChange = {};
  const ops = take(args, '--default-operations');
  if (ops !== undefined) {
    const list = valueOf('--default-operations', parseOperationList(ops));
    change.default_operations = list.length > 0 ? list : null;
  }
  const window = take(args, '--double-send-window');
  if (window !== undefined) {
    change.double_send_window_ms =
      window === 'none' ? null : valueOf('--double-send-window', parseWindow(window));
  }
  const serial = take(args, '--serial');
  if (serial !== undefined) {
    change.serial_port = serial === 'none' ? null : valueOf('--serial', parseSerialPort(serial));
  }
  const baud = take(args, '--baud');
  if (baud !== undefined) {
    const n = Number(baud);
    if (baud !== 'none' && (!Number.isInteger(n) || n <= 0 || n > 4000000)) {
      throw new SettingsUsageError(`--baud: "${baud}" is not a line speed such as 9600`);
    }
    change.baud_rate = baud === 'none' ? null : n;
  }
  return change;
}

/** One line of a scanner's settings for `machine list`, empty without any. */
export function describeScannerSettings(settings: ScannerSettings): string {
  const parts: string[] = [];
  if (settings.defaultOperations) parts.push(`default operations ${settings.defaultOperations.join(',')}`);
  if (settings.doubleSendWindowMs !== undefined) {
    parts.push(`double-send window ${settings.doubleSendWindowMs / 1000}s`);
  }
  if (settings.serialPort) {
    parts.push(`serial ${settings.serialPort}${settings.baudRate ? ` at ${settings.baudRate} baud` : ''}`);
  }
  return parts.join(', ');
}
