// The embosser controller behind the floorflow-embosser node: the anti-corruption layer of
// seed 000 §7. It is the only code that speaks to an embossing machine, and only through the
// machine's profile (core/embossing-profiles): it turns a queued job into the machine's
// command, sends it, logs every message both ways, and turns the machine's answers (MQTT
// events, signed HTTP callbacks) into guarded job changes. An attempt ends when the machine
// reports completed (resolves) or failed, or says nothing in time (rejects, retryable).
import type { Pool } from 'pg';
import {
  EmbosserProfile,
  MachineAnswer,
  MachineCommand,
  SHIPPED_PROFILES,
  commandFor,
  readAnswer,
} from '../core/embossing-profiles';
import { FloorflowError } from '../core/errors';
import { callbackAttempt } from '../core/machine-callback';
import { parseMachineTopic } from '../core/topics';
import {
  Actor,
  Change,
  EmbossingJob,
  applyMachineReport,
  getJob,
  logMachineMessage,
  machineOf,
  markAttemptFailed,
  markSent,
  releaseToQueue,
} from '../store/embossing';
import { isProcessed, recordWithoutEffect, type LedgerEntry } from '../store/ledger';
import type { Clock, TimerHandle } from './services';

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
  /** A change was applied: announce it. */
  changed(change: Change & { kind: 'applied' }): void;
  /** Presence or in-flight count changed: update the node status. */
  statusChanged(): void;
}

interface InFlight {
  machineId: string;
  timer: TimerHandle;
  resolve(job: EmbossingJob): void;
  reject(err: FloorflowError): void;
}

export type AttemptOutcome =
  { kind: 'completed'; job: EmbossingJob } | { kind: 'requeued'; job: EmbossingJob };

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
   * One attempt at a queued job: checks the machine is there, sends the command and waits for
   * the machine's final answer. Rejects with a retryable FF_MACHINE_* error when the machine is
   * offline, fails or does not answer in time, and FF_TRANSITION_INVALID when the job is not
   * queued (cancelled, already finished): no retry can help then.
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
      const change = await markAttemptFailed(this.deps.pool, jobId, 'machine offline', this.actor());
      if (change.kind === 'applied') this.deps.changed(change);
      throw retryable('FF_MACHINE_OFFLINE', `machine ${machine.machineId} is offline`, jobId);
    }

    let command: MachineCommand;
    try {
      command = commandFor(profile, {
        prefix: this.deps.prefix,
        job: {
          id: job.id,
          machine_id: job.machine_id,
          attempts: job.attempts + 1,
          created_by: job.created_by,
        },
        plates: job.plates.map((p) => ({ id: p.id, plate_number: p.plate_number, batch_code: p.batch_code })),
        machine: { id: machine.machineId, settings: machine.settings },
        callback_path: `/api/embossing-jobs/callback/${job.id}`,
      });
    } catch (err) {
      throw new FloorflowError('FF_CONFIG_INVALID', `profile ${profile.name}: ${(err as Error).message}`);
    }
    const payload =
      typeof command.body === 'object' && command.body !== null && !Array.isArray(command.body)
        ? command.body
        : { body: command.body };
    const sent = await markSent(this.deps.pool, jobId, payload, this.actor());
    if (sent.kind !== 'applied') {
      throw new FloorflowError('FF_TRANSITION_INVALID', `embossing job ${jobId}: ${sent.reason}`);
    }
    this.deps.changed(sent);

    const timeoutMs = this.settings.timeoutMs ?? profile.timeoutMs;
    const answered = new Promise<EmbossingJob>((resolve, reject) => {
      const timer = this.deps.clock.setTimeout(() => void this.timedOut(jobId, timeoutMs), timeoutMs);
      this.inFlight.set(jobId, { machineId: machine.machineId, timer, resolve, reject });
    });
    this.deps.statusChanged();
    try {
      await this.send(command, machine.machineId, jobId);
    } catch (err) {
      this.settle(jobId);
      const change = await markAttemptFailed(this.deps.pool, jobId, (err as Error).message, this.actor());
      if (change.kind === 'applied') this.deps.changed(change);
      throw retryable(
        'FF_MACHINE_FAILED',
        `sending to ${machine.machineId} failed: ${(err as Error).message}`,
        jobId,
      );
    }
    return { kind: 'completed', job: await answered };
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
      if (!response.ok) throw new Error(`the machine answered HTTP ${response.status}`);
    } catch (err) {
      if (!(err instanceof Error && /answered HTTP/.test(err.message))) {
        await this.log({
          direction: 'out',
          machineId,
          jobId,
          channel: 'http',
          topic: command.target,
          payload: command.body,
          result: `not sent: ${(err as Error).message}`,
        });
      }
      throw err;
    } finally {
      this.deps.clock.clearTimeout(timer);
    }
  }

  private settle(jobId: string): InFlight | undefined {
    const entry = this.inFlight.get(jobId);
    if (!entry) return undefined;
    this.deps.clock.clearTimeout(entry.timer);
    this.inFlight.delete(jobId);
    this.deps.statusChanged();
    return entry;
  }

  private async timedOut(jobId: string, timeoutMs: number): Promise<void> {
    const entry = this.inFlight.get(jobId);
    if (!entry) return;
    this.inFlight.delete(jobId);
    this.deps.statusChanged();
    try {
      const change = await markAttemptFailed(
        this.deps.pool,
        jobId,
        `no answer within ${timeoutMs / 1000} s`,
        this.actor(),
      );
      if (change.kind === 'applied') this.deps.changed(change);
      // The answer may have been applied by another runtime (or just now): a finished job stands.
      if (change.kind === 'conflict' && change.job.status === 'completed') return entry.resolve(change.job);
      entry.reject(
        retryable(
          'FF_MACHINE_TIMEOUT',
          `machine ${entry.machineId} did not answer within ${timeoutMs / 1000} s`,
          jobId,
        ),
      );
    } catch (err) {
      entry.reject(
        retryable(
          'FF_MACHINE_TIMEOUT',
          `timeout of job ${jobId} not recorded: ${(err as Error).message}`,
          jobId,
        ),
      );
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
   * ledger row commits with the job's change, and one applied before is passed over.
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
      const profile = this.profileOf(machine?.profile ?? null);
      const answer = readAnswer(profile, payload);
      return (await this.answer(parsed.machineId, answer, payload, 'mqtt', topic, undefined, record)).result;
    });
  }

  /**
   * A verified callback (the signature, nonce and the job's machine were checked by the callback
   * node). It names the attempt it answers (CONTRACT.md §4): another attempt's answer changes nothing.
   */
  async callback(
    machineId: string,
    jobId: string,
    body: unknown,
  ): Promise<{ result: string; change?: Change }> {
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
      return this.answer(machineId, readAnswer(profile, body, jobId), body, 'http', topic, attempt.attempt);
    });
  }

  /** A verified callback, answered in the contract's shape: 200 applied, 409 not allowed now (another attempt's, a finished job), 400 unreadable. */
  async callbackAnswer(
    machineId: string,
    jobId: string,
    body: unknown,
  ): Promise<{ statusCode: number; body: Record<string, unknown> }> {
    const { result, change } = await this.callback(machineId, jobId, body);
    if (change?.kind === 'applied') return { statusCode: 200, body: { success: true, data: change.job } };
    if (change?.kind === 'conflict')
      return { statusCode: 409, body: { success: false, error: change.reason } };
    if (change?.kind === 'not_found')
      return { statusCode: 404, body: { success: false, error: change.reason } };
    return { statusCode: 400, body: { success: false, error: result.replace(/^rejected: /, '') } };
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
  ): Promise<{ result: string; change?: Change }> {
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
      await logIn(answer.jobId, 'rejected: not a job of this machine');
      await noEffect('not a job of this machine');
      return { result: 'rejected: not a job of this machine' };
    }
    const error =
      answer.status === 'failed'
        ? `the machine reported a failure: ${JSON.stringify(answer.response ?? {})}`
        : undefined;
    const change = await applyMachineReport(
      this.deps.pool,
      answer.jobId,
      { status: answer.status, response: answer.response, error, attempt },
      {
        ...this.actor(),
        plateDoneState: this.settings.plateDoneState,
      },
      record,
    );
    const result = change.kind === 'applied' ? `applied: ${answer.status}` : `ignored: ${change.reason}`;
    await logIn(answer.jobId, result);
    if (change.kind !== 'applied') {
      await noEffect(change.reason);
      return { result, change };
    }
    this.deps.changed(change);
    if (answer.status === 'completed') {
      this.settle(answer.jobId)?.resolve(change.job);
    } else if (answer.status === 'failed') {
      const entry = this.settle(answer.jobId);
      if (entry) {
        entry.reject(retryable('FF_MACHINE_FAILED', error!, answer.jobId));
      } else {
        // No attempt of this process waits for it (the runtime restarted): back to the queue.
        await releaseToQueue(this.deps.pool, answer.jobId, this.deps.clock.now());
      }
    }
    return { result, change };
  }

  /**
   * Stops waiting. Attempts in flight are not failed: their jobs stay sent, and the machine's
   * answer, when it comes, is applied by whichever embosser runs then.
   */
  close(): void {
    this.closed = true;
    for (const entry of this.inFlight.values()) this.deps.clock.clearTimeout(entry.timer);
    this.inFlight.clear();
  }
}
