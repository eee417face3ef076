// One log line per scan that did not change a job (issue 15): which machine, which code, why, in
// the plant's words, of bounded length whatever the scanner sent.
import { lineExcerpt } from './excerpt';

export type ScanNoticeKind = 'rejected' | 'skipped' | 'failed' | 'ignored';

const WHAT: Record<ScanNoticeKind, string> = {
  rejected: 'rejected',
  skipped: 'not applied',
  failed: 'could not be applied',
  ignored: 'ignored',
};

export function scanNoticeLine(
  kind: ScanNoticeKind,
  machineId: string,
  code: string,
  reason: string,
): string {
  const from = machineId ? ` from ${lineExcerpt(machineId, 64)}` : '';
  return `scan${from} of code "${lineExcerpt(code, 80)}" ${WHAT[kind]}: ${lineExcerpt(reason, 200)}`;
}

/** The code of a scan kept raw (rejected): its "code" when it is readable JSON, else the text's start. */
export function codeOfRawScan(raw: string): string {
  try {
    const value = JSON.parse(raw) as unknown;
    if (typeof value === 'object' && value !== null && 'code' in value) {
      const code = (value as { code: unknown }).code;
      if (typeof code === 'string' || typeof code === 'number') return String(code);
    }
  } catch {
    // Not JSON: a bare code, or bytes that are not text.
  }
  return raw.trim().slice(0, 80);
}

export const DOUBLE_SEND_REASON =
  'the same scan (same code and operations) arrived twice within the double-send window: counted once';
