// The processing pipeline in SQL: order confirmation creates the processing job, the worker
// claims due jobs with FOR UPDATE SKIP LOCKED under a lease, each stage is recorded with its log
// row in one transaction, failures are scheduled for retry, and stuck or orphaned jobs are
// taken back.
import type { Pool } from 'pg';
import { FloorflowError } from '../core/errors';
import { requireShippedModel } from '../core/lifecycle-models';
import {
  COMPLETED_PROGRESS,
  type OrderForProcessing,
  PROCESSING_FAILED,
  PROCESSING_INTERRUPTED,
  PROCESSING_STUCK,
  type ProcessingQueueCounts,
  type ProcessingStage,
  type ProcessingStatus,
  retryAfterFailure,
  stageAfter,
} from '../core/processing';
import { type Queryable, withTransaction } from './db';
import { transition } from './lifecycle';

// Every status change goes through the one transition path (store/lifecycle.ts) with these
// models (core/lifecycle-models/): it checks the move from the state it reads under a row lock
// and writes the audit row and the durable lifecycle event in the caller's transaction; the
// lifecycle relay announces the event after commit. A refused move throws
// FF_TRANSITION_INVALID (409), an unknown job FF_NOT_FOUND (404).
const JOB_MODEL = requireShippedModel('processing-job');
const ORDER_MODEL = requireShippedModel('processing-order');

/** What every processing-job transition records as its source, unless it says otherwise. */
const SOURCE = 'processing flow';

export interface ProcessingJobRow {
  id: string;
  order_id: string;
  order_number: string;
  status: ProcessingStatus;
  stage: string | null;
  completed_stage: string | null;
  progress: number;
  attempts: number;
  fail_reason: string | null;
  next_attempt_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** A claimed job: what the worker sends into the flow. The token proves the claim. */
export interface ProcessingLease {
  id: string;
  lease_token: string;
}

export interface ClaimedProcessingJob extends ProcessingLease {
  order_id: string;
  order_number: string;
  attempts: number;
  completed_stage: string | null;
}

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  category: string;
  stage?: string | null;
  message: string;
  errorCode?: string | null;
  details?: Record<string, unknown> | null;
}

const JOB_COLUMNS = `j.id::text AS id, j.order_id::text AS order_id, o.order_number, j.status, j.stage, j.completed_stage,
  j.progress, j.attempts, j.fail_reason, j.next_attempt_at, j.started_at, j.completed_at, j.created_at, j.updated_at`;

export async function insertLog(
  db: Queryable,
  jobId: string,
  entry: LogEntry,
  flowVersion: string | undefined,
  now: Date,
): Promise<void> {
  await db.query(
    `INSERT INTO processing.processing_job_logs (job_id, level, category, stage, message, error_code, details, flow_version, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      jobId,
      entry.level,
      entry.category,
      entry.stage ?? null,
      entry.message,
      entry.errorCode ?? null,
      entry.details ?? null,
      flowVersion ?? null,
      now,
    ],
  );
}

/**
 * Confirms the order and creates its job (pending, progress 0) in one transaction. The
 * unique order_id makes a second confirmation return the same job. `orderRef` is the
 * order's id or its order_number.
 */
export async function confirmOrder(
  pool: Pool,
  orderRef: string,
  now: Date,
  flowVersion?: string,
  actor?: string,
): Promise<{ job: ProcessingJobRow; created: boolean }> {
  return withTransaction(pool, async (c) => {
    const byId = /^[0-9]{1,18}$/.test(orderRef);
    // NO KEY UPDATE, not UPDATE: a worker changing this order's job in the same moment checks
    // the job's foreign key (KEY SHARE on the order); a full lock here would deadlock with it.
    const found = await c.query<{ id: string; order_number: string; status: string }>(
      `SELECT id::text AS id, order_number, status FROM processing.orders
       WHERE ${byId ? 'id = $1::bigint OR ' : ''}order_number = $1::text FOR NO KEY UPDATE`,
      [orderRef],
    );
    const order = found.rows[0];
    if (!order) throw new FloorflowError('FF_NOT_FOUND', `order ${orderRef} not found`);
    // Confirming a cancelled order is a move its state does not allow, answered as the
    // transition path answers one; a confirmed order is confirmed again as a no-op.
    if (order.status === 'cancelled')
      throw new FloorflowError('FF_TRANSITION_INVALID', `order ${order.order_number} is cancelled`, {
        details: { entityId: order.id, action: 'confirm', from: order.status },
      });
    if (order.status === 'pending') {
      await transition(c, ORDER_MODEL, {
        entityId: order.id,
        action: 'confirm',
        actor,
        source: SOURCE,
        flowVersion,
        at: now,
      });
      await c.query(`UPDATE processing.orders SET confirmed_at = $2 WHERE id = $1`, [order.id, now]);
    }
    const inserted = await c.query<{ id: string }>(
      `INSERT INTO processing.processing_jobs (order_id, status, progress, next_attempt_at, created_at, updated_at)
       VALUES ($1, 'pending', 0, $2, $2, $2) ON CONFLICT (order_id) DO NOTHING RETURNING id::text AS id`,
      [order.id, now],
    );
    const created = inserted.rows.length === 1;
    if (created) {
      await insertLog(
        c,
        inserted.rows[0].id,
        { level: 'info', category: 'order', message: `order ${order.order_number} confirmed; job created` },
        flowVersion,
        now,
      );
    }
    const job = await getJobIn(c, { orderId: order.id });
    return { job: job!, created };
  });
}

async function getJobIn(
  db: Queryable,
  where: { id?: string; orderId?: string },
): Promise<ProcessingJobRow | undefined> {
  const result = await db.query<ProcessingJobRow>(
    `SELECT ${JOB_COLUMNS} FROM processing.processing_jobs j JOIN processing.orders o ON o.id = j.order_id
     WHERE ${where.id !== undefined ? 'j.id = $1' : 'j.order_id = $1'}`,
    [where.id ?? where.orderId],
  );
  return result.rows[0];
}

export async function getJob(pool: Pool, jobId: string): Promise<ProcessingJobRow | undefined> {
  if (!/^[0-9]{1,18}$/.test(jobId)) return undefined;
  return getJobIn(pool, { id: jobId });
}

/**
 * Claims due pending/retry jobs for `owner`, up to `max` running at once for that owner. Each
 * claim counts as an attempt and gets a fresh lease token.
 */
export async function claimJobs(
  pool: Pool,
  options: { owner: string; max: number; now: Date },
): Promise<ClaimedProcessingJob[]> {
  return withTransaction(pool, async (c) => {
    const running = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM processing.processing_jobs WHERE status = 'processing' AND lease_owner = $1`,
      [options.owner],
    );
    const free = Math.max(0, options.max - running.rows[0].n);
    if (free === 0) return [];
    const due = await c.query<{ id: string }>(
      `SELECT id::text AS id FROM processing.processing_jobs
       WHERE status IN ('pending', 'retry') AND next_attempt_at <= $1
       ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [options.now, free],
    );
    const claimed: ClaimedProcessingJob[] = [];
    for (const { id } of due.rows) {
      await transition(c, JOB_MODEL, {
        entityId: id,
        action: 'start',
        actor: options.owner,
        source: SOURCE,
        at: options.now,
      });
      const job = await c.query<ClaimedProcessingJob>(
        `UPDATE processing.processing_jobs j
         SET attempts = j.attempts + 1, lease_owner = $2, lease_token = gen_random_uuid(), started_at = coalesce(j.started_at, $3),
             fail_reason = NULL
         FROM processing.orders o
         WHERE j.id = $1 AND o.id = j.order_id
         RETURNING j.id::text AS id, j.lease_token::text AS lease_token, j.order_id::text AS order_id, o.order_number,
                   j.attempts, j.completed_stage`,
        [id, options.owner, options.now],
      );
      claimed.push(job.rows[0]);
      await insertLog(
        c,
        id,
        {
          level: 'info',
          category: 'worker',
          message: `attempt ${job.rows[0].attempts} started`,
          details: { owner: options.owner },
        },
        undefined,
        options.now,
      );
    }
    return claimed;
  });
}

/** Locks the job if the lease still holds; throws FF_CONFLICT when it was taken back. */
async function holdLease(
  db: Queryable,
  lease: ProcessingLease,
): Promise<{ attempts: number; completed_stage: string | null }> {
  const held = await db.query<{ attempts: number; completed_stage: string | null }>(
    `SELECT attempts, completed_stage FROM processing.processing_jobs
     WHERE id = $1 AND status = 'processing' AND lease_token = $2::uuid FOR UPDATE`,
    [lease.id, lease.lease_token],
  );
  if (held.rows.length === 0) {
    throw new FloorflowError('FF_CONFLICT', `processing job ${lease.id} is no longer held by this attempt`, {
      details: { jobId: lease.id },
    });
  }
  return held.rows[0];
}

export async function orderOf(pool: Pool, jobId: string): Promise<OrderForProcessing> {
  const result = await pool.query<OrderForProcessing>(
    `SELECT o.id::text AS id, o.order_number, o.status, o.details
     FROM processing.processing_jobs j JOIN processing.orders o ON o.id = j.order_id WHERE j.id = $1`,
    [jobId],
  );
  if (!result.rows[0]) throw new FloorflowError('FF_NOT_FOUND', `processing job ${jobId} not found`);
  return result.rows[0];
}

/** Marks a stage as running with its start progress (USB writing starts at 50). */
export async function startStage(
  pool: Pool,
  lease: ProcessingLease,
  stage: ProcessingStage,
  progress: number,
  now: Date,
): Promise<void> {
  await withTransaction(pool, async (c) => {
    await holdLease(c, lease);
    await c.query(
      `UPDATE processing.processing_jobs SET stage = $2, progress = greatest(progress, $3), updated_at = $4 WHERE id = $1`,
      [lease.id, stage, progress, now],
    );
  });
}

/**
 * Records a stage as done: progress, completed_stage and its log row (with the stage's output
 * in details) in one transaction, so a resumed attempt sees either all of it or none.
 */
export async function completeStage(
  pool: Pool,
  lease: ProcessingLease,
  stage: ProcessingStage,
  progress: number,
  log: { message: string; details?: Record<string, unknown> },
  flowVersion: string | undefined,
  now: Date,
): Promise<void> {
  await withTransaction(pool, async (c) => {
    await holdLease(c, lease);
    await c.query(
      `UPDATE processing.processing_jobs SET stage = $2, completed_stage = $2, progress = $3, updated_at = $4 WHERE id = $1`,
      [lease.id, stage, progress, now],
    );
    await insertLog(
      c,
      lease.id,
      {
        level: 'info',
        category: 'stage',
        stage,
        message: log.message,
        details: { progress, ...log.details },
      },
      flowVersion,
      now,
    );
  });
}

/** The details of the stage's "done" log row: a resumed attempt reads earlier stages' output here. */
export async function stageOutput(
  pool: Pool,
  jobId: string,
  stage: ProcessingStage,
): Promise<Record<string, unknown> | undefined> {
  const result = await pool.query<{ details: Record<string, unknown> | null }>(
    `SELECT details FROM processing.processing_job_logs
     WHERE job_id = $1 AND stage = $2 AND category = 'stage' AND level = 'info' ORDER BY id DESC LIMIT 1`,
    [jobId, stage],
  );
  return result.rows[0]?.details ?? undefined;
}

export async function completeJob(
  pool: Pool,
  lease: ProcessingLease,
  flowVersion: string | undefined,
  now: Date,
): Promise<ProcessingJobRow> {
  return withTransaction(pool, async (c) => {
    await holdLease(c, lease);
    await transition(c, JOB_MODEL, {
      entityId: lease.id,
      action: 'complete',
      source: SOURCE,
      flowVersion,
      at: now,
    });
    await c.query(
      `UPDATE processing.processing_jobs SET progress = $2, completed_at = $3, lease_owner = NULL, lease_token = NULL WHERE id = $1`,
      [lease.id, COMPLETED_PROGRESS, now],
    );
    await insertLog(
      c,
      lease.id,
      {
        level: 'info',
        category: 'stage',
        stage: 'completed',
        message: 'job completed',
        details: { progress: COMPLETED_PROGRESS },
      },
      flowVersion,
      now,
    );
    return (await getJobIn(c, { id: lease.id }))!;
  });
}

export type FailureOutcome =
  | { outcome: 'retry'; attempts: number; nextAttemptAt: Date }
  | { outcome: 'failed'; attempts: number }
  | { outcome: 'lease_lost' };

/**
 * Records a failed attempt: fail_reason and a PROCESSING_FAILED error log, then either a
 * retry at the policy's next time or `failed`. A failure reported by an attempt whose lease
 * was taken back changes nothing (the job already belongs to a newer attempt).
 */
export async function failAttempt(
  pool: Pool,
  lease: ProcessingLease,
  error: { message: string; code?: string; stack?: string; stage?: string },
  flowVersion: string | undefined,
  now: Date,
): Promise<FailureOutcome> {
  return withTransaction(pool, async (c) => {
    let held: { attempts: number; completed_stage: string | null };
    try {
      held = await holdLease(c, lease);
    } catch (err) {
      if (err instanceof FloorflowError && err.code === 'FF_CONFLICT')
        return { outcome: 'lease_lost' } as const;
      throw err;
    }
    const decision = retryAfterFailure(held.attempts, { message: error.message, code: error.code });
    // The stage that failed is the one after the last completed one.
    const stage = error.stage ?? stageAfter(held.completed_stage) ?? null;
    const reason = error.message.slice(0, 1000);
    await insertLog(
      c,
      lease.id,
      {
        level: 'error',
        category: 'system',
        stage,
        message: reason,
        errorCode: PROCESSING_FAILED,
        details: {
          error: error.message,
          code: error.code ?? null,
          stack: error.stack ?? null,
          attempt: held.attempts,
          decision,
        },
      },
      flowVersion,
      now,
    );
    if (decision.action === 'retry') {
      const nextAttemptAt = new Date(now.getTime() + decision.delayMs);
      await transition(c, JOB_MODEL, {
        entityId: lease.id,
        action: 'retry',
        reason,
        source: SOURCE,
        flowVersion,
        at: now,
      });
      await c.query(
        `UPDATE processing.processing_jobs SET fail_reason = $2, next_attempt_at = $3, lease_owner = NULL, lease_token = NULL WHERE id = $1`,
        [lease.id, reason, nextAttemptAt],
      );
      return { outcome: 'retry', attempts: held.attempts, nextAttemptAt } as const;
    }
    await transition(c, JOB_MODEL, {
      entityId: lease.id,
      action: 'fail',
      reason,
      source: SOURCE,
      flowVersion,
      at: now,
    });
    await c.query(
      `UPDATE processing.processing_jobs SET completed_at = $2, lease_owner = NULL, lease_token = NULL WHERE id = $1`,
      [lease.id, now],
    );
    return { outcome: 'failed', attempts: held.attempts } as const;
  });
}

/**
 * Takes back jobs in `processing` that match `where` (stuck: no update for too long;
 * orphaned: held by a runtime that is gone). They go to retry, due now, and resume after
 * their last completed stage; a job that already had its last attempt fails.
 */
async function takeBack(
  pool: Pool,
  where: string,
  params: unknown[],
  code: string,
  message: string,
  now: Date,
  flowVersion: string | undefined,
): Promise<string[]> {
  return withTransaction(pool, async (c) => {
    const found = await c.query<{
      id: string;
      attempts: number;
      lease_owner: string | null;
      updated_at: Date;
    }>(
      `SELECT id::text AS id, attempts, lease_owner, updated_at FROM processing.processing_jobs
       WHERE status = 'processing' AND ${where} ORDER BY id FOR UPDATE SKIP LOCKED`,
      params,
    );
    for (const job of found.rows) {
      const decision = retryAfterFailure(job.attempts, { message, code });
      const next = decision.action === 'retry' ? 'retry' : 'failed';
      await transition(c, JOB_MODEL, {
        entityId: job.id,
        action: next === 'retry' ? 'retry' : 'fail',
        reason: message,
        source: SOURCE,
        flowVersion,
        at: now,
      });
      await c.query(
        `UPDATE processing.processing_jobs SET fail_reason = $2, next_attempt_at = $3::timestamptz,
                completed_at = CASE WHEN $4::boolean THEN $3::timestamptz ELSE NULL END, lease_owner = NULL, lease_token = NULL
         WHERE id = $1`,
        [job.id, message, now, next === 'failed'],
      );
      await insertLog(
        c,
        job.id,
        {
          level: 'warn',
          category: 'monitor',
          message,
          errorCode: code,
          details: {
            attempt: job.attempts,
            previousOwner: job.lease_owner,
            lastUpdate: job.updated_at,
            next,
          },
        },
        flowVersion,
        now,
      );
    }
    return found.rows.map((r) => r.id);
  });
}

/** The stuck-job monitor: processing with no update for `stuckAfterMs` goes back to retry. */
export function recoverStuckJobs(
  pool: Pool,
  options: { now: Date; stuckAfterMs: number; flowVersion?: string },
): Promise<string[]> {
  const cutoff = new Date(options.now.getTime() - options.stuckAfterMs);
  return takeBack(
    pool,
    'updated_at < $1',
    [cutoff],
    PROCESSING_STUCK,
    `stuck in processing for more than ${Math.round(options.stuckAfterMs / 1000)} s`,
    options.now,
    options.flowVersion,
  );
}

/**
 * Jobs held by a runtime that is gone are orphans: their owner (`<runtime id>/<worker>`) names a
 * runtime with no live lease in floorflow.leases (killed, or this runtime's previous run). Jobs
 * of other live runtimes on the same database are theirs, and stay. Safe to run on every runtime
 * and at any time: each orphan is locked and taken back once.
 */
export function recoverOrphanedJobs(
  pool: Pool,
  options: { owner: string; now: Date; flowVersion?: string },
): Promise<string[]> {
  return takeBack(
    pool,
    `(lease_owner IS NULL OR (lease_owner <> $1 AND split_part(lease_owner, '/', 1) NOT IN (
       SELECT holder FROM floorflow.leases WHERE starts_with(name, 'runtime/') AND expires_at >= clock_timestamp())))`,
    [options.owner],
    PROCESSING_INTERRUPTED,
    'interrupted: the runtime holding it stopped',
    options.now,
    options.flowVersion,
  );
}

/**
 * When a worker stops (deploy, runtime stop): its jobs go back to retry at once, so the next
 * worker resumes them after their last completed stage instead of waiting for the monitor.
 */
export function releaseJobsOf(
  pool: Pool,
  options: { owner: string; now: Date; flowVersion?: string },
): Promise<string[]> {
  return takeBack(
    pool,
    'lease_owner = $1',
    [options.owner],
    PROCESSING_INTERRUPTED,
    'interrupted: the worker was stopped or redeployed',
    options.now,
    options.flowVersion,
  );
}

export async function queueCounts(pool: Pool): Promise<ProcessingQueueCounts> {
  const byStatus = await pool.query<{ status: string; count: number }>(
    `SELECT status, count(*)::int AS count FROM processing.processing_jobs GROUP BY status ORDER BY status`,
  );
  const duration = await pool.query<{ minutes: number | null }>(
    `SELECT (avg(extract(epoch FROM completed_at - started_at)) / 60)::float8 AS minutes
     FROM processing.processing_jobs WHERE status = 'completed' AND started_at IS NOT NULL`,
  );
  return { byStatus: byStatus.rows, avgDurationMinutes: duration.rows[0]?.minutes ?? null };
}

export interface JobLogRecord extends LogEntry {
  id: string;
  flowVersion: string | null;
  created_at: Date;
}

/** The job's log rows, oldest first (processing_job_logs); undefined for an unknown job. */
export async function jobLogs(db: Queryable, jobId: string): Promise<JobLogRecord[] | undefined> {
  if (!/^[0-9]{1,18}$/.test(jobId)) return undefined;
  const job = await db.query('SELECT 1 FROM processing.processing_jobs WHERE id = $1', [jobId]);
  if (job.rows.length === 0) return undefined;
  const result = await db.query<{
    id: string;
    level: LogEntry['level'];
    category: string;
    stage: string | null;
    message: string;
    error_code: string | null;
    details: Record<string, unknown> | null;
    flow_version: string | null;
    created_at: Date;
  }>(
    `SELECT id::text AS id, level, category, stage, message, error_code, details, flow_version, created_at
     FROM processing.processing_job_logs WHERE job_id = $1 ORDER BY id`,
    [jobId],
  );
  return result.rows.map((r) => ({
    id: r.id,
    level: r.level,
    category: r.category,
    stage: r.stage,
    message: r.message,
    errorCode: r.error_code,
    details: r.details,
    flowVersion: r.flow_version,
    created_at: r.created_at,
  }));
}

/** Log category of a manual recovery, so the job's logs show who ran it again and what it had. */
export const RECOVERY_CATEGORY = 'recovery';

/**
 * Manual recovery of a failed job (the model's `reset`, failed -> pending): the job runs again
 * from its first stage with a fresh set of attempts, due at once. The move, the cleared columns
 * and the log row naming who did it commit together; a job that is not failed is refused
 * (FF_TRANSITION_INVALID), so two people pressing Recover at once reset it once.
 */
export async function resetJob(
  pool: Pool,
  jobId: string,
  note: { actor?: string; now: Date; flowVersion?: string },
): Promise<ProcessingJobRow> {
  if (!/^[0-9]{1,18}$/.test(jobId))
    throw new FloorflowError('FF_NOT_FOUND', `processing job ${jobId} not found`);
  return withTransaction(pool, async (c) => {
    await transition(c, JOB_MODEL, {
      entityId: jobId,
      action: 'reset',
      reason: 'manual recovery',
      actor: note.actor,
      source: 'manual recovery',
      flowVersion: note.flowVersion,
      at: note.now,
    });
    // Read under the row lock the move took, before the columns are cleared.
    const before = await c.query<{
      attempts: number;
      fail_reason: string | null;
      completed_stage: string | null;
    }>(`SELECT attempts, fail_reason, completed_stage FROM processing.processing_jobs WHERE id = $1`, [
      jobId,
    ]);
    await c.query(
      `UPDATE processing.processing_jobs
       SET attempts = 0, progress = 0, stage = NULL, completed_stage = NULL, fail_reason = NULL,
           next_attempt_at = $2, started_at = NULL, completed_at = NULL, lease_owner = NULL, lease_token = NULL,
           updated_at = $2
       WHERE id = $1`,
      [jobId, note.now],
    );
    const previous = before.rows[0];
    await insertLog(
      c,
      jobId,
      {
        level: 'info',
        category: RECOVERY_CATEGORY,
        message: `reset${note.actor ? ` by ${note.actor}` : ''}: runs again from the first stage`,
        details: {
          actor: note.actor ?? null,
          previousAttempts: previous.attempts,
          previousFailReason: previous.fail_reason,
          previousCompletedStage: previous.completed_stage,
        },
      },
      note.flowVersion,
      note.now,
    );
    return (await getJobIn(c, { id: jobId }))!;
  });
}
