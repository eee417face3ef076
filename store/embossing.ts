// All SQL of embossing (docs/embossing.md): selectable plates, jobs and the plates they hold,
// the worker's claim, status changes (each through the one transition path, store/lifecycle.ts
// transition(), so every change is checked, audited and logged as the event the lifecycle
// relay announces after commit) and the machine message log. A change returns the job and the
// transitions it applied; a change the job's state does not allow throws, as transition() does.
import type { Pool, PoolClient } from 'pg';
import { FloorflowError } from '../core/errors';
import type { LifecycleModel } from '../core/lifecycle';
import { requireShippedModel } from '../core/lifecycle-models';
import type { Queryable } from './db';
import { withTransaction } from './db';
import { claimRecord, type LedgerEntry } from './ledger';
import { type AppliedTransition, type TransitionInput, transition } from './lifecycle';

const JOB_MODEL: LifecycleModel = requireShippedModel('embossing-job');
const PLATE_MODEL: LifecycleModel = requireShippedModel('embossing-plate');

/** Plate states a person may pick for embossing. */
export const SELECTABLE_PLATE_STATES = ['in_production', 'ready_for_embossing'] as const;

/**
 * next_attempt_at of a job a worker has claimed or a retry loop holds: the worker's claim
 * ("next_attempt_at <= now") never matches it, so the job is sent by exactly one holder.
 */
const HELD = 'infinity';

export interface Plate {
  id: string;
  plate_number: string;
  batch_code: string | null;
  status: string;
}

export interface EmbossingJob {
  id: string;
  machine_id: string;
  status: string;
  plates: Plate[];
  job_payload: Record<string, unknown> | null;
  machine_response: Record<string, unknown> | null;
  attempts: number;
  last_error: string | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
  sent_at: Date | null;
  completed_at: Date | null;
  /** While the job is at a machine: when its answer is due (moved on by accepted / in_progress). */
  answer_due_at: Date | null;
}

export interface MachineMessage {
  id: string;
  direction: 'in' | 'out';
  machine_id: string;
  job_id: string | null;
  channel: 'mqtt' | 'http' | null;
  topic: string | null;
  payload: unknown;
  result: string | null;
  flow_version: string | null;
  created_at: Date;
}

/** Who changes something, and when (the caller's clock). */
export interface Actor {
  at: Date;
  actor?: string;
  source?: string;
  flowVersion?: string;
}

/**
 * What a change did: the job as it is now and the transitions it applied, in order. A change
 * that cannot be made throws instead and changes nothing: FF_NOT_FOUND (no such job),
 * FF_TRANSITION_INVALID (the job's state does not allow it; `details.from` is that state) or
 * FF_CONFLICT (a plate is taken, or a machine's report is stale or was applied before).
 */
export interface JobChange {
  job: EmbossingJob;
  transitions: AppliedTransition[];
}

/** True for the errors a change throws when it cannot be made: nothing changed. */
export function isRefusedChange(err: unknown): err is FloorflowError {
  return (
    err instanceof FloorflowError &&
    (err.code === 'FF_NOT_FOUND' || err.code === 'FF_TRANSITION_INVALID' || err.code === 'FF_CONFLICT')
  );
}

const JOB_COLUMNS = `j.id::text AS id, j.machine_id, j.status, j.job_payload, j.machine_response, j.attempts,
  j.last_error, j.created_by, j.created_at, j.updated_at, j.sent_at, j.completed_at, j.answer_due_at`;

/** Job states in which a machine holds the job: each has a deadline (answer_due_at). */
export const AT_MACHINE_STATES = ['sent', 'accepted', 'in_progress'] as const;

type JobRow = Omit<EmbossingJob, 'plates'>;

async function platesOf(db: Queryable, jobIds: string[]): Promise<Map<string, Plate[]>> {
  const result = await db.query<Plate & { job_id: string }>(
    `SELECT jp.job_id::text AS job_id, p.id::text AS id, p.plate_number, p.batch_code, p.status
     FROM embossing.embossing_job_plates jp JOIN embossing.plates p ON p.id = jp.plate_id
     WHERE jp.job_id = ANY($1::bigint[]) ORDER BY jp.job_id, p.id`,
    [jobIds],
  );
  const byJob = new Map<string, Plate[]>();
  for (const { job_id, ...plate } of result.rows) {
    const list = byJob.get(job_id) ?? [];
    list.push(plate);
    byJob.set(job_id, list);
  }
  return byJob;
}

async function withPlates(db: Queryable, rows: JobRow[]): Promise<EmbossingJob[]> {
  if (rows.length === 0) return [];
  const plates = await platesOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => ({ ...r, plates: plates.get(r.id) ?? [] }));
}

function isJobId(id: string): boolean {
  return /^[0-9]{1,18}$/.test(id);
}

export async function getJob(db: Queryable, jobId: string): Promise<EmbossingJob | undefined> {
  if (!isJobId(jobId)) return undefined;
  const result = await db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM embossing.embossing_jobs j WHERE j.id = $1`,
    [jobId],
  );
  return (await withPlates(db, result.rows))[0];
}

export async function listJobs(
  db: Queryable,
  filter: { status?: string[]; machineId?: string; limit?: number } = {},
): Promise<EmbossingJob[]> {
  const result = await db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM embossing.embossing_jobs j
     WHERE ($1::text[] IS NULL OR j.status = ANY($1)) AND ($2::text IS NULL OR j.machine_id = $2)
     ORDER BY j.created_at DESC, j.id DESC LIMIT $3`,
    [filter.status ?? null, filter.machineId ?? null, filter.limit ?? 200],
  );
  return withPlates(db, result.rows);
}

/**
 * Plates that may be picked for embossing: in a selectable state, not held by a live job and
 * not marked unavailable. `status` narrows to some of the selectable states.
 */
export async function selectablePlates(db: Queryable, status?: string[]): Promise<Plate[]> {
  const states = (status ?? [...SELECTABLE_PLATE_STATES]).filter((s) =>
    (SELECTABLE_PLATE_STATES as readonly string[]).includes(s),
  );
  const result = await db.query<Plate>(
    `SELECT p.id::text AS id, p.plate_number, p.batch_code, p.status FROM embossing.plates p
     WHERE p.status = ANY($1) AND p.unavailable_reason IS NULL
       AND NOT EXISTS (SELECT 1 FROM embossing.embossing_job_plates jp WHERE jp.plate_id = p.id AND jp.released_at IS NULL)
     ORDER BY p.plate_number, p.id`,
    [states],
  );
  return result.rows;
}

/** A registered machine as the embossing code needs it: presence, announced state, profile and settings. */
export interface EmbossingMachine {
  machineId: string;
  kind: string;
  online: boolean;
  /** The state of its last retained status message, if any. */
  state: string | null;
  profile: string | null;
  settings: Record<string, unknown>;
}

export async function machineOf(db: Queryable, machineId: string): Promise<EmbossingMachine | undefined> {
  const result = await db.query<{
    machine_id: string;
    kind: string;
    online: boolean;
    state: string | null;
    profile: string | null;
    settings: Record<string, unknown> | null;
  }>(
    `SELECT machine_id, kind, online, last_status->>'state' AS state, profile, settings
     FROM floorflow.machines WHERE machine_id = $1`,
    [machineId],
  );
  const row = result.rows[0];
  return (
    row && {
      machineId: row.machine_id,
      kind: row.kind,
      online: row.online,
      state: row.state,
      profile: row.profile,
      settings: row.settings ?? {},
    }
  );
}

/** The transition input for `action` on an entity, by the actor and at its time. */
function step(
  entityId: string,
  action: string,
  by: Actor,
  extra: Partial<TransitionInput> = {},
): TransitionInput {
  return {
    entityId,
    action,
    at: by.at,
    actor: by.actor,
    source: by.source ?? 'embossing',
    flowVersion: by.flowVersion,
    ...extra,
  };
}

/** Refuses a change the job's state does not allow, as transition() refuses one. */
function notFrom(job: EmbossingJob, action: string, why: string): FloorflowError {
  return new FloorflowError('FF_TRANSITION_INVALID', `embossing job ${job.id} is ${job.status}${why}`, {
    details: { entityId: job.id, action, from: job.status },
  });
}

/**
 * Creates one queued job holding the plates and moves them to queued_for_embossing, in one
 * transaction. A plate that is unknown gives FF_NOT_FOUND, one that is not selectable any more
 * FF_CONFLICT; either way nothing is created.
 */
export async function createJob(
  pool: Pool,
  input: { plateIds: string[]; machineId: string; createdBy?: string },
  by: Actor,
): Promise<JobChange> {
  const plateIds = [...new Set(input.plateIds.map(String))];
  if (plateIds.length === 0 || plateIds.some((id) => !isJobId(id))) {
    throw new FloorflowError('FF_INPUT_INVALID', 'plate_ids must hold plate ids');
  }
  try {
    return await withTransaction(pool, async (client) => {
      const machine = await machineOf(client, input.machineId);
      if (!machine || machine.kind !== 'embosser') {
        throw new FloorflowError(
          'FF_INPUT_INVALID',
          `machine_id ${input.machineId} is not a registered embosser`,
        );
      }
      // Locked in id order, so two requests for overlapping plates queue behind each other
      // instead of deadlocking; the second then sees the first's result and gets a conflict.
      const plates = await client.query<Plate & { unavailable_reason: string | null; held: boolean }>(
        `SELECT p.id::text AS id, p.plate_number, p.batch_code, p.status, p.unavailable_reason,
                EXISTS (SELECT 1 FROM embossing.embossing_job_plates jp WHERE jp.plate_id = p.id AND jp.released_at IS NULL) AS held
         FROM embossing.plates p WHERE p.id = ANY($1::bigint[]) ORDER BY p.id FOR UPDATE`,
        [plateIds],
      );
      const found = new Map(plates.rows.map((p) => [p.id, p]));
      const missing = plateIds.filter((id) => !found.has(id));
      if (missing.length > 0)
        throw new FloorflowError('FF_NOT_FOUND', `plate ${missing.join(', ')} not found`);
      const unavailable = plates.rows.filter(
        (p) =>
          p.held ||
          p.unavailable_reason !== null ||
          !(SELECTABLE_PLATE_STATES as readonly string[]).includes(p.status),
      );
      if (unavailable.length > 0) {
        throw new FloorflowError(
          'FF_CONFLICT',
          `plate ${unavailable.map((p) => p.id).join(', ')} is no longer available for embossing`,
        );
      }
      const job = await client.query<{ id: string }>(
        `INSERT INTO embossing.embossing_jobs (machine_id, status, created_by, next_attempt_at)
         VALUES ($1, 'queued', $2, $3) RETURNING id::text AS id`,
        [input.machineId, input.createdBy ?? null, by.at],
      );
      const jobId = job.rows[0].id;
      await client.query(
        `INSERT INTO embossing.embossing_job_plates (job_id, plate_id, previous_status)
         SELECT $1, p.id, p.status FROM embossing.plates p WHERE p.id = ANY($2::bigint[])`,
        [jobId, plateIds],
      );
      const transitions: AppliedTransition[] = [];
      for (const plate of plates.rows)
        transitions.push(await transition(client, PLATE_MODEL, step(plate.id, 'queue', by)));
      const created = await getJob(client, jobId);
      return { job: created!, transitions };
    });
  } catch (err) {
    // The partial unique index on held plates: a concurrent request got there first.
    if ((err as { code?: string }).code === '23505') {
      throw new FloorflowError('FF_CONFLICT', 'a plate is no longer available for embossing');
    }
    throw err;
  }
}

/**
 * Claims up to `max` due queued jobs for one worker (FOR UPDATE SKIP LOCKED): each is held
 * (next_attempt_at = infinity) so no other worker claims it until a retry or a release.
 */
export async function claimJobs(pool: Pool, options: { max: number; now: Date }): Promise<EmbossingJob[]> {
  return withTransaction(pool, async (client) => {
    const claimed = await client.query<JobRow>(
      `UPDATE embossing.embossing_jobs j SET next_attempt_at = '${HELD}', updated_at = $2
       WHERE j.id IN (SELECT id FROM embossing.embossing_jobs
                      WHERE status = 'queued' AND next_attempt_at <= $2
                      ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING ${JOB_COLUMNS}`,
      [options.max, options.now],
    );
    const jobs = await withPlates(
      client,
      claimed.rows.sort((a, b) => Number(a.id) - Number(b.id)),
    );
    return jobs;
  });
}

/**
 * Held queued jobs that no pending retry will send (their worker's runtime stopped between
 * claim and send) go back to the queue. Returns their ids.
 */
export async function releaseOrphanedClaims(pool: Pool, now: Date): Promise<string[]> {
  const result = await pool.query<{ id: string }>(
    `UPDATE embossing.embossing_jobs j SET next_attempt_at = $1, updated_at = $1
     WHERE j.status = 'queued' AND j.next_attempt_at = '${HELD}'
       AND NOT EXISTS (SELECT 1 FROM floorflow.pending_retries r
                       WHERE r.msg->>'queue' = 'embossing' AND r.msg->'payload'->>'id' = j.id::text)
     RETURNING j.id::text AS id`,
    [now],
  );
  return result.rows.map((r) => r.id);
}

/** Puts a held queued job back in the queue, due at `dueAt` (machine offline, or no retry loop waits for it). */
export async function releaseToQueue(
  pool: Pool,
  jobId: string,
  dueAt: Date,
): Promise<EmbossingJob | undefined> {
  const result = await pool.query(
    `UPDATE embossing.embossing_jobs SET next_attempt_at = $2 WHERE id = $1 AND status = 'queued' RETURNING id`,
    [jobId, dueAt],
  );
  return result.rowCount ? getJob(pool, jobId) : undefined;
}

/**
 * Runs `work` on the job, locked for the transaction, and returns the job as it is after it.
 * An unknown job is FF_NOT_FOUND; whatever `work` throws rolls everything back.
 */
async function changeJob(
  pool: Pool,
  jobId: string,
  work: (client: PoolClient, job: EmbossingJob) => Promise<AppliedTransition[]>,
): Promise<JobChange> {
  const notFound = () => new FloorflowError('FF_NOT_FOUND', `embossing job ${jobId} not found`);
  if (!isJobId(jobId)) throw notFound();
  try {
    return await withTransaction(pool, async (client) => {
      const locked = await client.query<JobRow>(
        `SELECT ${JOB_COLUMNS} FROM embossing.embossing_jobs j WHERE j.id = $1 FOR UPDATE`,
        [jobId],
      );
      if (locked.rowCount === 0) throw notFound();
      const [job] = await withPlates(client, locked.rows);
      const transitions = await work(client, job);
      return { job: (await getJob(client, jobId))!, transitions };
    });
  } catch (err) {
    // 23505: the unique index on held plates, when a retry races a new job for the same plate.
    if ((err as { code?: string }).code === '23505') {
      throw new FloorflowError('FF_CONFLICT', 'a plate is no longer available for embossing');
    }
    throw err;
  }
}

async function platesTo(client: PoolClient, job: EmbossingJob, action: string, from: string[], by: Actor) {
  const transitions: AppliedTransition[] = [];
  for (const plate of job.plates) {
    if (from.includes(plate.status))
      transitions.push(await transition(client, PLATE_MODEL, step(plate.id, action, by)));
  }
  return transitions;
}

/** Puts the held plates back where they were before the job and lets go of them. */
async function releasePlates(client: PoolClient, job: EmbossingJob, by: Actor): Promise<AppliedTransition[]> {
  const held = await client.query<{ plate_id: string; previous_status: string | null }>(
    `UPDATE embossing.embossing_job_plates SET released_at = $2 WHERE job_id = $1 AND released_at IS NULL
     RETURNING plate_id::text AS plate_id, previous_status`,
    [job.id, by.at],
  );
  const transitions: AppliedTransition[] = [];
  for (const row of held.rows) {
    const plate = job.plates.find((p) => p.id === row.plate_id);
    if (!plate || !['queued_for_embossing', 'embossing_in_progress'].includes(plate.status)) continue;
    const target =
      row.previous_status && SELECTABLE_PLATE_STATES.some((s) => s === row.previous_status)
        ? row.previous_status
        : 'in_production';
    transitions.push(
      await transition(client, PLATE_MODEL, step(plate.id, 'release', by, { targetState: target })),
    );
  }
  return transitions;
}

/** queued → sent for one attempt: records the payload sent and moves the plates to embossing_in_progress. */
export async function markSent(
  pool: Pool,
  jobId: string,
  payload: Record<string, unknown>,
  by: Actor,
  /** How long the machine has to answer: the deadline is kept with the job, not in a timer. */
  answerWithinMs: number,
): Promise<JobChange> {
  return changeJob(pool, jobId, async (client, job) => {
    const transitions = [await transition(client, JOB_MODEL, step(jobId, 'send', by))];
    await client.query(
      `UPDATE embossing.embossing_jobs SET attempts = attempts + 1, sent_at = $2, job_payload = $3, last_error = NULL,
              answer_due_at = $2::timestamptz + make_interval(secs => $4::double precision / 1000), answer_timeout_ms = $4
       WHERE id = $1`,
      [jobId, by.at, payload, answerWithinMs],
    );
    transitions.push(...(await platesTo(client, job, 'start_embossing', ['queued_for_embossing'], by)));
    return transitions;
  });
}

export type MachineJobStatus = 'accepted' | 'in_progress' | 'completed' | 'failed';

/**
 * Applies what the machine reported. accepted / in_progress / completed move the job forward
 * (completed also marks the plates `plateDoneState` and lets go of them); accepted and
 * in_progress also move the job's deadline on (a repeated in_progress is the machine's
 * heartbeat: it changes no state, only the deadline). failed ends the job as failed with the
 * machine's reason and lets its plates go: the machine may have acted on the command, so
 * only a person sends it again (Retry). A report the job's state does not allow (a replay for
 * a finished job) is a conflict and changes nothing.
 */
export async function applyMachineReport(
  pool: Pool,
  jobId: string,
  report: {
    status: MachineJobStatus;
    response?: Record<string, unknown>;
    error?: string;
    /** The attempt a signed callback answers: any other than the job's current one changes nothing. */
    attempt?: number;
  },
  by: Actor & { plateDoneState?: 'embossed' | 'in_storage' },
  /** The inbox record the report came from: its ledger row commits with the change, or nothing does. */
  record?: LedgerEntry,
): Promise<JobChange> {
  return changeJob(pool, jobId, async (client, job) => {
    if (report.attempt !== undefined && report.attempt !== job.attempts) {
      // Checked under the job's row lock, so a retry cannot start between this check and the change.
      throw new FloorflowError(
        'FF_CONFLICT',
        `attempt ${report.attempt} is not the current attempt of embossing job ${jobId} (${job.attempts})`,
      );
    }
    if (record && !(await claimRecord(client, record, { now: by.at, flowVersion: by.flowVersion }))) {
      throw new FloorflowError('FF_CONFLICT', 'this machine message was applied before');
    }
    const transitions: AppliedTransition[] = [];
    const extendDeadline = () =>
      client.query(
        `UPDATE embossing.embossing_jobs
            SET answer_due_at = $2::timestamptz + make_interval(secs => COALESCE(answer_timeout_ms, 120000)::double precision / 1000)
          WHERE id = $1`,
        [jobId, by.at],
      );
    switch (report.status) {
      case 'accepted':
        transitions.push(await transition(client, JOB_MODEL, step(jobId, 'accept', by)));
        await extendDeadline();
        break;
      case 'in_progress':
        if (job.status !== 'in_progress')
          transitions.push(await transition(client, JOB_MODEL, step(jobId, 'start', by)));
        await extendDeadline();
        break;
      case 'completed': {
        transitions.push(await transition(client, JOB_MODEL, step(jobId, 'complete', by)));
        await client.query(
          `UPDATE embossing.embossing_jobs SET completed_at = $2, machine_response = $3, answer_due_at = NULL WHERE id = $1`,
          [jobId, by.at, report.response ?? null],
        );
        const done = by.plateDoneState === 'in_storage' ? 'store' : 'complete';
        transitions.push(
          ...(await platesTo(client, job, done, ['queued_for_embossing', 'embossing_in_progress'], by)),
        );
        await client.query(
          `UPDATE embossing.embossing_job_plates SET released_at = $2 WHERE job_id = $1 AND released_at IS NULL`,
          [jobId, by.at],
        );
        break;
      }
      case 'failed': {
        const error = report.error ?? 'the machine reported a failure';
        transitions.push(await transition(client, JOB_MODEL, step(jobId, 'fail', by, { reason: error })));
        await client.query(
          `UPDATE embossing.embossing_jobs SET machine_response = $2, last_error = $3, answer_due_at = NULL, next_attempt_at = $4
           WHERE id = $1`,
          [jobId, report.response ?? null, error, by.at],
        );
        transitions.push(...(await releasePlates(client, job, by)));
        break;
      }
    }
    return transitions;
  });
}

async function requeueIn(
  client: PoolClient,
  job: EmbossingJob,
  error: string,
  by: Actor,
): Promise<AppliedTransition[]> {
  const transitions: AppliedTransition[] = [];
  if (job.status !== 'queued')
    transitions.push(await transition(client, JOB_MODEL, step(job.id, 'requeue', by)));
  await client.query(
    `UPDATE embossing.embossing_jobs SET last_error = $2, next_attempt_at = '${HELD}', updated_at = $3, answer_due_at = NULL
     WHERE id = $1`,
    [job.id, error, by.at],
  );
  transitions.push(...(await platesTo(client, job, 'requeue', ['embossing_in_progress'], by)));
  return transitions;
}

/**
 * The command provably did not reach the machine (machine offline, connection refused, not
 * acknowledged): the job goes back to queued, held for the retry loop, with the error. A
 * finished job is a conflict.
 */
export async function markAttemptFailed(
  pool: Pool,
  jobId: string,
  error: string,
  by: Actor,
): Promise<JobChange> {
  return changeJob(pool, jobId, async (client, job) => {
    if (!['queued', 'sent', 'accepted', 'in_progress'].includes(job.status)) {
      throw notFrom(job, 'requeue', ': its attempt is over');
    }
    return requeueIn(client, job, error, by);
  });
}

/**
 * The retry loop gave up (dead letter): the job fails and its plates are selectable again.
 * `expected` limits the states it fails from: a loop that gave up left its job queued, and a
 * job another holder is sending meanwhile is not this loop's to fail.
 */
export async function failJob(
  pool: Pool,
  jobId: string,
  error: string,
  by: Actor,
  expected?: string[],
): Promise<JobChange> {
  return changeJob(pool, jobId, async (client, job) => {
    if (expected && !expected.includes(job.status)) {
      throw notFrom(job, 'fail', `, not ${expected.join(' or ')}`);
    }
    const transitions = [await transition(client, JOB_MODEL, step(jobId, 'fail', by, { reason: error }))];
    await client.query(
      `UPDATE embossing.embossing_jobs SET last_error = $2, next_attempt_at = $3, answer_due_at = NULL WHERE id = $1`,
      [jobId, error, by.at],
    );
    transitions.push(...(await releasePlates(client, job, by)));
    return transitions;
  });
}

/**
 * A person retries a failed job, or one that needs attention: it is queued again (due now).
 * A failed job takes its plates back, if they are still selectable (otherwise it is a
 * conflict and nothing changes); one that needs attention still holds its plates. The attempt
 * count goes on: the machine never sees an attempt number twice for one job.
 */
export async function retryJob(pool: Pool, jobId: string, by: Actor): Promise<JobChange> {
  return changeJob(pool, jobId, async (client, job) => {
    const transitions = [await transition(client, JOB_MODEL, step(jobId, 'retry', by))];
    if (job.status === 'needs_attention') {
      await client.query(
        `UPDATE embossing.embossing_jobs SET next_attempt_at = $2, last_error = NULL, answer_due_at = NULL WHERE id = $1`,
        [jobId, by.at],
      );
      transitions.push(...(await platesTo(client, job, 'requeue', ['embossing_in_progress'], by)));
      return transitions;
    }
    const plateIds = job.plates.map((p) => p.id);
    const plates = await client.query<{
      id: string;
      status: string;
      unavailable_reason: string | null;
      held: boolean;
    }>(
      `SELECT p.id::text AS id, p.status, p.unavailable_reason,
              EXISTS (SELECT 1 FROM embossing.embossing_job_plates jp
                      WHERE jp.plate_id = p.id AND jp.released_at IS NULL AND jp.job_id <> $2) AS held
       FROM embossing.plates p WHERE p.id = ANY($1::bigint[]) ORDER BY p.id FOR UPDATE`,
      [plateIds, jobId],
    );
    const taken = plates.rows.filter(
      (p) =>
        p.held ||
        p.unavailable_reason !== null ||
        !(SELECTABLE_PLATE_STATES as readonly string[]).includes(p.status),
    );
    if (taken.length > 0) {
      throw new FloorflowError(
        'FF_CONFLICT',
        `plate ${taken.map((p) => p.id).join(', ')} is no longer available for embossing`,
      );
    }
    await client.query(
      `UPDATE embossing.embossing_job_plates jp SET released_at = NULL, previous_status = p.status
       FROM embossing.plates p WHERE jp.job_id = $1 AND p.id = jp.plate_id`,
      [jobId],
    );
    await client.query(
      `UPDATE embossing.embossing_jobs SET next_attempt_at = $2, last_error = NULL WHERE id = $1`,
      [jobId, by.at],
    );
    for (const plate of plates.rows)
      transitions.push(await transition(client, PLATE_MODEL, step(plate.id, 'queue', by)));
    return transitions;
  });
}

/** States a person may cancel a job from: every one that is not final. */
export const CANCELLABLE_STATES = ['queued', 'sent', 'accepted', 'in_progress', 'needs_attention', 'failed'];

/**
 * A person cancels a job in any state that is not final; its plates go back to where they
 * were. The first transition's `from` says whether a machine held the job (the embosser then
 * sends the machine its profile's cancel command). A finished job is a conflict.
 */
export async function cancelJob(pool: Pool, jobId: string, by: Actor): Promise<JobChange> {
  return changeJob(pool, jobId, async (client, job) => {
    if (!CANCELLABLE_STATES.includes(job.status)) throw notFrom(job, 'cancel', ' and cannot be cancelled');
    const transitions = [await transition(client, JOB_MODEL, step(jobId, 'cancel', by))];
    await client.query(
      `UPDATE embossing.embossing_jobs SET answer_due_at = NULL, next_attempt_at = $2 WHERE id = $1`,
      [jobId, by.at],
    );
    transitions.push(...(await releasePlates(client, job, by)));
    return transitions;
  });
}

/**
 * A job at a machine whose answer is lost (no answer by its deadline, a command whose delivery
 * is unknown) goes to needs_attention with the reason: its plates stay held, since the machine
 * may have embossed them, until a person retries or cancels it. A job no longer at a machine is
 * a conflict.
 */
export async function markNeedsAttention(
  pool: Pool,
  jobId: string,
  reason: string,
  by: Actor,
): Promise<JobChange> {
  return changeJob(pool, jobId, async (client) => {
    const transitions = [await transition(client, JOB_MODEL, step(jobId, 'attention', by, { reason }))];
    await client.query(
      `UPDATE embossing.embossing_jobs SET last_error = $2, answer_due_at = NULL WHERE id = $1`,
      [jobId, reason],
    );
    return transitions;
  });
}

/**
 * Jobs at a machine past their deadline go to needs_attention, at most `max` per call. Each is
 * claimed with FOR UPDATE SKIP LOCKED, so runtimes sharing the database handle each once, and
 * one whose answer is being applied right now is left to that answer. `reason` words it.
 */
export async function markOverdue(
  pool: Pool,
  by: Actor,
  reason: (job: {
    id: string;
    machine_id: string;
    attempts: number;
    answer_timeout_ms: number | null;
  }) => string,
  max = 50,
): Promise<JobChange[]> {
  return withTransaction(pool, async (client) => {
    const overdue = await client.query<{
      id: string;
      machine_id: string;
      attempts: number;
      answer_timeout_ms: number | null;
    }>(
      `SELECT id::text AS id, machine_id, attempts, answer_timeout_ms FROM embossing.embossing_jobs
       WHERE status IN ('sent', 'accepted', 'in_progress') AND answer_due_at <= $1
       ORDER BY answer_due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [by.at, max],
    );
    const changes: JobChange[] = [];
    for (const row of overdue.rows) {
      const why = reason(row);
      const t = await transition(client, JOB_MODEL, step(row.id, 'attention', by, { reason: why }));
      await client.query(
        `UPDATE embossing.embossing_jobs SET last_error = $2, answer_due_at = NULL WHERE id = $1`,
        [row.id, why],
      );
      changes.push({ job: (await getJob(client, row.id))!, transitions: [t] });
    }
    return changes;
  });
}

/** The states of some jobs, for the embosser to settle the attempts it waits on. */
export async function jobStates(db: Queryable, jobIds: string[]): Promise<Map<string, string>> {
  const result = await db.query<{ id: string; status: string }>(
    `SELECT id::text AS id, status FROM embossing.embossing_jobs WHERE id = ANY($1::bigint[])`,
    [jobIds.filter(isJobId)],
  );
  return new Map(result.rows.map((r) => [r.id, r.status]));
}

/** One message to or from a machine, rejected ones included: every one is logged. */
export async function logMachineMessage(
  db: Queryable,
  message: {
    direction: 'in' | 'out';
    machineId: string;
    jobId?: string | null;
    channel: 'mqtt' | 'http';
    topic?: string;
    payload: unknown;
    result: string;
    flowVersion?: string;
    at: Date;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO embossing.machine_messages (direction, machine_id, job_id, channel, topic, payload, result, flow_version, created_at)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)`,
    [
      message.direction,
      message.machineId,
      message.jobId && isJobId(message.jobId) ? message.jobId : null,
      message.channel,
      message.topic ?? null,
      JSON.stringify(message.payload ?? null),
      message.result,
      message.flowVersion ?? null,
      message.at,
    ],
  );
}

export async function jobMessages(db: Queryable, jobId: string): Promise<MachineMessage[]> {
  if (!isJobId(jobId)) return [];
  const result = await db.query<MachineMessage>(
    `SELECT id::text AS id, direction, machine_id, job_id::text AS job_id, channel, topic, payload, result, flow_version, created_at
     FROM embossing.machine_messages WHERE job_id = $1 ORDER BY id`,
    [jobId],
  );
  return result.rows;
}

/** What became of a callback's nonce: new (go ahead), an exact repeat, reused for another request, or in hand. */
export type NonceClaim =
  | { kind: 'new' }
  | { kind: 'repeat'; status: number; answer: unknown }
  | { kind: 'reused' }
  | { kind: 'in_flight' };

/** A claim without an answer after this long is taken to have died with its request: the next repeat goes ahead. */
const UNANSWERED_CLAIM_MS = 30000;

/**
 * Claims a verified callback's nonce (docs/embossing.md, "The signed callback"). The insert decides races: of two
 * copies of one callback arriving together, one goes ahead and the other waits for its answer.
 */
export async function claimCallbackNonce(
  db: Queryable,
  claim: { machineId: string; nonce: string; path: string; bodySha256: string; at: Date },
): Promise<NonceClaim> {
  const inserted = await db.query(
    `INSERT INTO embossing.callback_nonces (machine_id, nonce, request_path, body_sha256, received_at)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (machine_id, nonce) DO NOTHING`,
    [claim.machineId, claim.nonce, claim.path, claim.bodySha256, claim.at],
  );
  if (inserted.rowCount === 1) return { kind: 'new' };
  const found = await db.query<{
    request_path: string;
    body_sha256: string;
    answer_status: number | null;
    answer: unknown;
    received_at: Date;
  }>(
    `SELECT request_path, body_sha256, answer_status, answer, received_at
     FROM embossing.callback_nonces WHERE machine_id = $1 AND nonce = $2`,
    [claim.machineId, claim.nonce],
  );
  const row = found.rows[0];
  // Deleted by the pruning between the two statements: it was older than the window, so this is stale.
  if (!row || row.request_path !== claim.path || row.body_sha256 !== claim.bodySha256)
    return { kind: 'reused' };
  if (row.answer_status !== null) return { kind: 'repeat', status: row.answer_status, answer: row.answer };
  const retaken = await db.query(
    `UPDATE embossing.callback_nonces SET received_at = $3
     WHERE machine_id = $1 AND nonce = $2 AND answer_status IS NULL AND received_at < $4`,
    [claim.machineId, claim.nonce, claim.at, new Date(claim.at.getTime() - UNANSWERED_CLAIM_MS)],
  );
  return retaken.rowCount === 1 ? { kind: 'new' } : { kind: 'in_flight' };
}

/** Keeps the answer given to a callback, for exact repeats of it. */
export async function recordCallbackAnswer(
  db: Queryable,
  answer: { machineId: string; nonce: string; status: number; body: unknown; at: Date },
): Promise<void> {
  await db.query(
    `UPDATE embossing.callback_nonces SET answered_at = $3, answer_status = $4, answer = $5::jsonb
     WHERE machine_id = $1 AND nonce = $2`,
    [answer.machineId, answer.nonce, answer.at, answer.status, JSON.stringify(answer.body ?? null)],
  );
}

/** Forgets nonces older than the signature window: a callback that old is refused by its timestamp. */
export async function pruneCallbackNonces(db: Queryable, olderThan: Date): Promise<number> {
  const result = await db.query('DELETE FROM embossing.callback_nonces WHERE received_at < $1', [olderThan]);
  return result.rowCount ?? 0;
}
