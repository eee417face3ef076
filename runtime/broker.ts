// The embedded MQTT broker (Aedes) on TCP and on /mqtt over WebSocket, with machine
// authentication against floorflow.machines, the topic rules of CONTRACT.md §3, machine
// presence, and durable ingest hooks that run before a QoS 1 publish is acknowledged.
import { Aedes, AuthenticateError, Client, PublishPacket } from 'aedes';
import http from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { safeEqual } from '../core/secrets';
import { MachineTopicKind, machineTopic, mayPublish, maySubscribe, parseMachineTopic } from '../core/topics';
import { counter, gauge } from '../kit/metrics';
import { MachineStore } from '../store/machines';

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
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

interface Session {
  machineId: string;
  internal: boolean;
  sessionSeq?: number;
  endReason?: string;
}

const mqttConnections = () =>
  gauge('floorflow_mqtt_connections', 'MQTT clients connected to the embedded broker');
const mqttIn = () =>
  counter('floorflow_mqtt_messages_in_total', 'MQTT publishes received from clients', ['kind']);
const mqttOut = () => counter('floorflow_mqtt_messages_out_total', 'MQTT messages delivered to clients');
const mqttRefused = () =>
  counter('floorflow_mqtt_refused_total', 'MQTT connections or publishes refused', ['reason']);

function authError(message: string, returnCode: 3 | 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export class EmbeddedBroker {
  readonly aedes: Aedes;
  private readonly sessions = new WeakMap<Client, Session>();
  private readonly connectedByMachine = new Map<string, Set<Client>>();
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
  }

  static async create(options: BrokerOptions): Promise<EmbeddedBroker> {
    // The hooks are bound before the instance exists; they run only after create() returns.
    const ref: { self?: EmbeddedBroker } = {};
    const aedes = await Aedes.createBroker({
      id: `floorflow-${options.runtimeId}`,
      // One slow or stuck subscriber must not stall delivery to the others.
      drainTimeout: 5000,
      connectTimeout: 10000,
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

  /** Machine ids with a live connection to this broker. */
  onlineMachines(): string[] {
    return [...this.connectedByMachine.keys()];
  }

  async listen(port: number, host: string): Promise<number> {
    // Small QoS 1 packets (PUBACKs, deliveries) must not wait for the peer's delayed ACK.
    const server = net.createServer({ noDelay: true }, (socket) => this.aedes.handle(socket));
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
        this.aedes.handle(stream, req);
      });
    });
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
    if (!username || !password) {
      mqttRefused().inc({ reason: 'anonymous' });
      return done(authError('anonymous clients are refused', 5), false);
    }
    const secret = password.toString('utf8');
    if (username === INTERNAL_MQTT_USER) {
      if (!safeEqual(secret, this.options.internalPassword)) {
        mqttRefused().inc({ reason: 'bad_credentials' });
        return done(authError('bad username or password', 4), false);
      }
      this.sessions.set(client, { machineId: INTERNAL_MQTT_USER, internal: true });
      return done(null, true);
    }
    this.track(this.options.machines.authenticate(username, secret)).then(
      (kind) => {
        if (!kind) {
          mqttRefused().inc({ reason: 'bad_credentials' });
          return done(authError('bad username or password', 4), false);
        }
        this.sessions.set(client, { machineId: username, internal: false });
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
    if (session.internal) return done(null);
    if (this.draining) {
      mqttRefused().inc({ reason: 'draining' });
      return done(new Error('runtime is stopping'));
    }
    if (!mayPublish(this.options.topicPrefix, session.machineId, packet.topic)) {
      mqttRefused().inc({ reason: 'acl' });
      this.options.log('warn', `machine ${session.machineId} may not publish to ${packet.topic}`);
      return done(new Error(`not allowed to publish to ${packet.topic}`));
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload ?? '');
    if (payload.length > this.options.maxPayloadBytes) {
      mqttRefused().inc({ reason: 'payload_too_large' });
      return done(new Error(`payload of ${payload.length} bytes exceeds ${this.options.maxPayloadBytes}`));
    }
    const topic = parseMachineTopic(this.options.topicPrefix, packet.topic)!;
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
      this.options.log('warn', `machine ${session.machineId} may not subscribe to ${sub.topic}`);
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
      if (!stillConnected && !this.aedes.closed) {
        // The will of CONTRACT.md §3: the broker, not the machine, says it went offline.
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
