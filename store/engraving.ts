// The engraving process in SQL: engraving jobs, their designs, stock, the engraver queue and QA. Every
// status change is a conditional update (WHERE status = ANY($expected)) with a job_events row
// in the same transaction, so two requests, two machines or a replayed event cannot both win.
import type { Pool, PoolClient } from 'pg';
import {
  ACCEPT_TIMEOUT_MS,
  type CancelCommand,
  type EngraveCommand,
  FINAL_STATUSES,
  type EngravingMetrics,
  type EngravingOrder,
  type EngravingStatus,
  type MachineEvent,
  NO_INVENTORY,
  machineErrorOutcome,
  machineFailureReason,
  neverAcknowledgedReason,
  priorityOf,
  qaOutcome,
  silentEngraverReason,
  textProblem,
  unacknowledgedReason,
  workAllowanceMs,
} from '../core/engraving';
import { type EngraverCandidate, chooseEngraver, engraverSettingsOf } from '../core/engraver-choice';
import { FloorflowError } from '../core/errors';
import { requireShippedModel } from '../core/lifecycle-models';
import { isRefusedTransition, transition } from './lifecycle';
import { type Queryable, withTransaction } from './db';
import { claimRecord, finishRecord, type LedgerEntry } from './ledger';

export interface EngravingJobRow {
  id: string;
  customer_id: string;
  item_id: string;
  text: string[];
  font: string | null;
  artwork_url: string | null;
  requires_design: boolean;
  rush: boolean;
  priority: number;
  due_date: Date;
  status: EngravingStatus;
  block_reason: string | null;
  qa_attempts: number;
  machine_id: string | null;
  last_failed_machine: string | null;
  machine_errors: number;
  escalation_reason: string | null;
  created_at: Date;
  updated_at: Date;
  sent_at: Date | null;
  completed_at: Date | null;
  stock_reserved: boolean;
  /** When the engraver holding the job must have acknowledged it, or reported again. */
  deadline_at: Date | null;
  accepted_at: Date | null;
  last_heard_at: Date | null;
  /** Why the job needs a person (needs_attention), in plain words. */
  attention_reason: string | null;
  cancel_reason: string | null;
  estimated_seconds: number | null;
}

export interface DesignRow {
  id: string;
  job_id: string;
  preview_url: string | null;
  status: string;
  feedback: string | null;
  decided_by: string | null;
  decided_at: Date | null;
  created_at: Date;
}

/** Who changed a job and why, for its job_events row. */
export interface ChangeNote {
  reason?: string;
  machineId?: string | null;
  /** The person or API token that made the change (a login's actor name); machines have machineId. */
  actor?: string;
  details?: Record<string, unknown>;
  flowVersion?: string;
  now: Date;
}

const COLUMN_NAMES = [
  'customer_id',
  'item_id',
  'text',
  'font',
  'artwork_url',
  'requires_design',
  'rush',
  'priority',
  'due_date',
  'status',
  'block_reason',
  'qa_attempts',
  'machine_id',
  'last_failed_machine',
  'machine_errors',
  'escalation_reason',
  'created_at',
  'updated_at',
  'sent_at',
  'completed_at',
  'stock_reserved',
  'deadline_at',
  'accepted_at',
  'last_heard_at',
  'attention_reason',
  'cancel_reason',
  'estimated_seconds',
];

function jobColumns(alias = ''): string {
  const a = alias ? `${alias}.` : '';
  return [`${a}id::text AS id`, ...COLUMN_NAMES.map((c) => a + c)].join(', ');
}

const JOB_COLUMNS = jobColumns();

async function recordEvent(
  db: Queryable,
  jobId: string,
  from: string | null,
  to: string,
  note: ChangeNote,
): Promise<void> {
  await db.query(
    `INSERT INTO engraving.job_events (job_id, from_status, to_status, reason, machine_id, details, flow_version, created_at, actor)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      jobId,
      from,
      to,
      note.reason ?? null,
      note.machineId ?? null,
      note.details ?? null,
      note.flowVersion ?? null,
      note.now,
      note.actor ?? null,
    ],
  );
}

export type NotificationEvent = 'design_ready' | 'inventory_depleted' | 'job_complete' | 'job_cancelled';

/** Where a job's design preview is served (core/design-preview, the engraving flow's preview route). */
export function previewPath(jobId: string): string {
  return `/api/engraving-jobs/${jobId}/preview.svg`;
}

/**
 * A customer notification into the outbox (engraving.notifications), in the caller's
 * transaction: it exists exactly when the change it announces committed.
 */
async function notifyCustomer(
  db: Queryable,
  jobId: string,
  event: NotificationEvent,
  payload: Record<string, unknown>,
  now: Date,
): Promise<void> {
  await db.query(
    `INSERT INTO engraving.notifications (job_id, customer_id, event, payload, created_at)
     SELECT id, customer_id, $2, $3, $4 FROM engraving.engraving_jobs WHERE id = $1`,
    [jobId, event, { job_id: Number(jobId), ...payload }, now],
  );
}

const MODEL = requireShippedModel('engraving-job');

/**
 * Moves the job by lifecycle action `action` (core/lifecycle-models/engraving-job.json) through
 * the one transition path (store/lifecycle `transition`: the row locked, the move checked from
 * the state it reads, the audit row and the durable event the lifecycle relay announces after
 * commit), then sets `sets` (column: value) and writes the job_events row, all in the caller's
 * transaction. Returns the updated row; a move the job's state does not allow throws
 * FF_TRANSITION_INVALID (someone else moved it first: 409), an unknown job FF_NOT_FOUND.
 */
async function moveJob(
  c: PoolClient,
  jobId: string,
  action: string,
  sets: Record<string, unknown>,
  note: ChangeNote,
): Promise<EngravingJobRow> {
  const moved = await transition(c, MODEL, {
    entityId: jobId,
    action,
    reason: note.reason ?? action,
    actor: note.actor ?? note.machineId ?? undefined,
    source: 'engraving flow',
    flowVersion: note.flowVersion,
    at: note.now,
  });
  const columns = Object.keys(sets);
  if (columns.length > 0) {
    await c.query(
      `UPDATE engraving.engraving_jobs SET ${columns.map((col, i) => `${col} = $${i + 2}`).join(', ')} WHERE id = $1`,
      [jobId, ...columns.map((col) => sets[col])],
    );
  }
  await recordEvent(c, jobId, moved.from, moved.to, note);
  return (await jobIn(c, jobId))!;
}

async function jobIn(db: Queryable, jobId: string, lock = false): Promise<EngravingJobRow | undefined> {
  if (!/^[0-9]{1,18}$/.test(jobId)) return undefined;
  const result = await db.query<EngravingJobRow>(
    `SELECT ${JOB_COLUMNS} FROM engraving.engraving_jobs WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
    [jobId],
  );
  return result.rows[0];
}

async function requireJob(db: Queryable, jobId: string): Promise<EngravingJobRow> {
  const job = await jobIn(db, jobId, true);
  if (!job) throw new FloorflowError('FF_NOT_FOUND', `engraving job ${jobId} not found`);
  return job;
}

/** Takes one unit of the item's stock if there is one. */
async function reserveStock(db: Queryable, itemId: string, now: Date): Promise<boolean> {
  const reserved = await db.query(
    `UPDATE engraving.items SET stock_available = stock_available - 1, updated_at = $2 WHERE id = $1 AND stock_available >= 1`,
    [itemId, now],
  );
  return reserved.rowCount === 1;
}

/**
 * A job with its stock reserved goes on: with artwork to a design awaiting approval
 * (createDesign; the preview is the artwork until a design service exists), otherwise to the
 * engraver queue.
 */
async function proceedWithStock(
  c: PoolClient,
  job: EngravingJobRow,
  note: ChangeNote,
): Promise<EngravingJobRow> {
  if (job.status === 'blocked') {
    const unblocked = await moveJob(
      c,
      job.id,
      'unblock',
      { block_reason: null, stock_reserved: true, queued_at: note.now },
      note,
    );
    job = unblocked;
  } else {
    await c.query(`UPDATE engraving.engraving_jobs SET stock_reserved = true, queued_at = $2 WHERE id = $1`, [
      job.id,
      note.now,
    ]);
  }
  if (!job.requires_design) return job;
  await moveJob(c, job.id, 'start_design', {}, { ...note, reason: 'artwork needs a design' });
  await c.query(
    `INSERT INTO engraving.designs (job_id, preview_url, status, created_at, updated_at) VALUES ($1, $2, 'pending_approval', $3, $3)`,
    [job.id, job.artwork_url, note.now],
  );
  await notifyCustomer(
    c,
    job.id,
    'design_ready',
    { preview_url: previewPath(job.id), artwork_url: job.artwork_url },
    note.now,
  );
  return await moveJob(c, job.id, 'submit_design', {}, { ...note, reason: 'design ready for approval' });
}

/**
 * validateJob and enqueue: an unknown item or a text too long for the engraving area is
 * rejected (no job); no stock gives a job `blocked` with reason no_inventory. The same
 * idempotency key returns the job it created first.
 */
export async function createEngravingJob(
  pool: Pool,
  order: EngravingOrder,
  options: {
    idempotencyKey?: string;
    actor?: string;
    flowVersion?: string;
    now: Date;
  },
): Promise<{ job: EngravingJobRow; created: boolean }> {
  return withTransaction(pool, async (c) => {
    if (options.idempotencyKey) {
      const existing = await c.query<{ id: string }>(
        `SELECT id::text AS id FROM engraving.engraving_jobs WHERE idempotency_key = $1`,
        [options.idempotencyKey],
      );
      if (existing.rows[0]) return { job: (await jobIn(c, existing.rows[0].id))!, created: false };
    }
    const item = await c.query<{ max_lines: number }>(`SELECT max_lines FROM engraving.items WHERE id = $1`, [
      order.item_id,
    ]);
    if (!item.rows[0]) throw new FloorflowError('FF_INPUT_INVALID', `item ${order.item_id} does not exist`);
    const problem = textProblem(order.text, item.rows[0].max_lines);
    if (problem) throw new FloorflowError('FF_INPUT_INVALID', `rejected: ${problem}`);
    const inserted = await c.query<{ id: string }>(
      `INSERT INTO engraving.engraving_jobs (customer_id, item_id, text, font, artwork_url, requires_design, rush, priority, due_date,
                                             status, block_reason, idempotency_key, created_at, updated_at, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', NULL, $10, $11, $11, $12)
       ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id::text AS id`,
      [
        order.customer_id,
        order.item_id,
        JSON.stringify(order.text),
        order.font ?? null,
        order.artwork_url ?? null,
        Boolean(order.artwork_url),
        order.rush,
        priorityOf(order.rush),
        order.due_date,
        options.idempotencyKey ?? null,
        options.now,
        options.actor ?? null,
      ],
    );
    if (!inserted.rows[0])
      throw new FloorflowError('FF_CONFLICT', 'a request with this idempotency key is in progress');
    const jobId = inserted.rows[0].id;
    const note: ChangeNote = {
      actor: options.actor,
      flowVersion: options.flowVersion,
      now: options.now,
    };
    await recordEvent(c, jobId, null, 'queued', { ...note, reason: 'created' });
    if (!(await reserveStock(c, order.item_id, options.now))) {
      // INVENTORY_DEPLETED: the job waits, blocked, until stock arrives (updateStock).
      const blocked = await moveJob(c, jobId, 'block', {}, { ...note, reason: NO_INVENTORY });
      await notifyCustomer(c, jobId, 'inventory_depleted', { item_id: order.item_id }, options.now);
      return { job: blocked, created: true };
    }
    return {
      job: await proceedWithStock(c, (await jobIn(c, jobId))!, { ...note, reason: 'validated' }),
      created: true,
    };
  });
}

/**
 * Stock arrives: set or add to the item's stock, then resume its no_inventory jobs (rush
 * first, then due date) while stock lasts. Returns the resumed jobs.
 */
export async function updateStock(
  pool: Pool,
  itemId: string,
  change: { add?: number; stock_available?: number },
  options: { actor?: string; flowVersion?: string; now: Date },
): Promise<{ stock_available: number; resumed: EngravingJobRow[] }> {
  return withTransaction(pool, async (c) => {
    const updated = await c.query<{ stock_available: number }>(
      change.add !== undefined
        ? `UPDATE engraving.items SET stock_available = stock_available + $2, updated_at = $3 WHERE id = $1 RETURNING stock_available`
        : `UPDATE engraving.items SET stock_available = $2, updated_at = $3 WHERE id = $1 RETURNING stock_available`,
      [itemId, change.add ?? change.stock_available ?? 0, options.now],
    );
    if (!updated.rows[0]) throw new FloorflowError('FF_NOT_FOUND', `item ${itemId} not found`);
    const blocked = await c.query<{ id: string }>(
      `SELECT id::text AS id FROM engraving.engraving_jobs WHERE item_id = $1 AND status = 'blocked' AND block_reason = $2
       ORDER BY priority, due_date, created_at, id FOR UPDATE SKIP LOCKED`,
      [itemId, NO_INVENTORY],
    );
    const resumed: EngravingJobRow[] = [];
    for (const { id } of blocked.rows) {
      if (!(await reserveStock(c, itemId, options.now))) break;
      const job = (await jobIn(c, id))!;
      resumed.push(
        await proceedWithStock(c, job, {
          reason: 'stock arrived',
          actor: options.actor,
          flowVersion: options.flowVersion,
          now: options.now,
        }),
      );
    }
    const stock = await c.query<{ stock_available: number }>(
      `SELECT stock_available FROM engraving.items WHERE id = $1`,
      [itemId],
    );
    return { stock_available: stock.rows[0].stock_available, resumed };
  });
}

/** The job, locked, if its design awaits a decision; FF_TRANSITION_INVALID (409) otherwise. */
async function awaitingApproval(
  c: PoolClient,
  jobId: string,
  verb: 'approve' | 'reject',
): Promise<EngravingJobRow> {
  const job = await requireJob(c, jobId);
  if (job.status !== 'pending_approval') {
    throw new FloorflowError(
      'FF_TRANSITION_INVALID',
      `cannot ${verb} the design of a job in state "${job.status}"; allowed from "pending_approval"`,
    );
  }
  return job;
}

/** getApproval: the customer approves (or, after the design timeout, the runtime does). */
export async function approveDesign(
  pool: Pool,
  jobId: string,
  options: {
    decidedBy?: string;
    auto?: boolean;
    flowVersion?: string;
    now: Date;
  },
): Promise<EngravingJobRow> {
  return withTransaction(pool, async (c) => {
    await awaitingApproval(c, jobId, 'approve');
    await c.query(
      `UPDATE engraving.designs SET status = $2, decided_by = $3, decided_at = $4, updated_at = $4 WHERE job_id = $1 AND status = 'pending_approval'`,
      [
        jobId,
        options.auto ? 'auto_approved' : 'approved',
        options.decidedBy ?? (options.auto ? 'design timeout' : null),
        options.now,
      ],
    );
    const reason = options.auto ? 'design auto-approved (DESIGN_TIMEOUT)' : 'design approved';
    return await moveJob(
      c,
      jobId,
      'approve',
      { queued_at: options.now },
      {
        reason,
        actor: options.decidedBy,
        flowVersion: options.flowVersion,
        now: options.now,
      },
    );
  });
}

/** requestRevision: the design is rejected; the job ends as revision_requested and its stock is released. */
export async function rejectDesign(
  pool: Pool,
  jobId: string,
  options: {
    decidedBy?: string;
    feedback?: string;
    flowVersion?: string;
    now: Date;
  },
): Promise<EngravingJobRow> {
  return withTransaction(pool, async (c) => {
    const job = await awaitingApproval(c, jobId, 'reject');
    await c.query(
      `UPDATE engraving.designs SET status = 'rejected', decided_by = $2, feedback = $3, decided_at = $4, updated_at = $4
       WHERE job_id = $1 AND status = 'pending_approval'`,
      [jobId, options.decidedBy ?? null, options.feedback ?? null, options.now],
    );
    await c.query(
      `UPDATE engraving.items SET stock_available = stock_available + 1, updated_at = $2 WHERE id = $1`,
      [job.item_id, options.now],
    );
    return await moveJob(
      c,
      jobId,
      'reject',
      { stock_reserved: false },
      {
        reason: 'design rejected',
        actor: options.decidedBy,
        details: options.feedback ? { feedback: options.feedback } : undefined,
        flowVersion: options.flowVersion,
        now: options.now,
      },
    );
  });
}

/** DESIGN_TIMEOUT: approves every design waiting longer than `timeoutMs`. */
export async function autoApproveDesigns(
  pool: Pool,
  options: { timeoutMs: number; flowVersion?: string; now: Date },
): Promise<string[]> {
  const cutoff = new Date(options.now.getTime() - options.timeoutMs);
  const due = await pool.query<{ job_id: string }>(
    `SELECT d.job_id::text AS job_id FROM engraving.designs d JOIN engraving.engraving_jobs j ON j.id = d.job_id
     WHERE d.status = 'pending_approval' AND j.status = 'pending_approval' AND d.created_at <= $1 ORDER BY d.created_at, d.id`,
    [cutoff],
  );
  const approved: string[] = [];
  for (const { job_id } of due.rows) {
    try {
      await approveDesign(pool, job_id, {
        auto: true,
        flowVersion: options.flowVersion,
        now: options.now,
      });
      approved.push(job_id);
    } catch (err) {
      // Approved or rejected by a person meanwhile: theirs is the decision that counts.
      if (!isRefusedTransition(err)) throw err;
    }
  }
  return approved;
}

export interface ClaimedEngraving {
  id: string;
  machine_id: string;
  command: EngraveCommand;
}

/** A command for an engraver that is not a job: cancel, where its settings say it has one. */
export interface EngraverCommand {
  machine_id: string;
  command: CancelCommand;
}

interface OnlineEngraver {
  machine_id: string;
  settings: unknown;
}

/** The engravers that may take work: registered, online, and not reporting error or offline. */
async function onlineEngravers(db: Queryable): Promise<OnlineEngraver[]> {
  const result = await db.query<OnlineEngraver>(
    `SELECT m.machine_id, m.settings FROM floorflow.machines m
     WHERE m.kind = 'engraver' AND m.online AND coalesce(m.last_status->>'state', 'online') NOT IN ('error', 'offline')
     ORDER BY m.machine_id`,
  );
  return result.rows;
}

/** The cancel command for `machineId`, if its settings say it understands one. */
async function cancelCommandFor(
  db: Queryable,
  machineId: string | null,
  jobId: string,
  reason: string,
): Promise<EngraverCommand[]> {
  if (!machineId) return [];
  const row = await db.query<{ settings: unknown }>(
    `SELECT settings FROM floorflow.machines WHERE machine_id = $1`,
    [machineId],
  );
  if (!row.rows[0] || !engraverSettingsOf(row.rows[0].settings).cancelCommand) return [];
  return [{ machine_id: machineId, command: { type: 'cancel', job_id: Number(jobId), reason } }];
}

/**
 * sendToMachine's queue with selectBestMachine: the queued jobs, by priority, due date and age,
 * each go to the engraver core/engraver-choice picks among the online ones (it can engrave the
 * item, it finishes soonest, it did not just fail the job). A job whose best engraver is busy
 * waits for it, and that engraver is kept for it; the next jobs take the others. Each job sent
 * gets its acknowledgement deadline (ACCEPT_TIMEOUT_MS) in the same transaction.
 */
export async function claimEngravingJobs(
  pool: Pool,
  options: { max: number; now: Date; flowVersion?: string },
): Promise<ClaimedEngraving[]> {
  return withTransaction(pool, async (c) => {
    const machines = await onlineEngravers(c);
    if (machines.length === 0) return [];
    const busy = await c.query<{ machine_id: string; started_at: Date; estimated_seconds: number | null }>(
      `SELECT machine_id, coalesce(accepted_at, sent_at, updated_at) AS started_at, estimated_seconds
       FROM engraving.engraving_jobs WHERE status = 'engraving' AND machine_id IS NOT NULL`,
    );
    const busyFor = new Map(
      busy.rows.map((b) => [
        b.machine_id,
        Math.max(0, (b.estimated_seconds ?? 0) - (options.now.getTime() - b.started_at.getTime()) / 1000),
      ]),
    );
    let candidates: EngraverCandidate[] = machines.map((m) => ({
      machineId: m.machine_id,
      settings: engraverSettingsOf(m.settings),
      queueLength: busyFor.has(m.machine_id) ? 1 : 0,
      busyForSeconds: busyFor.get(m.machine_id) ?? 0,
    }));
    const queued = await c.query<{
      id: string;
      lines: number;
      has_artwork: boolean;
      last_failed_machine: string | null;
      requires: unknown;
    }>(
      `SELECT j.id::text AS id, jsonb_array_length(j.text)::int AS lines, j.artwork_url IS NOT NULL AS has_artwork,
              j.last_failed_machine, i.engraving_area->'requires' AS requires
       FROM engraving.engraving_jobs j JOIN engraving.items i ON i.id = j.item_id
       WHERE j.status = 'queued'
       ORDER BY j.priority, j.due_date, j.created_at, j.id LIMIT $1 FOR UPDATE OF j SKIP LOCKED`,
      [Math.max(50, machines.length * 10)],
    );
    const claimed: ClaimedEngraving[] = [];
    for (const row of queued.rows) {
      if (claimed.length >= options.max || !candidates.some((m) => m.queueLength === 0)) break;
      const choice = chooseEngraver(
        {
          lines: row.lines,
          hasArtwork: row.has_artwork,
          requires: Array.isArray(row.requires) ? row.requires.filter((r) => typeof r === 'string') : [],
          lastFailedMachine: row.last_failed_machine,
        },
        candidates,
      );
      if (!choice) continue;
      // The chosen engraver is this job's, free or not: no later job takes it in this round.
      candidates = candidates.filter((m) => m.machineId !== choice.machineId);
      if (busyFor.has(choice.machineId)) continue;
      const job = await moveJob(
        c,
        row.id,
        'send_to_machine',
        {
          machine_id: choice.machineId,
          sent_at: options.now,
          deadline_at: new Date(options.now.getTime() + ACCEPT_TIMEOUT_MS),
          accepted_at: null,
          last_heard_at: null,
          attention_reason: null,
          estimated_seconds: choice.estimatedSeconds,
        },
        {
          reason: 'sent to engraver',
          machineId: choice.machineId,
          details: { estimated_seconds: choice.estimatedSeconds },
          flowVersion: options.flowVersion,
          now: options.now,
        },
      );
      const attempt = (
        await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM engraving.job_events WHERE job_id = $1 AND to_status = 'engraving' AND from_status <> 'engraving'`,
          [job.id],
        )
      ).rows[0].n;
      claimed.push({
        id: job.id,
        machine_id: choice.machineId,
        command: {
          type: 'engrave',
          job_id: Number(job.id),
          item_id: job.item_id,
          text: job.text,
          artwork_url: job.artwork_url,
          font: job.font,
          priority: job.priority,
          attempt,
          estimated_time: choice.estimatedSeconds,
        },
      });
    }
    return claimed;
  });
}

export interface ExpiredDeadlines {
  /** Jobs whose engraver never acknowledged them: back in the queue for another engraver. */
  requeued: string[];
  /** Jobs that now need a person (needs_attention), with the reason. */
  attention: EngravingJobRow[];
  /** Cancel commands for engravers that were sent a job they never acknowledged. */
  commands: EngraverCommand[];
}

/**
 * The durable deadlines of jobs on engravers (deadline_at, in the row, so a restart or another
 * runtime sees them; claimed with SKIP LOCKED, so two runtimes do not both act on one). Past it:
 * - an engraver that never acknowledged the job did not get the command, which is the one case
 *   a job is sent again on its own: back to the queue, for another engraver, and the first one,
 *   where it understands a cancel, is told not to start it late. After MAX_MACHINE_ERRORS such
 *   tries the job needs a person instead;
 * - an engraver that accepted the job and went silent may have engraved it, so a person
 *   decides (needs_attention, with what is known in plain words). Either way the engraver is
 *   free for the next job.
 */
export async function expireEngravingDeadlines(
  pool: Pool,
  options: { flowVersion?: string; now: Date; limit?: number },
): Promise<ExpiredDeadlines> {
  return withTransaction(pool, async (c) => {
    const expired = await c.query<EngravingJobRow>(
      `SELECT ${JOB_COLUMNS} FROM engraving.engraving_jobs
       WHERE status = 'engraving' AND deadline_at <= $1
       ORDER BY deadline_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [options.now, options.limit ?? 100],
    );
    const out: ExpiredDeadlines = { requeued: [], attention: [], commands: [] };
    for (const job of expired.rows) {
      const machineId = job.machine_id ?? 'the engraver';
      const note: ChangeNote = {
        machineId: job.machine_id,
        flowVersion: options.flowVersion,
        now: options.now,
      };
      const afterDeadline = { deadline_at: null };
      if (job.accepted_at) {
        const reason = silentEngraverReason(
          machineId,
          job.accepted_at,
          job.last_heard_at ?? job.accepted_at,
          options.now,
        );
        const moved = await moveJob(
          c,
          job.id,
          'attention',
          { ...afterDeadline, attention_reason: reason },
          { ...note, reason: 'ENGRAVER_SILENT', details: { attention_reason: reason } },
        );
        out.attention.push(moved);
        continue;
      }
      const errors = job.machine_errors + 1;
      const waited = options.now.getTime() - (job.sent_at ?? options.now).getTime();
      if (machineErrorOutcome(errors) === 'escalate') {
        const reason = neverAcknowledgedReason(errors);
        const moved = await moveJob(
          c,
          job.id,
          'attention',
          { ...afterDeadline, machine_errors: errors, attention_reason: reason },
          { ...note, reason: 'ENGRAVER_NO_ANSWER', details: { attention_reason: reason } },
        );
        out.attention.push(moved);
      } else {
        const reason = unacknowledgedReason(machineId, waited);
        const moved = await moveJob(
          c,
          job.id,
          'requeue',
          {
            ...afterDeadline,
            machine_errors: errors,
            last_failed_machine: job.machine_id,
            machine_id: null,
            queued_at: options.now,
          },
          { ...note, reason: 'ENGRAVER_NO_ANSWER: reassign', details: { reason } },
        );
        out.requeued.push(moved.id);
      }
      out.commands.push(
        ...(await cancelCommandFor(c, job.machine_id, job.id, 'not acknowledged in time; sent elsewhere')),
      );
    }
    return out;
  });
}

export type MachineEventResult =
  | { result: 'ignored'; reason: string }
  | { result: 'logged'; job: EngravingJobRow }
  | { result: 'qa' | 'attention'; job: EngravingJobRow };

/**
 * An engraver's event. On the job it holds: accepted and in_progress are its heartbeat and push
 * the job's deadline on by the work allowance; completed goes to QA; failed goes to a person
 * (needs_attention, the machine's reason in plain words), never back to an engraver on its
 * own: the machine may have marked the item already. A completed from the engraver of a job
 * that went to needs_attention after its deadline still moves it to QA. Anything else (no such
 * engraving job, a job on another engraver) changes nothing and says why.
 * An event from the inbox (`record`) is claimed in the ledger first, and recorded as skipped when it
 * is ignored, in the same transaction as its effect.
 */
export async function applyMachineEvent(
  pool: Pool,
  machineId: string,
  event: MachineEvent,
  options: { flowVersion?: string; now: Date; record?: LedgerEntry },
): Promise<MachineEventResult> {
  return withTransaction(pool, async (c) => {
    const { record } = options;
    if (record && !(await claimRecord(c, record, options))) {
      return { result: 'ignored', reason: 'this machine event was applied before' };
    }
    const ignored = async (reason: string): Promise<MachineEventResult> => {
      if (record) await finishRecord(c, record, 'skipped', reason);
      return { result: 'ignored', reason };
    };
    const job = await jobIn(c, String(event.job_id), true);
    if (!job)
      return ignored(
        `${machineId} reported "${event.status}" for engraving job ${event.job_id}, which does not exist`,
      );
    const holds = job.machine_id === machineId;
    const late = holds && job.status === 'needs_attention';
    if (!holds || (job.status !== 'engraving' && !late)) {
      return ignored(
        `${machineId} reported "${event.status}" for engraving job ${job.id}, which is ${job.status} on ${job.machine_id ?? 'no engraver'}`,
      );
    }
    const note: ChangeNote = {
      machineId,
      details: event.response,
      flowVersion: options.flowVersion,
      now: options.now,
    };
    if (event.status === 'completed') {
      return {
        result: 'qa',
        job: await moveJob(
          c,
          job.id,
          'finish_engraving',
          { deadline_at: null, last_heard_at: options.now, attention_reason: null },
          { ...note, reason: late ? 'engraved (reported after the deadline)' : 'engraved' },
        ),
      };
    }
    if (late) {
      await recordEvent(c, job.id, job.status, job.status, {
        ...note,
        reason: `machine ${event.status.replace('_', ' ')} (after the deadline)`,
      });
      return { result: 'logged', job };
    }
    if (event.status === 'accepted' || event.status === 'in_progress') {
      await c.query(
        `UPDATE engraving.engraving_jobs SET accepted_at = coalesce(accepted_at, $2), last_heard_at = $2, deadline_at = $3
         WHERE id = $1`,
        [job.id, options.now, new Date(options.now.getTime() + workAllowanceMs(job.estimated_seconds))],
      );
      await recordEvent(c, job.id, 'engraving', 'engraving', {
        ...note,
        reason: event.status === 'accepted' ? 'machine accepted' : 'machine in progress',
      });
      return { result: 'logged', job: (await jobIn(c, job.id))! };
    }
    const reason = machineFailureReason(machineId, event.response);
    const failed = await moveJob(
      c,
      job.id,
      'attention',
      {
        machine_errors: job.machine_errors + 1,
        deadline_at: null,
        last_heard_at: options.now,
        attention_reason: reason,
      },
      { ...note, reason: 'MACHINE_ERROR' },
    );
    return { result: 'attention', job: failed };
  });
}

/**
 * An operator cancels a job in any state that is not final: its reserved stock goes back, a
 * pending design is closed, and an engraver that holds it (engraving, or needs_attention after
 * its deadline) is told to stop where its settings say it understands a cancel command.
 */
export async function cancelEngravingJob(
  pool: Pool,
  jobId: string,
  options: {
    reason?: string;
    actor?: string;
    flowVersion?: string;
    now: Date;
  },
): Promise<{ job: EngravingJobRow; commands: EngraverCommand[] }> {
  return withTransaction(pool, async (c) => {
    const job = await requireJob(c, jobId);
    if (FINAL_STATUSES.includes(job.status))
      throw new FloorflowError(
        'FF_TRANSITION_INVALID',
        `engraving job ${jobId} is ${job.status} and cannot be cancelled`,
      );
    const reason = options.reason ?? 'cancelled by an operator';
    const holder = job.status === 'engraving' || job.status === 'needs_attention' ? job.machine_id : null;
    if (job.stock_reserved)
      await c.query(
        `UPDATE engraving.items SET stock_available = stock_available + 1, updated_at = $2 WHERE id = $1`,
        [job.item_id, options.now],
      );
    await c.query(
      `UPDATE engraving.designs SET status = 'cancelled', updated_at = $2 WHERE job_id = $1 AND status = 'pending_approval'`,
      [jobId, options.now],
    );
    const cancelled = await moveJob(
      c,
      jobId,
      'cancel',
      { stock_reserved: false, deadline_at: null, cancel_reason: reason },
      {
        reason: 'cancelled',
        actor: options.actor,
        machineId: holder,
        details: { reason },
        flowVersion: options.flowVersion,
        now: options.now,
      },
    );
    await notifyCustomer(c, jobId, 'job_cancelled', { reason }, options.now);
    return { job: cancelled, commands: await cancelCommandFor(c, holder, jobId, reason) };
  });
}

/**
 * An operator sends a job that needs attention to an engraver again; the engraver that had it
 * is avoided while another can take it (MACHINE_ERROR's reassignment to a backup machine,
 * here a person's decision because the first machine may have marked the item).
 */
export async function retryEngravingJob(
  pool: Pool,
  jobId: string,
  options: { actor?: string; flowVersion?: string; now: Date },
): Promise<EngravingJobRow> {
  return withTransaction(pool, async (c) => {
    const job = await requireJob(c, jobId);
    if (job.status !== 'needs_attention')
      throw new FloorflowError(
        'FF_TRANSITION_INVALID',
        `cannot retry engraving job ${jobId} in state "${job.status}"; allowed from "needs_attention"`,
      );
    return await moveJob(
      c,
      jobId,
      'retry',
      {
        machine_id: null,
        last_failed_machine: job.machine_id ?? job.last_failed_machine,
        attention_reason: null,
        queued_at: options.now,
      },
      {
        reason: 'retried by an operator',
        actor: options.actor,
        details: job.attention_reason ? { after: job.attention_reason } : undefined,
        flowVersion: options.flowVersion,
        now: options.now,
      },
    );
  });
}

/**
 * requestRevision's answer: the revised design (new artwork, text or font) for a job whose
 * design was rejected goes back for approval as a new design record. The stock the rejection
 * returned is reserved again; without stock the job waits blocked (no_inventory) and comes
 * back for approval when stock arrives.
 */
export async function submitRevisedDesign(
  pool: Pool,
  jobId: string,
  revision: { artwork_url?: string; text?: string[]; font?: string; notes?: string },
  options: { actor?: string; flowVersion?: string; now: Date },
): Promise<EngravingJobRow> {
  return withTransaction(pool, async (c) => {
    const job = await requireJob(c, jobId);
    if (job.status !== 'revision_requested')
      throw new FloorflowError(
        'FF_TRANSITION_INVALID',
        `cannot submit a revised design for engraving job ${jobId} in state "${job.status}"; allowed from "revision_requested"`,
      );
    if (revision.text) {
      const item = await c.query<{ max_lines: number }>(
        `SELECT max_lines FROM engraving.items WHERE id = $1`,
        [job.item_id],
      );
      const problem = textProblem(revision.text, item.rows[0].max_lines);
      if (problem) throw new FloorflowError('FF_INPUT_INVALID', `rejected: ${problem}`);
    }
    await c.query(
      `UPDATE engraving.engraving_jobs SET artwork_url = coalesce($2, artwork_url), text = coalesce($3, text),
              font = coalesce($4, font), requires_design = true WHERE id = $1`,
      [
        jobId,
        revision.artwork_url ?? null,
        revision.text ? JSON.stringify(revision.text) : null,
        revision.font ?? null,
      ],
    );
    const note: ChangeNote = {
      actor: options.actor,
      details: revision.notes ? { notes: revision.notes } : undefined,
      flowVersion: options.flowVersion,
      now: options.now,
    };
    const designing = await moveJob(c, jobId, 'revise', {}, { ...note, reason: 'revised design submitted' });
    if (!(await reserveStock(c, designing.item_id, options.now))) {
      await notifyCustomer(c, jobId, 'inventory_depleted', { item_id: designing.item_id }, options.now);
      return await moveJob(c, jobId, 'block', {}, { ...note, reason: NO_INVENTORY });
    }
    await c.query(`UPDATE engraving.engraving_jobs SET stock_reserved = true WHERE id = $1`, [jobId]);
    await c.query(
      `INSERT INTO engraving.designs (job_id, preview_url, status, created_at, updated_at) VALUES ($1, $2, 'pending_approval', $3, $3)`,
      [jobId, designing.artwork_url, options.now],
    );
    await notifyCustomer(
      c,
      jobId,
      'design_ready',
      { preview_url: previewPath(jobId), artwork_url: designing.artwork_url, revised: true },
      options.now,
    );
    return await moveJob(
      c,
      jobId,
      'submit_design',
      {},
      { ...note, reason: 'revised design ready for approval' },
    );
  });
}

/** qualityCheck: a pass completes the job; a failure re-engraves, or escalates on the third. */
export async function recordQa(
  pool: Pool,
  jobId: string,
  result: {
    passed: boolean;
    inspector?: string;
    notes?: string;
    /** A failure the inspector sends to a manager at once (the item cannot be re-engraved). */
    escalate?: boolean;
  },
  options: { flowVersion?: string; now: Date },
): Promise<{ job: EngravingJobRow; outcome: 'complete' | 'reengrave' | 'escalate'; attempt: number }> {
  return withTransaction(pool, async (c) => {
    const job = await requireJob(c, jobId);
    if (job.status !== 'qa')
      throw new FloorflowError(
        'FF_TRANSITION_INVALID',
        `cannot record QA for a job in state "${job.status}"; allowed from "qa"`,
      );
    const attempt = job.qa_attempts + 1;
    await c.query(
      `INSERT INTO engraving.qa_results (job_id, attempt, passed, inspector, notes, flow_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        jobId,
        attempt,
        result.passed,
        result.inspector ?? null,
        result.notes ?? null,
        options.flowVersion ?? null,
        options.now,
      ],
    );
    const forced = !result.passed && result.escalate === true;
    const outcome = forced ? 'escalate' : qaOutcome(attempt, result.passed);
    const note: ChangeNote = {
      actor: result.inspector,
      details: { attempt, passed: result.passed },
      flowVersion: options.flowVersion,
      now: options.now,
    };
    let updated: EngravingJobRow;
    if (outcome === 'complete') {
      updated = await moveJob(
        c,
        jobId,
        'pass_qa',
        { qa_attempts: attempt, completed_at: options.now },
        { ...note, reason: 'QA passed' },
      );
      await notifyCustomer(c, jobId, 'job_complete', { item_id: job.item_id }, options.now);
    } else if (outcome === 'reengrave') {
      updated = await moveJob(
        c,
        jobId,
        'requeue',
        { qa_attempts: attempt, machine_id: null, queued_at: options.now },
        { ...note, reason: 'QA_FAILED: re-engrave' },
      );
    } else {
      updated = await moveJob(
        c,
        jobId,
        'escalate',
        {
          qa_attempts: attempt,
          escalation_reason: forced
            ? `QA failed and escalated by ${result.inspector ?? 'the inspector'}${result.notes ? `: ${result.notes}` : ''}`
            : `QA failed ${attempt} times`,
        },
        { ...note, reason: 'QA_FAILED: escalate' },
      );
    }
    return { job: updated, outcome, attempt };
  });
}

export async function getEngravingJob(
  pool: Pool,
  jobId: string,
): Promise<
  | {
      job: EngravingJobRow;
      design: DesignRow | null;
      qa: Array<{ attempt: number; passed: boolean; created_at: Date }>;
      queuePosition: number | null;
    }
  | undefined
> {
  const job = await jobIn(pool, jobId);
  if (!job) return undefined;
  const design = await pool.query<DesignRow>(
    `SELECT id::text AS id, job_id::text AS job_id, preview_url, status, feedback, decided_by, decided_at, created_at
     FROM engraving.designs WHERE job_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1`,
    [jobId],
  );
  const qa = await pool.query<{ attempt: number; passed: boolean; created_at: Date }>(
    `SELECT attempt, passed, created_at FROM engraving.qa_results WHERE job_id = $1 ORDER BY attempt`,
    [jobId],
  );
  const queue = await engravingQueue(pool);
  const position = queue.find((q) => q.id === jobId)?.position ?? null;
  return { job, design: design.rows[0] ?? null, qa: qa.rows, queuePosition: position };
}

export interface QueueEntry {
  position: number;
  id: string;
  customer_id: string;
  item_id: string;
  rush: boolean;
  priority: number;
  due_date: Date;
  created_at: Date;
}

/** The jobs waiting for an engraver, in the order they will be sent. */
export async function engravingQueue(pool: Pool): Promise<QueueEntry[]> {
  const result = await pool.query<QueueEntry>(
    `SELECT row_number() OVER (ORDER BY priority, due_date, created_at, id)::int AS position, id::text AS id, customer_id, item_id,
            rush, priority, due_date, created_at
     FROM engraving.engraving_jobs WHERE status = 'queued' ORDER BY position`,
  );
  return result.rows;
}

export async function statusCounts(pool: Pool): Promise<Record<string, number>> {
  const result = await pool.query<{ status: string; count: number }>(
    `SELECT status, count(*)::int AS count FROM engraving.engraving_jobs GROUP BY status`,
  );
  return Object.fromEntries(result.rows.map((r) => [r.status, r.count]));
}

/** The engraving gauges the dashboards show; "today" is the UTC day of `now`. */
export async function engravingMetrics(pool: Pool, now: Date): Promise<EngravingMetrics> {
  const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const result = await pool.query<{
    queued: number;
    processing: number;
    completed_today: number;
    avg_minutes: number | null;
    qa_total: number;
    qa_passed: number;
    rush: number;
    total: number;
  }>(
    `SELECT
       (SELECT count(*)::int FROM engraving.engraving_jobs WHERE status = 'queued') AS queued,
       (SELECT count(*)::int FROM engraving.engraving_jobs WHERE status IN ('designing', 'pending_approval', 'engraving', 'qa')) AS processing,
       (SELECT count(*)::int FROM engraving.engraving_jobs WHERE status = 'complete' AND completed_at >= $1) AS completed_today,
       (SELECT (avg(extract(epoch FROM completed_at - created_at)) / 60)::float8 FROM engraving.engraving_jobs
          WHERE status = 'complete' AND completed_at >= $1) AS avg_minutes,
       (SELECT count(*)::int FROM engraving.qa_results) AS qa_total,
       (SELECT count(*)::int FROM engraving.qa_results WHERE passed) AS qa_passed,
       (SELECT count(*)::int FROM engraving.engraving_jobs WHERE rush) AS rush,
       (SELECT count(*)::int FROM engraving.engraving_jobs) AS total`,
    [dayStart],
  );
  const r = result.rows[0];
  const percent = (part: number, whole: number) =>
    whole === 0 ? null : Math.round((part / whole) * 1000) / 10;
  return {
    jobs_in_queue: r.queued,
    jobs_processing: r.processing,
    jobs_completed_today: r.completed_today,
    average_completion_minutes: r.avg_minutes === null ? null : Math.round(r.avg_minutes * 100) / 100,
    qa_pass_rate: percent(r.qa_passed, r.qa_total),
    rush_order_percentage: percent(r.rush, r.total),
  };
}

export async function jobEvents(
  pool: Pool,
  jobId: string,
): Promise<
  Array<{ from_status: string | null; to_status: string; reason: string | null; machine_id: string | null }>
> {
  const result = await pool.query<{
    from_status: string | null;
    to_status: string;
    reason: string | null;
    machine_id: string | null;
  }>(
    `SELECT from_status, to_status, reason, machine_id FROM engraving.job_events WHERE job_id = $1 ORDER BY id`,
    [jobId],
  );
  return result.rows;
}
