// The processing pipeline (USB sticks written for confirmed orders) as pure rules: the four
// stages and their progress, the resume rule after an interrupted attempt, the retry schedule,
// the stage work that needs no hardware (order validation, content selection, write
// verification) and the simulated USB writer's fault profile. See docs/processing.md.
import crypto from 'node:crypto';
import { type FailureLike, type ListPolicy, type RetryDecision, decide } from './backoff';

export const PROCESSING_STAGES = ['validation', 'content_selection', 'usb_writing', 'verification'] as const;
export type ProcessingStage = (typeof PROCESSING_STAGES)[number];
export type ProcessingStatus = 'pending' | 'processing' | 'retry' | 'completed' | 'failed';
export const PROCESSING_STATUSES: readonly ProcessingStatus[] = [
  'pending',
  'processing',
  'retry',
  'completed',
  'failed',
];

/** Progress when a stage starts and when it is done (10, 30, 50–80, 90, then 100). */
export const STAGE_PROGRESS: Readonly<Record<ProcessingStage, { start: number; done: number }>> = {
  validation: { start: 0, done: 10 },
  content_selection: { start: 10, done: 30 },
  usb_writing: { start: 50, done: 80 },
  verification: { start: 80, done: 90 },
};
export const COMPLETED_PROGRESS = 100;

/** Error code of the log row a failed attempt writes. */
export const PROCESSING_FAILED = 'PROCESSING_FAILED';
/** Log code when the monitor takes back a job that made no progress for too long. */
export const PROCESSING_STUCK = 'PROCESSING_STUCK';
/** Log code when a job was found held by a runtime that is gone (kill -9, power loss). */
export const PROCESSING_INTERRUPTED = 'PROCESSING_INTERRUPTED';

/** Retries after 5 s, 15 s and 60 s, then failed: four attempts in all. */
export const PROCESSING_RETRY_POLICY: ListPolicy = {
  kind: 'list',
  delaysMs: [5000, 15000, 60000],
  maxAttempts: 4,
};
export const DEFAULT_MAX_CONCURRENCY = 3;
export const DEFAULT_STUCK_AFTER_MS = 5 * 60 * 1000;

export function isProcessingStage(value: unknown): value is ProcessingStage {
  return typeof value === 'string' && (PROCESSING_STAGES as readonly string[]).includes(value);
}

/**
 * The resume rule: a stage runs unless the job's last completed stage is this one or a later
 * one. Stage effects and `completed_stage` are written in one transaction, so a stage is
 * either recorded as done or runs again; an interrupted attempt resumes after the last stage
 * recorded as done.
 */
export function stageIsDone(completedStage: string | null | undefined, stage: ProcessingStage): boolean {
  if (!isProcessingStage(completedStage)) return false;
  return PROCESSING_STAGES.indexOf(completedStage) >= PROCESSING_STAGES.indexOf(stage);
}

/** The stage that runs after `completedStage` (the first when none is done, undefined after the last). */
export function stageAfter(completedStage: string | null | undefined): ProcessingStage | undefined {
  if (!isProcessingStage(completedStage)) return PROCESSING_STAGES[0];
  return PROCESSING_STAGES[PROCESSING_STAGES.indexOf(completedStage) + 1];
}

/** After failed attempt number `attempts`: when to retry, or fail for good. */
export function retryAfterFailure(
  attempts: number,
  error: FailureLike | undefined,
  policy = PROCESSING_RETRY_POLICY,
): RetryDecision {
  // Every failure of a stage is worth another attempt, whatever its code: the stage work is
  // the order's data and a device, and either may be fixed between attempts.
  return decide(policy, attempts, error ? { ...error, retryable: true } : undefined);
}

// ---- the default stage work -------------------------------------------------------------

export interface OrderForProcessing {
  id: string;
  order_number: string;
  status: string;
  details: Record<string, unknown>;
}

export interface ContentFile {
  name: string;
  bytes: number;
}

export interface ContentSelection {
  files: ContentFile[];
  totalBytes: number;
  /** sha256 over the names and sizes, what verification compares the written copy with. */
  checksum: string;
}

export interface UsbWriteResult {
  device: string;
  files: ContentFile[];
  bytesWritten: number;
  checksum: string;
}

/** Why the order cannot be processed, or undefined. */
export function validateOrder(order: OrderForProcessing): string | undefined {
  if (order.status !== 'confirmed') return `order ${order.order_number} is ${order.status}, not confirmed`;
  const content = order.details.content;
  if (content !== undefined && !Array.isArray(content))
    return `order ${order.order_number}: details.content must be a list`;
  return undefined;
}

export function checksumOf(files: ContentFile[]): string {
  const hash = crypto.createHash('sha256');
  for (const f of files) hash.update(`${f.name}\0${f.bytes}\n`);
  return hash.digest('hex');
}

/**
 * The files to write: details.content as names or {name, bytes}; an order without content
 * gets one summary file named after the order.
 */
export function selectContent(order: OrderForProcessing): ContentSelection {
  const raw = Array.isArray(order.details.content) ? (order.details.content as unknown[]) : [];
  const files: ContentFile[] = raw.flatMap((entry, i): ContentFile[] => {
    if (typeof entry === 'string' && entry.trim() !== '') return [{ name: entry.trim(), bytes: 1024 }];
    if (entry && typeof entry === 'object') {
      const e = entry as { name?: unknown; bytes?: unknown };
      const name = typeof e.name === 'string' && e.name.trim() !== '' ? e.name.trim() : `item-${i + 1}`;
      const bytes =
        typeof e.bytes === 'number' && Number.isFinite(e.bytes) && e.bytes >= 0 ? Math.floor(e.bytes) : 1024;
      return [{ name, bytes }];
    }
    return [];
  });
  if (files.length === 0) files.push({ name: `${order.order_number}.txt`, bytes: 1024 });
  return { files, totalBytes: files.reduce((sum, f) => sum + f.bytes, 0), checksum: checksumOf(files) };
}

/** Why the written copy does not match the selection, or undefined. */
export function verifyWrite(
  selection: ContentSelection,
  written: UsbWriteResult | undefined,
): string | undefined {
  if (!written) return 'nothing was written';
  if (written.checksum !== selection.checksum) return `checksum mismatch on ${written.device}`;
  if (written.bytesWritten !== selection.totalBytes) {
    return `wrote ${written.bytesWritten} of ${selection.totalBytes} bytes on ${written.device}`;
  }
  return undefined;
}

// ---- the simulated USB writer ------------------------------------------------------------

/**
 * One fault of the simulated USB writer's profile (set on the floorflow-usb-writer node, see
 * docs/processing.md): writes for the orders whose number matches `orders` fail, or never
 * finish (`hang`, a device that stopped answering), on the job's attempts 1..`attempts` (every
 * attempt when absent). Only the simulated writer reads it: nothing an order or a request
 * carries can make a real stage fail or hang.
 */
export interface SimulatedWriterFault {
  /** A regular expression the order number must match (anchor it to name one order). */
  orders: string;
  fault: 'fail' | 'hang';
  attempts?: number;
}

/** Why the fault profile cannot be used, or undefined. */
export function checkWriterFaults(faults: readonly SimulatedWriterFault[]): string | undefined {
  for (const [i, f] of faults.entries()) {
    try {
      new RegExp(f.orders);
    } catch {
      return `fault ${i + 1}: orders is not a regular expression: ${f.orders}`;
    }
  }
  return undefined;
}

/** The fault the profile gives this write (the first rule that matches), or undefined. */
export function writerFaultFor(
  faults: readonly SimulatedWriterFault[],
  orderNumber: string,
  attempt: number,
): SimulatedWriterFault['fault'] | undefined {
  const rule = faults.find(
    (f) => new RegExp(f.orders).test(orderNumber) && attempt <= (f.attempts ?? Number.POSITIVE_INFINITY),
  );
  return rule?.fault;
}

/** What the simulated USB writer writes when no fault applies: the selection, in full. */
export function simulateUsbWrite(selection: ContentSelection, device: string): UsbWriteResult {
  return { device, files: selection.files, bytesWritten: selection.totalBytes, checksum: selection.checksum };
}

// ---- the queue status ---------------------------------------------------------------------

export interface ProcessingQueueCounts {
  byStatus: Array<{ status: string; count: number }>;
  avgDurationMinutes: number | null;
}

export interface ProcessingQueueStatus {
  total: number;
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  retry: number;
  activeJobs: number;
  maxConcurrent: number;
  dbStats: {
    total: number;
    by_status: Array<{ status: string; count: number }>;
    avg_duration_minutes: number | null;
  };
}

/** The response body of GET /v1/processing/queue. */
export function queueStatusOf(counts: ProcessingQueueCounts, maxConcurrent: number): ProcessingQueueStatus {
  const count = (s: ProcessingStatus) => counts.byStatus.find((c) => c.status === s)?.count ?? 0;
  const total = counts.byStatus.reduce((sum, c) => sum + c.count, 0);
  return {
    total,
    pending: count('pending'),
    processing: count('processing'),
    completed: count('completed'),
    failed: count('failed'),
    retry: count('retry'),
    activeJobs: count('processing'),
    maxConcurrent,
    dbStats: {
      total,
      by_status: counts.byStatus,
      avg_duration_minutes:
        counts.avgDurationMinutes === null ? null : Math.round(counts.avgDurationMinutes * 100) / 100,
    },
  };
}
