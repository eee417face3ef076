// The embedded MQTT broker (Aedes) on TCP and on /mqtt over WebSocket, with machine
// authentication against floorflow.machines, the topic rules of docs/machines.md and the client
// id rule of §4, machine presence, limits that keep one machine or a stranger from exhausting
// it (docs/security.md), and durable ingest hooks that run before a QoS 1 publish is acknowledged.
import { Aedes, AuthenticateError, Client, PublishPacket } from 'aedes';
import http from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { lineExcerpt } from '../core/excerpt';
import { SourceLimiter } from '../core/rate-limit';
import { safeEqual } from '../core/secrets';
import {
  MachineTopic,
  MachineTopicKind,
  clientIdAllowed,
  machineTopic,
  mayPublish,
  maySubscribe,
  parseMachineTopic,
} from '../core/topics';
import { counter, gauge } from './metrics';
import { MachineStore } from '../store/machines';
import { GuardedConnection, PendingConnections } from './mqtt-guard';

export const INTERNAL_MQTT_USER = 'floorflow-runtime';

/**
 * Machine topics whose publishes are acknowledged only once a durable handler has stored them, even
 * when none is registered. The runtime registers its inbox writer for scans, events and status
 * before it listens (runtime/broker-access.ts attachInbox), so all three are always stored first.
 */
const ACK_ONLY_WHEN_DURABLE: ReadonlySet<MachineTopicKind> = new Set<MachineTopicKind>(['scan']);

/**
 * A handler that makes a machine message durable. It runs inside Aedes' authorizePublish
 * hook: Aedes sends the PUBACK of a QoS 1 publish only after this resolves, so an
 * acknowledged message is a committed one. A rejection means "not acknowledged": the
 * client is disconnected and resends the message when it reconnects.
 */
export type DurableHandler = (machineId: string, payload: Buffer, packet: PublishPacket) => Promise<void>;

export interface BrokerOptions {
  machines: MachineStore;
  topicPrefix: string;
  internalPassword: string;
  runtimeId: string;
  maxPayloadBytes: number;
  maxConnections: number;
  /** Connections that have not authenticated yet (default 64). */
  maxPendingConnections?: number;
  /** Time a new connection has to send its CONNECT (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Connections one machine may hold at once (default 8). */
  maxConnectionsPerMachine?: number;
  /** Retained messages one machine may keep under its topics: how many and how many bytes (default 20, 1 MiB). */
  maxRetainedPerMachine?: number;
  maxRetainedBytesPerMachine?: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/** Room for the topic and header of a PUBLISH on top of its payload: a packet larger than that is refused unread. */
export const PACKET_OVERHEAD_BYTES = 4096;

interface Session {
  machineId: string;
  internal: boolean;
  sessionSeq?: number;
  endReason?: string;
  /** A newer connection of the same machine with the same client id replaced this one. */
  takenOver?: boolean;
  /** Topics this machine was allowed to publish to, read once (a scanner uses one or two). */
  allowedTopics?: Map<string, MachineTopic>;
}

/** Most topics a session remembers as allowed; others are checked at each publish. */
const MAX_REMEMBERED_TOPICS = 16;

const mqttConnections = () =>
  gauge('floorflow_mqtt_connections', 'MQTT clients connected to the embedded broker');
const mqttIn = () =>
  counter('floorflow_mqtt_messages_in_total', 'MQTT publishes received from clients', ['kind']);
const mqttOut = () => counter('floorflow_mqtt_messages_out_total', 'MQTT messages delivered to clients');
const mqttRefused = () =>
  counter('floorflow_mqtt_refused_total', 'MQTT connections or publishes refused', ['reason']);

function authError(message: string, returnCode: 2 | 3 | 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as unknown as AuthenticateError;
}

export class EmbeddedBroker {
  readonly aedes: Aedes;
  private readonly sessions = new WeakMap<Client, Session>();
  private readonly connectedByMachine = new Map<string, Set<Client>>();
  /** Clients each machine holds from its authentication on (registered or not yet), for the per-machine cap. */
  private readonly heldByMachine = new Map<string, Set<Client>>();
  /** Bytes of each retained message a machine keeps, by topic. */
  private readonly retainedByMachine = new Map<string, Map<string, number>>();
  private readonly pending: PendingConnections;
  /** Refusals are logged at most a few times a minute per source; the rest are counted. */
  private readonly refusalLog = new SourceLimiter(5, 60000);
  private readonly durable = new Map<MachineTopicKind, DurableHandler>();
  private readonly pendingWork = new Set<Promise<unknown>>();
  private tcpServer?: net.Server;
  private wsServer?: WebSocketServer;
  private draining = false;

  private constructor(
    aedes: Aedes,
    private readonly options: BrokerOptions,
  ) {
    this.aedes = aedes;
    this.pending = new PendingConnections(options.maxPendingConnections ?? 64);
  }

  private get maxPacketBytes(): number {
    return this.options.maxPayloadBytes + PACKET_OVERHEAD_BYTES;
  }

  static async create(options: BrokerOptions): Promise<EmbeddedBroker> {
    // The hooks are bound before the instance exists; they run only after create() returns.
    const ref: { self?: EmbeddedBroker } = {};
    const aedes = await Aedes.createBroker({
      id: `floorflow-${options.runtimeId}`,
      // One slow or stuck subscriber must not stall delivery to the others.
      drainTimeout: 5000,
      // A connection holds memory from its first byte: it gets a short time to say who it is.
      connectTimeout: options.connectTimeoutMs ?? 5000,
      keepaliveLimit: 600,
      maxClientsIdLength: 128,
      queueLimit: 100,
      authenticate: (client, username, password, done) =>
        ref.self!.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => ref.self!.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => ref.self!.authorizeSubscribe(client, sub, done),
    });
    const self = new EmbeddedBroker(aedes, options);
    ref.self = self;
    self.watch();
    return self;
  }

  /** Registers the durable handler for one kind of machine topic (the runtime's inbox writer). */
  onDurable(kind: MachineTopicKind, handler: DurableHandler): void {
    this.durable.set(kind, handler);
  }

  offDurable(kind: MachineTopicKind, handler: DurableHandler): void {
    if (this.durable.get(kind) === handler) this.durable.delete(kind);
  }

  /** Connections that have not authenticated yet. */
  pendingConnections(): number {
    return this.pending.size;
  }

  /** Whether the machine holds a live connection besides `client`. */
  private otherConnectionUp(machineId: string, client: Client): boolean {
    for (const other of this.connectedByMachine.get(machineId) ?? []) {
      if (other !== client && !other.closed) return true;
    }
    return false;
  }

  /** Machine ids with a live connection to this broker. */
  onlineMachines(): string[] {
    return [...this.connectedByMachine.keys()];
  }

  async listen(port: number, host: string): Promise<number> {
    // Small QoS 1 packets (PUBACKs, deliveries) must not wait for the peer's delayed ACK.
    const server = net.createServer({ noDelay: true }, (socket) =>
      this.admit(socket, socket.remoteAddress ?? 'unknown'),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.tcpServer = server;
    const address = server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  /** Serves MQTT over WebSocket on `path` of an existing HTTP server. */
  attachWebSocket(server: http.Server, path = '/mqtt'): void {
    const wss = new WebSocketServer({ noServer: true, maxPayload: this.options.maxPayloadBytes + 1024 });
    this.wsServer = wss;
    server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== path) return; // other upgrade listeners (editor comms, dashboards) handle it
      wss.handleUpgrade(req, socket as Duplex & net.Socket, head, (ws) => {
        const stream = createWebSocketStream(ws);
        stream.on('error', () => stream.destroy());
        this.admit(stream, req.socket.remoteAddress ?? 'unknown', req);
      });
    });
  }

  /**
   * Every connection, TCP or WebSocket, reaches Aedes through the byte-level guard, and only
   * while fewer than the pending cap are still unauthenticated.
   */
  private admit(conn: Duplex, address: string, req?: http.IncomingMessage): void {
    conn.on('error', () => undefined);
    const guarded = new GuardedConnection(conn, address, this.maxPacketBytes, (verdict) => {
      mqttRefused().inc({ reason: 'packet_too_large' });
      this.logRefusal(
        address,
        verdict.reason === 'too_large'
          ? `MQTT connection from ${address} closed: a packet declared ${verdict.declared} bytes, the limit is ${this.maxPacketBytes}`
          : `MQTT connection from ${address} closed: malformed packet length`,
      );
    });
    if (!this.pending.admit(guarded)) {
      mqttRefused().inc({ reason: 'max_pending' });
      this.logRefusal(
        address,
        `MQTT connection from ${address} refused: ${this.pending.size} connections are still logging in`,
      );
      guarded.destroy();
      return;
    }
    this.aedes.handle(guarded, req as http.IncomingMessage);
  }

  /** A warning, at most a few per minute per source; the next one says how many were left out. */
  private logRefusal(source: string, message: string): void {
    const window = this.refusalLog.take(source, Date.now());
    if (!window.allowed) return;
    const more = window.suppressed > 0 ? ` (${window.suppressed} similar refusals not logged)` : '';
    this.options.log('warn', message + more);
  }

  /** Stops taking connections and publishes; what was acknowledged stays acknowledged. */
  startDrain(): void {
    this.draining = true;
  }

  /** Waits for durable handlers in flight, up to `timeoutMs`. */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.pendingWork.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.pendingWork]), new Promise((r) => setTimeout(r, 100))]);
    }
  }

  async close(): Promise<void> {
    this.draining = true;
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    this.wsServer?.close();
    if (this.tcpServer) await new Promise<void>((resolve) => this.tcpServer!.close(() => resolve()));
    await Promise.allSettled([...this.pendingWork]);
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.pendingWork.add(work);
    work.then(
      () => this.pendingWork.delete(work),
      () => this.pendingWork.delete(work),
    );
    return work;
  }

  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void {
    // Refusals that a client should retry later get "server unavailable" (CONNACK 3).
    if (this.draining) {
      mqttRefused().inc({ reason: 'draining' });
      return done(authError('runtime is stopping', 3), false);
    }
    if (this.aedes.connectedClients >= this.options.maxConnections) {
      mqttRefused().inc({ reason: 'max_connections' });
      this.options.log(
        'warn',
        `MQTT connection refused: ${this.options.maxConnections} clients already connected`,
      );
      return done(authError('too many connections', 3), false);
    }
    const address = (client.conn as Partial<GuardedConnection>).remoteAddress ?? 'unknown';
    if (!username || !password) {
      mqttRefused().inc({ reason: 'anonymous' });
      this.logRefusal(address, `MQTT login refused from ${address}: no username or password`);
      return done(authError('anonymous clients are refused', 5), false);
    }
    const secret = password.toString('utf8');
    const badCredentials = () => {
      mqttRefused().inc({ reason: 'bad_credentials' });
      this.logRefusal(
        address,
        `MQTT login refused from ${address}: bad username or password for ${lineExcerpt(username, 64)}`,
      );
      done(authError('bad username or password', 4), false);
    };
    if (username === INTERNAL_MQTT_USER) {
      if (!safeEqual(secret, this.options.internalPassword)) return badCredentials();
      this.sessions.set(client, { machineId: INTERNAL_MQTT_USER, internal: true });
      this.pending.authenticated(client.conn);
      return done(null, true);
    }
    // The client id names the machine (docs/machines.md), so no machine can take over another's session.
    if (!clientIdAllowed(username, client.id)) {
      mqttRefused().inc({ reason: 'client_id' });
      this.logRefusal(
        address,
        `MQTT login refused from ${address}: client id ${lineExcerpt(client.id, 64)} is not ${lineExcerpt(username, 64)} or ${lineExcerpt(username, 64)}/<suffix>`,
      );
      return done(authError('identifier rejected', 2), false);
    }
    this.track(this.options.machines.authenticate(username, secret)).then(
      (kind) => {
        if (!kind) return badCredentials();
        // Aedes' client table is not in its types; it is where [MQTT-3.1.4-2] finds the session to replace.
        const previous = (this.aedes as unknown as { clients: Record<string, Client | undefined> }).clients[
          client.id
        ];
        const previousSession = previous && this.sessions.get(previous);
        const takeover = previousSession?.machineId === username ? previous : undefined;
        const held = this.heldByMachine.get(username) ?? new Set<Client>();
        const cap = this.options.maxConnectionsPerMachine ?? 8;
        if (held.size - (takeover && held.has(takeover) ? 1 : 0) >= cap) {
          mqttRefused().inc({ reason: 'max_connections_per_machine' });
          this.logRefusal(
            username,
            `MQTT connection of ${username} refused: it already holds ${held.size} connections (the limit is ${cap})`,
          );
          return done(authError('too many connections for this machine', 3), false);
        }
        if (takeover && previousSession) {
          // The machine reconnected before the broker noticed its old connection was gone:
          // Aedes closes the old one; that is not the machine going offline.
          previousSession.takenOver = true;
          previousSession.endReason = 'taken over by a new connection of the same machine';
          this.options.log(
            'info',
            `machine ${username} reconnected as ${client.id}: the older connection is replaced`,
          );
        }
        this.heldByMachine.set(username, held);
        held.add(client);
        client.conn.once('close', () => {
          held.delete(client);
          if (held.size === 0 && this.heldByMachine.get(username) === held)
            this.heldByMachine.delete(username);
        });
        this.sessions.set(client, { machineId: username, internal: false });
        this.pending.authenticated(client.conn);
        done(null, true);
      },
      (err: Error) => {
        this.options.log('error', `MQTT authentication of ${username} failed: ${err.message}`);
        // CONNACK 3 (server unavailable), not 4: the credentials may be right, and a client retries a 3.
        done(authError('server unavailable', 3), false);
      },
    );
  }

  private authorizePublish(
    client: Client | null,
    packet: PublishPacket,
    done: (err?: Error | null) => void,
  ): void {
    if (!client) return done(null); // the broker's own publishes (wills, $SYS)
    const session = this.sessions.get(client);
    if (!session) return done(new Error('not authenticated'));
    if (session.internal) {
      // The runtime clearing a machine's retained message frees that machine's room for it.
      if (packet.retain && packet.payload.length === 0) this.forgetRetained(packet.topic);
      return done(null);
    }
    // The will of a replaced connection would announce offline a machine that just reconnected.
    if (session.takenOver) return done(new Error('connection taken over'));
    // A will speaks for the connection that set it: while another connection of the machine is
    // up (a scanner's long-lived session beside a short-lived `<id>/<suffix>` one), it is not the
    // machine going offline. Aedes publishes a will only through this hook, as the packet it kept.
    if (packet === (client as { will?: unknown }).will && this.otherConnectionUp(session.machineId, client)) {
      this.options.log(
        'info',
        `machine ${session.machineId}: the will of connection ${lineExcerpt(client.id, 64)} is not published, another connection of the machine is up`,
      );
      return done(new Error('another connection of the machine is up'));
    }
    if (this.draining) {
      mqttRefused().inc({ reason: 'draining' });
      return done(new Error('runtime is stopping'));
    }
    const topic = this.allowedTopic(session, packet.topic);
    if (!topic) {
      mqttRefused().inc({ reason: 'acl' });
      this.logRefusal(
        session.machineId,
        `machine ${session.machineId} may not publish to ${lineExcerpt(packet.topic)}`,
      );
      return done(new Error('not allowed to publish to this topic'));
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload ?? '');
    if (payload.length > this.options.maxPayloadBytes) {
      mqttRefused().inc({ reason: 'payload_too_large' });
      return done(new Error(`payload of ${payload.length} bytes exceeds ${this.options.maxPayloadBytes}`));
    }
    if (packet.retain && !this.keepRetained(session.machineId, packet.topic, payload.length)) {
      return done(new Error('retained message limit reached'));
    }
    mqttIn().inc({ kind: topic.kind });
    const handler = this.durable.get(topic.kind);
    if (!handler) {
      // A scan's PUBACK promises it is stored. With no scan ingest registered (the flows are still
      // starting after a restart, or none is deployed) nothing would store it: refuse, so the
      // scanner keeps it and resends.
      if (!ACK_ONLY_WHEN_DURABLE.has(topic.kind)) return done(null);
      mqttRefused().inc({ reason: 'not_stored' });
      return done(new Error(`no ${topic.kind} ingest running: not acknowledged`));
    }
    this.track(handler(session.machineId, payload, packet)).then(
      () => done(null),
      (err: Error) => {
        // Not acknowledging is the point: the client keeps the message and resends it.
        mqttRefused().inc({ reason: 'not_stored' });
        this.options.log(
          'warn',
          `${topic.kind} from ${session.machineId} not stored, not acknowledged: ${err.message}`,
        );
        done(err);
      },
    );
  }

  /** The topic read, when the session's machine may publish to it (machine topics, docs/machines.md). */
  private allowedTopic(session: Session, name: string): MachineTopic | undefined {
    const known = session.allowedTopics?.get(name);
    if (known) return known;
    if (!mayPublish(this.options.topicPrefix, session.machineId, name)) return undefined;
    const topic = parseMachineTopic(this.options.topicPrefix, name)!;
    session.allowedTopics ??= new Map();
    if (session.allowedTopics.size < MAX_REMEMBERED_TOPICS) session.allowedTopics.set(name, topic);
    return topic;
  }

  /**
   * Counts a machine's retained messages; false (and a logged refusal) when keeping this one
   * would exceed its count or bytes. An empty retained payload deletes and is always allowed.
   */
  private keepRetained(machineId: string, topic: string, bytes: number): boolean {
    const kept = this.retainedByMachine.get(machineId) ?? new Map<string, number>();
    if (bytes === 0) {
      kept.delete(topic);
      return true;
    }
    const maxCount = this.options.maxRetainedPerMachine ?? 20;
    const maxBytes = this.options.maxRetainedBytesPerMachine ?? 1024 * 1024;
    const count = kept.size + (kept.has(topic) ? 0 : 1);
    let total = bytes;
    for (const [t, b] of kept) if (t !== topic) total += b;
    if (count > maxCount || total > maxBytes) {
      mqttRefused().inc({ reason: 'retained_limit' });
      this.logRefusal(
        machineId,
        `machine ${machineId}: retained message on ${lineExcerpt(topic)} refused: it would keep ${count} retained messages of ${total} bytes (the limit is ${maxCount} and ${maxBytes} bytes)`,
      );
      return false;
    }
    kept.set(topic, bytes);
    this.retainedByMachine.set(machineId, kept);
    return true;
  }

  private forgetRetained(topic: string): void {
    const machineId = parseMachineTopic(this.options.topicPrefix, topic)?.machineId;
    if (machineId) this.retainedByMachine.get(machineId)?.delete(topic);
  }

  private authorizeSubscribe(
    client: Client,
    sub: { topic: string; qos: 0 | 1 | 2 },
    done: (err: Error | null, sub?: { topic: string; qos: 0 | 1 | 2 } | null) => void,
  ): void {
    const session = this.sessions.get(client);
    if (!session) return done(new Error('not authenticated'));
    if (session.internal) return done(null, sub);
    if (!maySubscribe(this.options.topicPrefix, session.machineId, sub.topic)) {
      mqttRefused().inc({ reason: 'acl' });
      this.logRefusal(
        session.machineId,
        `machine ${session.machineId} may not subscribe to ${lineExcerpt(sub.topic)}`,
      );
      // A null subscription makes Aedes answer SUBACK 0x80 (failure) for this filter.
      return done(null, null);
    }
    done(null, sub);
  }

  private watch(): void {
    const { machines, runtimeId, topicPrefix } = this.options;
    this.aedes.on('client', (client) => {
      mqttConnections().set(this.aedes.connectedClients);
      const session = this.sessions.get(client);
      if (!session || session.internal) return;
      let set = this.connectedByMachine.get(session.machineId);
      if (!set) this.connectedByMachine.set(session.machineId, (set = new Set()));
      set.add(client);
      this.track(machines.connected(session.machineId, client.id, runtimeId)).then(
        (seq) => {
          session.sessionSeq = seq;
          // The client may already have gone while the row was written.
          if (client.closed)
            void this.track(machines.disconnected(session.machineId, seq, session.endReason ?? 'closed'));
        },
        (err: Error) =>
          this.options.log('error', `presence of ${session.machineId} not recorded: ${err.message}`),
      );
    });
    this.aedes.on('keepaliveTimeout', (client) => {
      const session = this.sessions.get(client);
      if (session) session.endReason = 'keepalive_timeout';
    });
    this.aedes.on('clientError', (client, err) => {
      const session = this.sessions.get(client);
      if (session && !session.endReason) session.endReason = `error: ${err.message}`;
    });
    this.aedes.on('clientDisconnect', (client) => {
      mqttConnections().set(this.aedes.connectedClients);
      const session = this.sessions.get(client);
      if (!session || session.internal) return;
      const set = this.connectedByMachine.get(session.machineId);
      set?.delete(client);
      const stillConnected = (set?.size ?? 0) > 0;
      if (!stillConnected) this.connectedByMachine.delete(session.machineId);
      if (session.sessionSeq !== undefined) {
        this.track(
          machines.disconnected(session.machineId, session.sessionSeq, session.endReason ?? 'disconnected'),
        ).catch((err: Error) =>
          this.options.log('error', `presence of ${session.machineId} not recorded: ${err.message}`),
        );
      }
      if (!stillConnected && !session.takenOver && !this.aedes.closed) {
        // The machine's will (docs/machines.md): the broker, not the machine, says it went offline.
        const status = {
          state: 'offline',
          since: new Date().toISOString(),
          reason: session.endReason ?? 'disconnected',
        };
        this.aedes.publish(
          {
            cmd: 'publish',
            topic: machineTopic(topicPrefix, session.machineId, 'status'),
            payload: Buffer.from(JSON.stringify(status)),
            qos: 1,
            retain: true,
            dup: false,
          },
          () => undefined,
        );
      }
    });
    this.aedes.on('ack', () => mqttOut().inc());
  }
}
