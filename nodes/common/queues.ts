// The durable queues the floorflow-queue-worker node can serve, in one list (QUEUES, at the
// end). PostgreSQL is the queue: a source claims due rows (FOR UPDATE SKIP LOCKED, under a
// lease) and takes back work whose worker died or stalled. A domain adds its queue to the list.
import type { Pool } from 'pg';
import type { AppliedTransition } from '../../store/lifecycle';
import { claimEngravingJobs } from '../../store/engraving';
import { embossingQueue } from './embossing-queue';
import { claimJobs, recoverOrphanedJobs, recoverStuckJobs, releaseJobsOf } from '../../store/processing';

export interface QueueContext {
  pool: Pool;
  /** Who holds the claims: `<runtime id>/<worker node id>`. */
  owner: string;
  now: Date;
  flowVersion?: string;
  /** Lifecycle transitions the call applied, for the worker to announce after commit. */
  applied?: AppliedTransition[];
}

/** A claimed unit of work; it leaves the worker as msg.payload. */
export interface ClaimedWork {
  id: string;
}

export interface QueueSource {
  name: string;
  description: string;
  /** Claims due work, at most `max` in flight for this owner. */
  claim(ctx: QueueContext & { max: number }): Promise<ClaimedWork[]>;
  /** At start: takes back work held by a runtime that is gone. Returns the ids taken back. */
  recoverOrphans?(ctx: QueueContext): Promise<string[]>;
  /** Periodically: takes back work without progress for `stuckAfterMs`. */
  recoverStuck?(ctx: QueueContext & { stuckAfterMs: number }): Promise<string[]>;
  /** When the worker stops: gives back the work it holds, for the next worker to resume. */
  release?(ctx: QueueContext): Promise<string[]>;
}

export function queueSource(name: string): QueueSource | undefined {
  return QUEUES.find((q) => q.name === name);
}

export function queueNames(): string[] {
  return QUEUES.map((q) => q.name).sort();
}

/** What a running worker announces, so status routes can report its limits. */
export interface WorkerAnnouncement {
  nodeId: string;
  intervalMs: number;
  maxConcurrency: number;
}

const workers = new Map<string, WorkerAnnouncement>();

export function announceWorker(queue: string, announcement: WorkerAnnouncement): void {
  workers.set(queue, announcement);
}

export function withdrawWorker(queue: string, nodeId: string): void {
  if (workers.get(queue)?.nodeId === nodeId) workers.delete(queue);
}

export function workerOf(queue: string): WorkerAnnouncement | undefined {
  return workers.get(queue);
}

const processingQueue: QueueSource = {
  name: 'processing',
  description: 'processing jobs of confirmed orders (processing.processing_jobs)',
  claim: ({ pool, owner, max, now }) => claimJobs(pool, { owner, max, now }),
  recoverOrphans: ({ pool, owner, now, flowVersion }) =>
    recoverOrphanedJobs(pool, { owner, now, flowVersion }),
  recoverStuck: ({ pool, now, stuckAfterMs, flowVersion }) =>
    recoverStuckJobs(pool, { now, stuckAfterMs, flowVersion }),
  release: ({ pool, owner, now, flowVersion }) => releaseJobsOf(pool, { owner, now, flowVersion }),
};

const engravingQueue: QueueSource = {
  name: 'engraving',
  description: 'engraving jobs waiting for an engraver (engraving.engraving_jobs)',
  // A job on an engraver has its own deadline in its row; the engraver deadlines node acts on it
  // (it may have to send the engraver a cancel command, which this worker cannot).
  claim: ({ pool, max, now, flowVersion }) => claimEngravingJobs(pool, { max, now, flowVersion }),
};

/** Every queue a worker can serve. */
export const QUEUES: readonly QueueSource[] = [processingQueue, engravingQueue, embossingQueue];
