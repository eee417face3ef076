// The embosser controller behind the floorflow-embosser node: the anti-corruption layer between
// floorflow and its embossing machines (docs/embossing.md). It is the only code that speaks to an embossing machine, and only through the
// machine's profile (core/embossing-profiles): it turns a queued job into the machine's
// command, sends it, logs every message both ways, and turns the machine's answers (MQTT
// events, signed HTTP callbacks) into guarded job changes.
//
// Only a command that provably did not reach the machine (not connected, connection refused,
// not acknowledged) is sent again automatically (a retryable rejection). Once a machine may
// have acted on it, the attempt ends with the job in a state a person acts on: the machine's
// own failure (failed, with its reason) or a lost answer (needs_attention, when the job's
// deadline in the database passes). Re-sending a physical command could emboss a plate twice.
import type { Pool } from 'pg';
import {
  CommandContext,
  EmbosserProfile,
  MachineAnswer,
  MachineCommand,
  SHIPPED_PROFILES,
  commandFor,
  failureReason,
  readAnswer,
} from '../../core/embossing-profiles';
import { FloorflowError } from '../../core/errors';
import { callbackAttempt } from '../../core/machine-callback';
import { parseMachineTopic } from '../../core/topics';
import {
  AT_MACHINE_STATES,
  Actor,
  EmbossingJob,
  EmbossingMachine,
  applyMachineReport,
  getJob,
  isRefusedChange,
  jobStates,
  logMachineMessage,
  machineOf,
  markAttemptFailed,
  markNeedsAttention,
  markOverdue,
  markSent,
  releaseToQueue,
} from '../../store/embossing';
import { isProcessed, recordWithoutEffect, type LedgerEntry } from '../../store/ledger';
import type { Clock, TimerHandle } from '../common/services';

export interface EmbosserSettings {
  /** Profile of machines whose floorflow.machines.profile is empty. */
  defaultProfile: string;
  /** Shipped profiles plus the node's own, by name. */
  profiles: Map<string, EmbosserProfile>;
  /** Overrides every profile's timeout when set. */
  timeoutMs?: number;
  /** An offline machine: fail the attempt (the retry policy decides) or put the job back in the queue. */
  whenOffline: 'fail' | 'wait';
  offlineWaitMs: number;
  plateDoneState: 'embossed' | 'in_storage';
  /** How often the database is asked for jobs past their deadline (default 1000 ms). */
  sweepMs?: number;
}

export interface EmbosserDeps {
  pool: Pool;
  clock: Clock;
  prefix: string;
  flowVersion(): string | undefined;
  /** Hands an MQTT command to the flow (the node's mqtt out wire). */
  publish(topic: string, payload: unknown): void;
  /** fetch for HTTP profiles (injected so tests can stand in for a machine's API). */
  fetch: typeof fetch;
  /**
   * A job's row changed, with or without a transition (an attempt's error, a moved deadline):
   * the pages that show it re-read. Its transitions are the lifecycle relay's to announce.
   */
  jobChanged(job: EmbossingJob): void;
  /** Presence or in-flight count changed: update the node status. */
  statusChanged(): void;
  /** Something went wrong outside any message (the deadline sweep): one line for the log. */
  warn(message: string): void;
}

/** An attempt of this process waiting for its machine; the job's state in the database decides. */
interface InFlight {
  machineId: string;
  resolve(outcome: AttemptOutcome): void;
}

/**
 * How an attempt ended: completed; back in the queue without using an attempt (machine offline,
 * whenOffline "wait"); or with a person (failed by the machine, needs_attention, cancelled).
 */
export type AttemptOutcome =
  | { kind: 'completed'; job: EmbossingJob }
  | { kind: 'requeued'; job: EmbossingJob }
  | { kind: 'with_a_person'; job: EmbossingJob };

/** What became of a machine's answer: applied (the job now), or refused and why, or just a result line. */
interface Answered {
  result: string;
  applied?: EmbossingJob;
  refused?: FloorflowError;
}

/** Swallows a change that could not be made (the job moved on meanwhile); rethrows anything else. */
function unlessRefused(err: unknown): void {
  if (!isRefusedChange(err)) throw err;
}

/** Errors of fetch that mean the request never reached the machine (nothing listened, no route). */
const NOT_REACHED_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function notReached(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' && NOT_REACHED_CODES.has(cause.code);
}

/** The machine answered the command with an error status: it did not take it. */
class NotAcknowledged extends Error {}

export function profilesWith(extra: EmbosserProfile[]): Map<string, EmbosserProfile> {
  return new Map([...SHIPPED_PROFILES, ...extra].map((p) => [p.name, p]));
}

function retryable(
  code: 'FF_MACHINE_OFFLINE' | 'FF_MACHINE_TIMEOUT' | 'FF_MACHINE_FAILED',
  message: string,
  jobId: string,
) {
  return new FloorflowError(code, message, { retryable: true, details: { jobId } });
}

export class EmbosserController {
  private readonly inFlight = new Map<string, InFlight>();
  private sweepTimer?: TimerHandle;
  private sweeping: Promise<void> = Promise.resolve();
  private readonly answering = new Map<string, Promise<void>>();
  /** Last state each machine announced on its status topic. */
  readonly machineStates = new Map<string, string>();
  private closed = false;

  constructor(
    private readonly deps: EmbosserDeps,
    private readonly settings: EmbosserSettings,
  ) {}

  /** What the node shows: each machine's last announced state and how many jobs are at a machine. */
  status(): { fill: 'green' | 'yellow'; shape: 'dot' | 'ring'; text: string } {
    const states = [...this.machineStates.entries()];
    const machines =
      states.length === 0
        ? 'no machine status yet'
        : states
            .slice(0, 3)
            .map(([id, s]) => `${id} ${s}`)
            .join(', ');
    const more = states.length > 3 ? ` +${states.length - 3}` : '';
    const waiting = this.inFlight.size > 0 ? ` · ${this.inFlight.size} at the machine` : '';
    const anyDown = states.some(([, s]) => s === 'offline' || s === 'error');
    return {
      fill: anyDown ? 'yellow' : 'green',
      shape: anyDown ? 'ring' : 'dot',
      text: machines + more + waiting,
    };
  }

  private actor(): Actor {
    return { at: this.deps.clock.now(), source: 'embosser', flowVersion: this.deps.flowVersion() };
  }

  private profileOf(name: string | null): EmbosserProfile {
    const profile = this.settings.profiles.get(name || this.settings.defaultProfile);
    if (!profile)
      throw new FloorflowError(
        'FF_CONFIG_INVALID',
        `no embosser profile "${name || this.settings.defaultProfile}"`,
      );
    return profile;
  }

  private async log(
    message: Omit<Parameters<typeof logMachineMessage>[1], 'at' | 'flowVersion'>,
  ): Promise<void> {
    await logMachineMessage(this.deps.pool, {
      ...message,
      at: this.deps.clock.now(),
      flowVersion: this.deps.flowVersion(),
    });
  }

  /**
   * One attempt at a queued job: checks the machine is there, sends the command and waits until
   * the job leaves the machine. Rejects with a retryable FF_MACHINE_* error only when the command
   * provably did not reach the machine (offline, refused, not acknowledged), and with
   * FF_TRANSITION_INVALID when the job is not queued (cancelled, already finished): no retry can
   * help then. Anything else ends with the job in a state a person acts on (`with_a_person`).
   */
  async attempt(jobId: string): Promise<AttemptOutcome> {
    if (this.closed) throw new FloorflowError('FF_DRAINING', 'the embosser is stopping', { retryable: true });
    const job = await getJob(this.deps.pool, jobId);
    if (!job) throw new FloorflowError('FF_NOT_FOUND', `embossing job ${jobId} not found`);
    if (job.status !== 'queued') {
      throw new FloorflowError(
        'FF_TRANSITION_INVALID',
        `embossing job ${jobId} is ${job.status}, not queued`,
      );
    }
    const machine = await machineOf(this.deps.pool, job.machine_id);
    if (!machine) throw new FloorflowError('FF_NOT_FOUND', `machine ${job.machine_id} is not registered`);
    const profile = this.profileOf(machine.profile);
    const announced = this.machineStates.get(machine.machineId) ?? machine.state;
    // An MQTT machine is there while it holds a connection; an HTTP one unless it said otherwise.
    const offline = announced === 'offline' || (profile.transport === 'mqtt' && !machine.online);
    if (offline) {
      await this.log({
        direction: 'out',
        machineId: machine.machineId,
        jobId,
        channel: profile.transport,
        payload: null,
        result: 'not sent: machine offline',
      });
      if (this.settings.whenOffline === 'wait') {
        const released = await releaseToQueue(
          this.deps.pool,
          jobId,
          new Date(this.deps.clock.now().getTime() + this.settings.offlineWaitMs),
        );
        return { kind: 'requeued', job: released ?? job };
      }
      await markAttemptFailed(this.deps.pool, jobId, `${machine.machineId} is offline`, this.actor()).then(
        (change) => this.deps.jobChanged(change.job),
        unlessRefused,
      );
      throw retryable('FF_MACHINE_OFFLINE', `machine ${machine.machineId} is offline`, jobId);
    }

    let command: MachineCommand;
    try {
      command = commandFor(profile, this.contextOf(job, machine, job.attempts + 1));
    } catch (err) {
      throw new FloorflowError('FF_CONFIG_INVALID', `profile ${profile.name}: ${(err as Error).message}`);
    }
    const payload =
      typeof command.body === 'object' && command.body !== null && !Array.isArray(command.body)
        ? command.body
        : { body: command.body };
    const timeoutMs = this.settings.timeoutMs ?? profile.timeoutMs;
    // The deadline commits with the send: whichever runtime sweeps finds the job if no answer comes.
    // A job no longer queued (cancelled, sent by another holder) throws: the attempt fails.
    this.deps.jobChanged((await markSent(this.deps.pool, jobId, payload, this.actor(), timeoutMs)).job);

    const answered = new Promise<AttemptOutcome>((resolve) => {
      this.inFlight.set(jobId, { machineId: machine.machineId, resolve });
    });
    this.deps.statusChanged();
    try {
      await this.send(command, machine.machineId, jobId);
    } catch (err) {
      this.settle(jobId);
      const message = (err as Error).message;
      if (err instanceof NotAcknowledged || notReached(err)) {
        await markAttemptFailed(
          this.deps.pool,
          jobId,
          `the command did not reach ${machine.machineId}: ${message}`,
          this.actor(),
        ).then((change) => this.deps.jobChanged(change.job), unlessRefused);
        throw retryable(
          'FF_MACHINE_FAILED',
          `the command did not reach ${machine.machineId}: ${message}`,
          jobId,
        );
      }
      // Sent, but whether the machine got it is unknown (a broken connection, no answer in
      // time): it may emboss, so a person decides.
      const now = await markNeedsAttention(
        this.deps.pool,
        jobId,
        `the command to ${machine.machineId} may not have arrived (${message}); check the machine, then retry or cancel the job`,
        this.actor(),
      ).then(
        (change) => {
          this.deps.jobChanged(change.job);
          return change.job;
        },
        // Meanwhile answered or cancelled: the job as it is now.
        async (err: unknown) => {
          unlessRefused(err);
          return (await getJob(this.deps.pool, jobId)) ?? job;
        },
      );
      return { kind: 'with_a_person', job: now };
    }
    return answered;
  }

  private contextOf(job: EmbossingJob, machine: EmbossingMachine, attempt: number): CommandContext {
    return {
      prefix: this.deps.prefix,
      job: { id: job.id, machine_id: job.machine_id, attempts: attempt, created_by: job.created_by },
      plates: job.plates.map((p) => ({ id: p.id, plate_number: p.plate_number, batch_code: p.batch_code })),
      machine: { id: machine.machineId, settings: machine.settings },
      callback_path: `/api/embossing-jobs/callback/${job.id}`,
    };
  }

  private async send(command: MachineCommand, machineId: string, jobId: string): Promise<void> {
    if (command.transport === 'mqtt') {
      await this.log({
        direction: 'out',
        machineId,
        jobId,
        channel: 'mqtt',
        topic: command.target,
        payload: command.body,
        result: 'sent',
      });
      this.deps.publish(command.target, command.body);
      return;
    }
    const abort = new AbortController();
    const timer = this.deps.clock.setTimeout(() => abort.abort(), 30000);
    try {
      const response = await this.deps.fetch(command.target, {
        method: command.method ?? 'POST',
        headers: command.headers,
        body: JSON.stringify(command.body),
        signal: abort.signal,
      });
      const text = await response.text();
      await this.log({
        direction: 'out',
        machineId,
        jobId,
        channel: 'http',
        topic: `${command.method ?? 'POST'} ${command.target}`,
        payload: command.body,
        result: `sent: HTTP ${response.status}${response.ok ? '' : ` ${text.slice(0, 200)}`}`,
      });
      if (!response.ok) throw new NotAcknowledged(`the machine answered HTTP ${response.status}`);
    } catch (err) {
      if (!(err instanceof NotAcknowledged)) {
        const reason = notReached(err)
          ? `connection refused or no such host (${(err as { cause: { code: string } }).cause.code})`
          : abort.signal.aborted
            ? 'no answer from its API within 30 s'
            : (err as Error).message;
        await this.log({
          direction: 'out',
          machineId,
          jobId,
          channel: 'http',
          topic: command.target,
          payload: command.body,
          result: `not sent: ${reason}`,
        });
        if (abort.signal.aborted) throw new Error(reason, { cause: err });
      }
      throw err;
    } finally {
      this.deps.clock.clearTimeout(timer);
    }
  }

  private settle(jobId: string): InFlight | undefined {
    const entry = this.inFlight.get(jobId);
    if (!entry) return undefined;
    this.inFlight.delete(jobId);
    this.deps.statusChanged();
    return entry;
  }

  /** Starts the deadline sweep: at once (jobs overdue while no runtime ran), then every sweepMs. */
  start(): void {
    this.scheduleSweep(0);
  }

  private scheduleSweep(ms: number): void {
    if (this.closed) return;
    this.sweepTimer = this.deps.clock.setTimeout(() => {
      this.sweeping = this.sweep().finally(() => this.scheduleSweep(this.settings.sweepMs ?? 1000));
    }, ms);
  }

  /**
   * Jobs past their deadline need attention (claimed in the database, so with several runtimes
   * each is handled once), and the attempts this process waits on whose job left the machine
   * (answered or swept by another runtime, cancelled) end.
   */
  async sweep(): Promise<void> {
    try {
      const by = this.actor();
      for (;;) {
        const changes = await markOverdue(this.deps.pool, by, (job) => {
          const seconds = Math.round((job.answer_timeout_ms ?? 120000) / 1000);
          return `no answer from ${job.machine_id} within ${seconds} s (attempt ${job.attempts}); it may have embossed the plates: check the machine, then retry or cancel the job`;
        });
        for (const change of changes) this.deps.jobChanged(change.job);
        if (changes.length < 50) break;
      }
      if (this.inFlight.size === 0) return;
      const states = await jobStates(this.deps.pool, [...this.inFlight.keys()]);
      for (const [jobId, state] of states) {
        if ((AT_MACHINE_STATES as readonly string[]).includes(state)) continue;
        const entry = this.settle(jobId);
        const job = entry && (await getJob(this.deps.pool, jobId));
        if (entry && job) entry.resolve({ kind: state === 'completed' ? 'completed' : 'with_a_person', job });
      }
    } catch (err) {
      this.deps.warn(`the deadline check failed: ${(err as Error).message}`);
    }
  }

  /** A retained status or presence message of a machine (<prefix>/machines/<id>/status). */
  noteStatus(machineId: string, payload: unknown): void {
    const state =
      typeof payload === 'object' &&
      payload !== null &&
      typeof (payload as { state?: unknown }).state === 'string'
        ? (payload as { state: string }).state
        : 'unknown';
    this.machineStates.set(machineId, state);
    this.deps.statusChanged();
  }

  /**
   * An MQTT message from a machine: status, or an event about a job. Returns what became of it.
   * An event from the durable inbox (`record`, from a machine-events node) takes effect once: its
   * ledger row commits with the job's change, and one applied before is passed over. Only an
   * embosser's event about one of its own embossing jobs is applied; any other is logged under
   * its machine (never under a job of the same number) and ignored.
   */
  async machineMessage(topic: string, payload: unknown, record?: LedgerEntry): Promise<string> {
    const parsed = parseMachineTopic(this.deps.prefix, topic);
    if (!parsed) return 'ignored: not a machine topic';
    if (parsed.kind === 'status') {
      this.noteStatus(parsed.machineId, payload);
      return 'status';
    }
    if (parsed.kind !== 'event') return 'ignored: not an event';
    return this.inOrder(parsed.machineId, async () => {
      if (record && (await isProcessed(this.deps.pool, record.source_type, record.source_id))) {
        return 'ignored: applied before';
      }
      const machine = await machineOf(this.deps.pool, parsed.machineId);
      if (!machine || machine.kind !== 'embosser') {
        const reason = machine
          ? `${machine.machineId} is an ${machine.kind}, not an embosser`
          : `${parsed.machineId} is not a registered machine`;
        await this.log({
          direction: 'in',
          machineId: parsed.machineId,
          channel: 'mqtt',
          topic,
          payload,
          result: `ignored: ${reason}`,
        });
        if (record)
          await recordWithoutEffect(this.deps.pool, record, 'skipped', reason, {
            now: this.deps.clock.now(),
            flowVersion: this.deps.flowVersion(),
          });
        return `ignored: ${reason}`;
      }
      const profile = this.profileOf(machine.profile);
      const answer = readAnswer(profile, payload);
      return (await this.answer(parsed.machineId, answer, payload, 'mqtt', topic, undefined, record)).result;
    });
  }

  /**
   * A verified callback (the signature, nonce and the job's machine were checked by the callback
   * node). It names the attempt it answers (docs/embossing.md): another attempt's answer changes nothing.
   */
  async callback(
    machineId: string,
    jobId: string,
    body: unknown,
  ): Promise<Answered & { answer?: MachineAnswer; attempt?: number }> {
    return this.inOrder(machineId, async () => {
      const machine = await machineOf(this.deps.pool, machineId);
      const profile = this.profileOf(machine?.profile ?? null);
      const topic = `POST /api/embossing-jobs/callback/${jobId}`;
      const attempt = callbackAttempt(body);
      if (!attempt.ok) {
        await this.log({
          direction: 'in',
          machineId,
          jobId,
          channel: 'http',
          topic,
          payload: body,
          result: `rejected: ${attempt.reason}`,
        });
        return { result: `rejected: ${attempt.reason}` };
      }
      const answer = readAnswer(profile, body, jobId);
      const outcome = await this.answer(machineId, answer, body, 'http', topic, attempt.attempt);
      return { ...outcome, answer, attempt: attempt.attempt };
    });
  }

  /**
   * A verified callback, answered in the API's shape: 200 applied, 409 not allowed now
   * (another attempt's, a finished job), 400 unreadable. A machine that repeats the final report
   * of the job's current attempt (it lost our first answer) gets 200 with the job, as the first
   * delivery did, and changes nothing.
   */
  async callbackAnswer(
    machineId: string,
    jobId: string,
    body: unknown,
  ): Promise<{ statusCode: number; body: Record<string, unknown> }> {
    const { result, applied, refused, answer, attempt } = await this.callback(machineId, jobId, body);
    if (applied) return { statusCode: 200, body: { success: true, data: applied } };
    if (refused?.code === 'FF_NOT_FOUND')
      return { statusCode: 404, body: { success: false, error: refused.message } };
    if (refused) {
      const job = await getJob(this.deps.pool, jobId);
      const repeat =
        job &&
        answer?.ok &&
        (answer.status === 'completed' || answer.status === 'failed') &&
        job.status === answer.status &&
        attempt === job.attempts;
      if (repeat) return { statusCode: 200, body: { success: true, data: job } };
      return { statusCode: 409, body: { success: false, error: refused.message } };
    }
    return { statusCode: 400, body: { success: false, error: result.replace(/^rejected: /, '') } };
  }

  /**
   * A person cancelled a job (the cancel route's second output). If a machine held it and its
   * profile has a cancel command, the machine is told; the cancel itself is already committed,
   * so a machine that cannot be told is logged, not an error. An attempt of this process waiting
   * on the job ends.
   */
  async cancelled(jobId: string, fromState: string | undefined): Promise<string> {
    const entry = this.settle(jobId);
    const job = await getJob(this.deps.pool, jobId);
    if (entry && job) entry.resolve({ kind: 'with_a_person', job });
    if (!job || !['sent', 'accepted', 'in_progress', 'needs_attention'].includes(fromState ?? '')) {
      return 'no machine held the job';
    }
    const machine = await machineOf(this.deps.pool, job.machine_id);
    if (!machine) return 'the machine is not registered';
    const profile = this.profileOf(machine.profile);
    if (!profile.cancel) {
      await this.log({
        direction: 'out',
        machineId: machine.machineId,
        jobId,
        channel: profile.transport,
        payload: null,
        result: `not sent: profile ${profile.name} has no cancel command`,
      });
      return 'the profile has no cancel command';
    }
    try {
      const command = commandFor(profile, this.contextOf(job, machine, job.attempts), profile.cancel);
      await this.send(command, machine.machineId, jobId);
      return 'cancel sent';
    } catch (err) {
      return `cancel not sent: ${(err as Error).message}`;
    }
  }

  /**
   * A machine's messages are handled one after another in arrival order: the input handler
   * runs them concurrently, and "completed" must not overtake "accepted".
   */
  private inOrder<T>(machineId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.answering.get(machineId) ?? Promise.resolve();
    const next = previous.then(work);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.answering.set(machineId, settled);
    void settled.then(() => {
      if (this.answering.get(machineId) === settled) this.answering.delete(machineId);
    });
    return next;
  }

  private async answer(
    machineId: string,
    answer: MachineAnswer,
    payload: unknown,
    channel: 'mqtt' | 'http',
    topic: string,
    attempt?: number,
    record?: LedgerEntry,
  ): Promise<Answered> {
    const logIn = (jobId: string | undefined, result: string) =>
      this.log({ direction: 'in', machineId, jobId, channel, topic, payload, result });
    // An inbox event that takes no effect is recorded too, so no catch-up sends it again.
    const noEffect = async (reason: string) => {
      if (record)
        await recordWithoutEffect(this.deps.pool, record, 'skipped', reason, {
          now: this.deps.clock.now(),
          flowVersion: this.deps.flowVersion(),
        });
    };
    if (!answer.ok) {
      await logIn(answer.jobId, `rejected: ${answer.reason}`);
      await noEffect(answer.reason);
      return { result: `rejected: ${answer.reason}` };
    }
    const job = await getJob(this.deps.pool, answer.jobId);
    if (!job || job.machine_id !== machineId) {
      // Logged under the machine only: a job of this number may belong to another machine.
      const reason = `embossing job ${answer.jobId} is not a job of ${machineId}`;
      await logIn(undefined, `ignored: ${reason}`);
      await noEffect(reason);
      return { result: `ignored: ${reason}` };
    }
    const error = answer.status === 'failed' ? failureReason(machineId, answer.response) : undefined;
    let applied: EmbossingJob;
    try {
      ({ job: applied } = await applyMachineReport(
        this.deps.pool,
        answer.jobId,
        { status: answer.status, response: answer.response, error, attempt },
        {
          ...this.actor(),
          plateDoneState: this.settings.plateDoneState,
        },
        record,
      ));
    } catch (err) {
      // A report the job's state does not allow (a replay for a finished job, another attempt's).
      if (!isRefusedChange(err)) throw err;
      const result = `ignored: ${err.message}`;
      await logIn(answer.jobId, result);
      await noEffect(err.message);
      return { result, refused: err };
    }
    const result = `applied: ${answer.status}`;
    await logIn(answer.jobId, result);
    this.deps.jobChanged(applied);
    if (answer.status === 'completed') {
      this.settle(answer.jobId)?.resolve({ kind: 'completed', job: applied });
    } else if (answer.status === 'failed') {
      // The machine's own failure goes to a person: it may have acted on the command.
      this.settle(answer.jobId)?.resolve({ kind: 'with_a_person', job: applied });
    }
    return { result, applied };
  }

  /**
   * Stops waiting. Attempts in flight are not failed: their jobs stay at the machine with their
   * deadline in the database, and the machine's answer, or the deadline, is handled by whichever
   * embosser runs then.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.deps.clock.clearTimeout(this.sweepTimer);
    this.inFlight.clear();
    await this.sweeping;
  }
}
