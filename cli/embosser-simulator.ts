// A simulated embossing machine speaking the mqtt-json profile (docs/machines.md): it logs in
// with its own credentials, announces its state on the retained status topic, takes jobs
// from its cmd topic and reports accepted, in_progress and completed or failed on its event
// topic. Tests and benches drive it as a library; `floorflow simulate embosser` runs one.
// It imports nothing of floorflow's, so it behaves like a machine, not like the runtime; that
// includes signing callbacks the way an HTTP machine does (`signedCallback`).
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import mqtt, { MqttClient } from 'mqtt';

export interface CallbackToSign {
  machineId: string;
  secret: string;
  /** The path the callback is POSTed to, e.g. /api/embossing-jobs/callback/42. */
  path: string;
  /** The exact bytes sent as the body. */
  body: string;
  /** Unix seconds (default: now). */
  timestamp?: number;
  /** 16–64 characters of A-Z a-z 0-9 _ - (default: 24 random ones). A retry of the same callback reuses it. */
  nonce?: string;
}

/**
 * The headers of a signed machine callback (docs/machines.md): HMAC-SHA256 keyed with the machine
 * secret over "<timestamp>.<nonce>.POST.<path>.<body>", so it is bound to its job and used once.
 */
export function signedCallback(callback: CallbackToSign): Record<string, string> {
  const timestamp = String(callback.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = callback.nonce ?? crypto.randomBytes(18).toString('base64url');
  const signature = crypto
    .createHmac('sha256', callback.secret)
    .update(`${timestamp}.${nonce}.POST.${callback.path}.${callback.body}`)
    .digest('hex');
  return {
    'X-Floorflow-Machine': callback.machineId,
    'X-Floorflow-Timestamp': timestamp,
    'X-Floorflow-Nonce': nonce,
    'X-Floorflow-Signature': `sha256=${signature}`,
  };
}

export interface SimulatorTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface EmbosserSimulatorOptions {
  machineId: string;
  secret: string;
  /** Broker URL, e.g. mqtt://127.0.0.1:1883. */
  url: string;
  prefix?: string;
  /** How long a job takes, in ms (default 2000). */
  workMs?: number;
  /** Share of jobs that fail, 0..1 (default 0). */
  failShare?: number;
  /** Decides per job whether it fails; overrides failShare. `attempt` counts this job's commands. */
  fails?: (jobId: string, attempt: number) => boolean;
  random?: () => number;
  timers?: SimulatorTimers;
  /** The command `type` this machine takes (default 'emboss'; the engraver simulator's is 'engrave'). */
  commandType?: string;
  /** ms between reconnect tries after the connection drops (default 1000; 0: stay disconnected). */
  reconnectMs?: number;
}

export interface ReceivedJob {
  jobId: string;
  command: Record<string, unknown>;
  attempt: number;
}

type Mode = 'working' | 'silent';

/**
 * Events: 'job' (ReceivedJob), 'cancel' ({jobId}), 'reported' ({jobId, status}), 'connected',
 * 'reconnected', 'disconnected', 'offline'. Like a real machine it reconnects when the broker goes
 * away (a runtime restart), announces its state again and keeps working on the jobs it has: its
 * reports made meanwhile wait in the client and are sent once it is back.
 */
export class EmbosserSimulator extends EventEmitter {
  readonly received: ReceivedJob[] = [];
  /** Jobs the runtime told it to drop (`{"type": "cancel", "job_id"}`); a cancelled job is not reported on. */
  readonly cancelled: string[] = [];
  private client?: MqttClient;
  private busy = 0;
  private mode: Mode = 'working';
  private readonly attempts = new Map<string, number>();
  private readonly pending = new Set<unknown>();
  private readonly options: Required<Omit<EmbosserSimulatorOptions, 'fails'>> &
    Pick<EmbosserSimulatorOptions, 'fails'>;

  constructor(options: EmbosserSimulatorOptions) {
    super();
    this.options = {
      prefix: 'floorflow',
      workMs: 2000,
      failShare: 0,
      commandType: 'emboss',
      reconnectMs: 1000,
      random: Math.random,
      timers: {
        setTimeout: (fn, ms) => setTimeout(fn, ms),
        clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
      },
      ...options,
    };
  }

  private topic(kind: 'cmd' | 'event' | 'status'): string {
    return `${this.options.prefix}/machines/${this.options.machineId}/${kind}`;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Connects, subscribes to its cmd topic and announces itself idle. */
  async start(): Promise<void> {
    const client = await mqtt.connectAsync(this.options.url, {
      username: this.options.machineId,
      password: this.options.secret,
      // The machine id, or <machine id>/<suffix> (docs/machines.md).
      clientId: `${this.options.machineId}/sim-${Math.floor(this.options.random() * 1e9).toString(36)}`,
      reconnectPeriod: this.options.reconnectMs,
      clean: true,
    });
    this.client = client;
    client.on('message', (_topic, payload) => this.command(payload));
    // A clean session loses its subscription with the connection: mqtt.js subscribes again
    // (resubscribe), and the retained status, dropped for the broker's will, is announced again.
    client.on('connect', () => {
      if (this.client !== client) return;
      void this.announce(this.busy > 0 ? 'busy' : 'idle').catch(() => undefined);
      this.emit('reconnected');
    });
    client.on('close', () => {
      if (this.client === client) this.emit('disconnected');
    });
    client.on('error', () => undefined);
    const granted = await client.subscribeAsync(this.topic('cmd'), { qos: 1 });
    if (granted.some((g) => g.qos === 128)) throw new Error(`subscription to ${this.topic('cmd')} refused`);
    await this.announce('idle');
    this.emit('connected');
  }

  /** Drops the connection as a machine losing power would; the broker announces it offline. */
  async goOffline(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    for (const handle of this.pending) this.options.timers.clearTimeout(handle);
    this.pending.clear();
    this.busy = 0;
    if (client) await client.endAsync(true);
    this.emit('offline');
  }

  /** Reconnects after goOffline. */
  async comeBack(): Promise<void> {
    await this.start();
  }

  /** Accepts commands but never answers (for timeouts), or works normally again. */
  setMode(mode: Mode): void {
    this.mode = mode;
  }

  async stop(): Promise<void> {
    await this.goOffline();
  }

  private async announce(state: 'online' | 'idle' | 'busy' | 'error'): Promise<void> {
    await this.client?.publishAsync(
      this.topic('status'),
      JSON.stringify({ state, machine_id: this.options.machineId }),
      {
        qos: 1,
        retain: true,
      },
    );
  }

  private async report(jobId: string, status: string, response?: Record<string, unknown>): Promise<void> {
    const body: Record<string, unknown> = { job_id: jobId, status };
    if (response) body.response = response;
    await this.client?.publishAsync(this.topic('event'), JSON.stringify(body), { qos: 1 });
    this.emit('reported', { jobId, status });
  }

  private command(payload: Buffer): void {
    let command: Record<string, unknown>;
    try {
      command = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return;
    }
    const jobId = String(command.job_id ?? '');
    if (command.type === 'cancel' && jobId !== '') {
      this.cancelled.push(jobId);
      this.emit('cancel', { jobId });
      return;
    }
    if (command.type !== this.options.commandType || jobId === '') return;
    const attempt = (this.attempts.get(jobId) ?? 0) + 1;
    this.attempts.set(jobId, attempt);
    const job = { jobId, command, attempt };
    this.received.push(job);
    this.emit('job', job);
    if (this.mode === 'silent') return;
    void this.work(job).catch((err: Error) => this.emit('error', err));
  }

  private async work(job: ReceivedJob): Promise<void> {
    this.busy += 1;
    await this.announce('busy');
    await this.report(job.jobId, 'accepted');
    await this.report(job.jobId, 'in_progress');
    await new Promise<void>((resolve) => {
      const handle = this.options.timers.setTimeout(() => {
        this.pending.delete(handle);
        resolve();
      }, this.options.workMs);
      this.pending.add(handle);
    });
    if (!this.client) return;
    if (this.cancelled.includes(job.jobId)) {
      this.busy -= 1;
      if (this.busy === 0) await this.announce('idle');
      return;
    }
    const fails = this.options.fails
      ? this.options.fails(job.jobId, job.attempt)
      : this.options.random() < this.options.failShare;
    if (fails) await this.report(job.jobId, 'failed', { error: 'die misaligned', attempt: job.attempt });
    else await this.report(job.jobId, 'completed', { embossed: true, attempt: job.attempt });
    this.busy -= 1;
    if (this.busy === 0) await this.announce('idle');
  }
}
