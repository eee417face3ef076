// Ingest from an external MQTT broker (MQTT_URL) with the embedded broker's guarantee: a machine
// message is acknowledged to the broker only after the inbox writer committed it.
//
// A fixed set of persistent sessions, client ids floorflow-ingest-0..N-1, share the machine topics
// through one MQTT 5 shared subscription group ($share/floorflow/...), so the broker spreads the
// messages over them. Each session is owned by one runtime at a time through a lease in
// PostgreSQL (store/leases.ts). Why not one session per runtime: a broker keeps routing a share of
// the messages to a member whose connection died, and keeps them in that member's session until a
// client with the same id connects again (Mosquitto does; not every broker redispatches). With a
// fixed set of client ids, a survivor that takes the dead runtime's expired lease connects as that
// client id and receives the messages queued for it.
//
// The order that matters, per message: inbox.write() commits, then the PUBACK goes out
// (mqtt.js customHandleAcks). A runtime killed between the two leaves the message unacknowledged
// in the session; the next owner receives it again and the inbox finds it stored (msg_id).
import mqtt from 'mqtt';
import type { Pool } from 'pg';
import { parseMachineTopic } from '../core/topics';
import type { Clock } from '../nodes/common/services';
import type { InboxWriter } from '../store/inbox-writer';
import { acquireLeases, liveLeases, liveRuntimes, releaseLeases, renewLeases } from '../store/leases';

export const INGEST_CLIENT_PREFIX = 'floorflow-ingest-';
const LEASE_PREFIX = 'mqtt-ingest/';
/** The shared subscription group every runtime's ingest sessions join. */
export const SHARE_GROUP = 'floorflow';
/** How long the broker keeps a session whose connection is gone (a day): its owner's successor resumes it. */
const SESSION_EXPIRY_SECONDS = 86400;
/** MQTT 5 SUBACK reason: shared subscriptions not supported. */
const SHARED_NOT_SUPPORTED = 0x9e;

type InboxKind = 'scan' | 'event' | 'status';

export interface ExternalIngestOptions {
  url: string;
  sessions: number;
  topicPrefix: string;
  pool: Pool;
  runtimeId: string;
  inbox: Pick<InboxWriter, 'write'>;
  clock: Clock;
  ttlMs: number;
  log: (line: string) => void;
}

/** The topic filters the ingest sessions subscribe to, inside the shared group. */
export function ingestFilters(prefix: string): string[] {
  return ['scan', 'event', 'status'].map((kind) => `$share/${SHARE_GROUP}/${prefix}/machines/+/${kind}/#`);
}

function credentialsOf(url: string): { username?: string; password?: string } {
  const u = new URL(url);
  return {
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
  };
}

/**
 * Checks, before anything starts, that the broker speaks MQTT 5 and takes shared subscriptions:
 * without them the runtimes would each receive every message (or the broker would refuse the
 * subscription), and the ingest guarantee would not hold. Resolves with why not, or undefined.
 * It subscribes in a group of its own, on a topic no machine publishes, so it takes no message.
 */
export async function sharedSubscriptionProblem(url: string, runtimeId: string): Promise<string | undefined> {
  const client = mqtt.connect(url, {
    ...credentialsOf(url),
    clientId: `floorflow-probe-${runtimeId}`,
    protocolVersion: 5,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10000,
  });
  try {
    const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
      client.once('close', () => reject(new Error('the broker closed the connection')));
    });
    if (connack.properties?.sharedSubscriptionAvailable === false)
      return 'the broker says it has no shared subscriptions (CONNACK)';
    const granted = await client.subscribeAsync(
      `$share/${SHARE_GROUP}-probe-${runtimeId}/floorflow-probe/none`,
      {
        qos: 1,
      },
    );
    const code = granted[0]?.qos as number | undefined;
    if (code === SHARED_NOT_SUPPORTED) return 'the broker refused a shared subscription (SUBACK 0x9E)';
    if (code === undefined || code >= 0x80)
      return `the broker refused a shared subscription (SUBACK 0x${(code ?? 0x80).toString(16)})`;
    return undefined;
  } catch (err) {
    return `no MQTT 5 connection (${(err as Error).message})`;
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }
}

class IngestSession {
  readonly client: mqtt.MqttClient;
  private inFlight = new Set<Promise<unknown>>();
  private closing = false;

  constructor(
    readonly index: number,
    private readonly options: ExternalIngestOptions,
  ) {
    const clientId = `${INGEST_CLIENT_PREFIX}${index}`;
    this.client = mqtt.connect(options.url, {
      ...credentialsOf(options.url),
      clientId,
      protocolVersion: 5,
      // The session outlives the connection: what the broker queued for it while no runtime was
      // connected is delivered to whoever connects with this client id next.
      clean: false,
      properties: { sessionExpiryInterval: SESSION_EXPIRY_SECONDS },
      reconnectPeriod: 1000,
      connectTimeout: 10000,
      keepalive: 15,
      resubscribe: false,
      customHandleAcks: (topic, payload, packet, ack) => this.receive(topic, payload, packet, ack),
    });
    this.client.on('connect', () => {
      this.client.subscribeAsync(ingestFilters(options.topicPrefix), { qos: 1 }).catch((err: Error) => {
        options.log(`[mqtt] ${clientId}: subscription failed: ${err.message}`);
      });
    });
    this.client.on('error', (err) => {
      if (!this.closing && !/not stored/.test(err.message)) options.log(`[mqtt] ${clientId}: ${err.message}`);
    });
  }

  private receive(
    topic: string,
    payload: Buffer,
    packet: mqtt.IPublishPacket,
    ack: (error: Error | number, code?: number) => void,
  ): void {
    const parsed = parseMachineTopic(this.options.topicPrefix, topic);
    if (!parsed || (parsed.kind !== 'scan' && parsed.kind !== 'event' && parsed.kind !== 'status')) {
      ack(0); // not a machine message floorflow stores: nothing to keep
      return;
    }
    if (this.closing) {
      // Handing the session over: leave it unacknowledged in the session for the next owner.
      ack(new Error('not stored: session handed over'));
      return;
    }
    const work = this.options.inbox
      .write({
        machineId: parsed.machineId,
        kind: parsed.kind as InboxKind,
        topic,
        payload,
        receivedAt: this.options.clock.now(),
      })
      .then(
        () => ack(0),
        (err: Error) => {
          // Not acknowledged. The broker resends it only on a new connection of this session:
          // drop the connection; mqtt.js reconnects and the broker delivers it again.
          this.options.log(
            `[mqtt] ${parsed.kind} from ${parsed.machineId} not stored, not acknowledged: ${err.message}`,
          );
          ack(new Error(`not stored: ${err.message}`));
          this.client.stream?.destroy();
        },
      );
    void packet;
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /** Stops taking messages, lets those being written be acknowledged, and disconnects; the session stays. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.inFlight]);
    await this.client.endAsync(false).catch(() => undefined);
  }

  /** The lease is lost (another runtime may own the session now): disconnect at once. */
  async drop(): Promise<void> {
    this.closing = true;
    await this.client.endAsync(true).catch(() => undefined);
  }
}

export class ExternalIngest {
  private readonly sessions = new Map<number, IngestSession>();
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private stopped = false;
  private renewedAt = performance.now();

  constructor(private readonly options: ExternalIngestOptions) {}

  private leaseName(index: number): string {
    return `${LEASE_PREFIX}${index}`;
  }

  /** Session indexes this runtime owns now. */
  owned(): number[] {
    return [...this.sessions.keys()].sort((a, b) => a - b);
  }

  start(): void {
    void this.tick().finally(() => this.schedule());
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick().finally(() => this.schedule()), this.options.ttlMs / 3);
    this.timer.unref();
  }

  private tick(): Promise<void> {
    this.round ??= this.balance()
      .catch((err: Error) => {
        this.options.log(`[mqtt] ingest leases not renewed: ${err.message}`);
        // Past the lease time another runtime may own these sessions: let go of them.
        if (performance.now() - this.renewedAt > this.options.ttlMs * 0.9) {
          for (const index of this.owned()) void this.let(index, 'drop');
        }
      })
      .finally(() => (this.round = undefined));
    return this.round;
  }

  /**
   * One round: renew what this runtime owns, let go of what it lost, then take free sessions up
   * to its fair share (sessions / live runtimes, rounded up) or hand back what it has above it.
   */
  private async balance(): Promise<void> {
    const { pool, runtimeId, ttlMs, sessions: total } = this.options;
    const ownedNames = this.owned().map((i) => this.leaseName(i));
    const renewed = new Set(await renewLeases(pool, ownedNames, runtimeId, ttlMs));
    this.renewedAt = performance.now();
    for (const index of this.owned()) {
      if (!renewed.has(this.leaseName(index))) {
        this.options.log(`[mqtt] ingest session ${index}: lease lost, disconnecting`);
        await this.let(index, 'drop');
      }
    }
    if (this.stopped) return;
    const runtimes = Math.max(1, (await liveRuntimes(pool)).length);
    const share = Math.ceil(total / runtimes);
    const mine = this.owned();
    if (mine.length > share) {
      // Handed back cleanly: messages being written are acknowledged first, the rest stay in the
      // session for the runtime that takes it next.
      for (const index of mine.slice(share)) {
        await this.let(index, 'close');
        await releaseLeases(pool, [this.leaseName(index)], runtimeId);
      }
      return;
    }
    if (mine.length === share) return;
    const taken = new Set((await liveLeases(pool, LEASE_PREFIX)).map((l) => l.name));
    const free = Array.from({ length: total }, (_, i) => i).filter((i) => !taken.has(this.leaseName(i)));
    // Start at a different place on each runtime, so two runtimes rarely race for the same one.
    const offset = free.length > 0 ? parseInt(runtimeId.slice(0, 6), 16) % free.length : 0;
    const candidates = [...free.slice(offset), ...free.slice(0, offset)].slice(0, share - mine.length);
    const got = await acquireLeases(
      pool,
      candidates.map((i) => this.leaseName(i)),
      runtimeId,
      ttlMs,
    );
    for (const name of got) {
      const index = Number(name.slice(LEASE_PREFIX.length));
      if (this.stopped || this.sessions.has(index)) continue;
      this.options.log(`[mqtt] ingest session ${index}: taken (client id ${INGEST_CLIENT_PREFIX}${index})`);
      this.sessions.set(index, new IngestSession(index, this.options));
    }
  }

  private async let(index: number, how: 'close' | 'drop'): Promise<void> {
    const session = this.sessions.get(index);
    if (!session) return;
    this.sessions.delete(index);
    await (how === 'close' ? session.close() : session.drop());
  }

  /** Whether every owned session is connected (the health check). */
  connected(): boolean {
    for (const s of this.sessions.values()) if (!s.client.connected) return false;
    return true;
  }

  /** A clean stop: acknowledge what is being written, disconnect, give the leases back. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round?.catch(() => undefined);
    const indexes = this.owned();
    await Promise.allSettled(indexes.map((i) => this.let(i, 'close')));
    await releaseLeases(
      this.options.pool,
      indexes.map((i) => this.leaseName(i)),
      this.options.runtimeId,
    ).catch(() => undefined);
  }
}
