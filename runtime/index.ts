// Starts and stops floorflow in one process: database, migrations, broker, HTTP, Node-RED.
// Stopping drains first: new input is refused (HTTP 503, MQTT publishes not acknowledged),
// work in flight gets FLOORFLOW_DRAIN_TIMEOUT_MS to finish, then flows, broker and database stop.
// A stop during the start (its AbortSignal) stops whatever the start had started so far.
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import RED from 'node-red';
import mqtt from 'mqtt';
import { FloorflowConfig, nodeRedSettings } from '../settings';
import { dashboardReloadTarget } from '../core/display-pages';
import { BrokerAccess, FloorflowServices, systemClock } from '../nodes/common/services';
import { collectProcessMetrics } from './metrics';
import { registerFloorMetrics, unregisterFloorMetricsSource } from './floor-metrics';
import { AccountStore } from '../store/accounts';
import { watchScanNotices } from '../nodes/common/scan-notices';
import { startLifecycleRelay } from './lifecycle-relay';
import { InboxWriter } from '../store/inbox-writer';
import { MachineStore } from '../store/machines';
import { migrate } from '../store/migrate';
import { EmbeddedBroker, INTERNAL_MQTT_USER } from './broker';
import { Database, openDatabase } from './database';
import { AccessControl } from './access';
import { HttpState, addFallbacks, createFrontApp } from './http';
import { idempotencyKeys } from './idempotency';
import { writeRuntimeAddress } from './address-file';
import { loadSecrets } from './secrets';
import { FlowVersions, loadFlowStorage, readFlowFiles } from './flow-runtime';
import { mountTraceRoute } from './trace-route';
import { mountImportRoute } from './import-route';
import { attachInbox, brokerAccessOf } from './broker-access';
import { ExternalIngest, sharedSubscriptionProblem } from './external-ingest';
import { LeaseKeeper } from './leases';
import { liveRuntimes } from '../store/leases';

export interface RuntimeHandle {
  httpPort: number;
  mqttPort?: number;
  database: Database;
  stop(reason?: string): Promise<void>;
}

export type Logger = (line: string) => void;

/** The start was stopped (a signal during it); everything it had started is stopped again. */
export class StartAborted extends Error {
  constructor(readonly reason: string) {
    super(`start stopped (${reason})`);
  }
}

export interface StartOptions {
  /** Aborting it stops the start at once; `signal.reason` names why (e.g. SIGTERM). */
  signal?: AbortSignal;
}

/** Why the flows are not running, from Node-RED's runtime-state event (missing types, stopped in the editor). */
function flowsNotRunning(payload: { state?: string; error?: string; types?: string[] }): string | undefined {
  if (payload.state === 'safe') return 'Node-RED is in safe mode';
  if (payload.state !== 'stop') return undefined;
  if (payload.error === 'missing-types')
    return `node types not installed: ${(payload.types ?? []).join(', ')}`;
  if (payload.error === 'missing-modules') return 'node modules the flows need are not installed';
  return 'the flows were stopped in the editor';
}

async function listenHttp(server: http.Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

function portError(err: unknown, port: number, variable: string): Error {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE')
    return new Error(`port ${port} is already in use: stop what holds it or set ${variable} to a free port`);
  if (code === 'EACCES')
    return new Error(`no permission to listen on port ${port}: set ${variable} to a port above 1023`);
  if (code === 'EADDRNOTAVAIL') return new Error(`address not available on this machine: check HOST`);
  return err as Error;
}

function externalBrokerLogin(url: string): { user: string; password: string } | undefined {
  const u = new URL(url);
  if (!u.username) return undefined;
  return { user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

export async function startRuntime(
  config: FloorflowConfig,
  log: Logger = (l) => console.log(l),
  options: StartOptions = {},
): Promise<RuntimeHandle> {
  const started = Date.now();
  const { signal } = options;
  // A flow file that does not parse stops the start here, naming the file.
  readFlowFiles(config);
  const runtimeId = crypto.randomBytes(4).toString('hex');
  const { secrets, generated, keep } = loadSecrets(config.dataDir, {
    adminPassword: config.adminPassword,
    apiToken: config.apiToken,
  });

  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  };
  // Between the steps of the start: a stop asked for meanwhile ends the start here.
  const checkpoint = () => signal?.throwIfAborted();
  let database: Database | undefined;
  try {
    database = await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      password: secrets.databasePassword,
      log,
      signal,
    });
    const db = database;
    cleanups.push(() => db.close());
    checkpoint();
    return await startOnDatabase(db);
  } catch (err) {
    if (!signal?.aborted) {
      await cleanup();
      throw err;
    }
    const reason = String(signal.reason instanceof Error ? signal.reason.message : signal.reason);
    log(`floorflow stopping (${reason}) during start`);
    await cleanup();
    if (database?.embedded) log('embedded database stopped');
    log('floorflow stopped');
    throw new StartAborted(reason);
  }

  async function startOnDatabase(database: Database): Promise<RuntimeHandle> {
    const migrated = await migrate(database.pool);
    if (migrated.applied.length > 0) log(`database migrated: ${migrated.applied.join(', ')}`);
    const machines = new MachineStore(database.pool, secrets.machineSealKey);
    collectProcessMetrics();
    registerFloorMetrics({ pool: database.pool, clock: systemClock });
    cleanups.push(async () => unregisterFloorMetricsSource());

    checkpoint();
    // Several runtimes may share this database (docs/scale-out.md): this one is alive while its
    // lease is renewed, and work that must run once goes to whichever runtime holds its lease.
    const leases = new LeaseKeeper({ pool: database.pool, runtimeId, ttlMs: config.leaseTtlMs, log });
    await leases.start();
    cleanups.push(() => leases.stop());
    // Sessions a killed runtime left open are over: their machines are offline until they reconnect.
    await machines.closeSessionsOfGoneRuntimes('runtime restarted');
    const state: HttpState = { draining: false, inFlight: 0, starting: true };
    let broker: EmbeddedBroker | undefined;
    let externalMqtt: mqtt.MqttClient | undefined;
    let ingest: ExternalIngest | undefined;
    const checks = [
      { name: 'database', check: async () => void (await database.pool.query('SELECT 1')) },
      {
        name: 'broker',
        check: async () => {
          if (broker && broker.aedes.closed) throw new Error('closed');
          if (externalMqtt && !externalMqtt.connected) throw new Error('not connected to MQTT_URL');
        },
      },
    ];
    const accounts = new AccountStore(database.pool);
    // The first start's admin engineer, as before; FLOORFLOW_ADMIN_PASSWORD stays its password.
    // A password generated by this start replaces the stored one too: a first start that failed
    // before printing its password stored the hash here, but kept nothing in secrets.json.
    await accounts.ensureAdmin(
      secrets.adminPasswordHash,
      Boolean(config.adminPassword) || generated.adminPassword !== undefined,
    );
    const access = new AccessControl({
      accounts,
      apiTokens: [{ name: config.apiTokenName, hash: secrets.apiTokenHash }],
      log,
    });
    access.start();
    cleanups.push(() => access.close());
    const app = createFrontApp(state, access.api(), checks, {
      adminCorsOrigins: config.adminCorsOrigins,
    });
    const server = http.createServer(app);
    // Before Node-RED's own listener: the editor's WebSocket presents the session cookie as its token.
    server.on('upgrade', access.onUpgrade);
    // Keep-alive sockets would hold the server open after close() during a stop.
    server.keepAliveTimeout = 5000;
    // Upgraded connections (open dashboards, the editor, MQTT over WebSocket) are no longer
    // the server's to close: without destroying them, one open floor display holds a stop forever.
    const upgraded = new Set<Duplex>();
    server.on('upgrade', (_req, socket: Duplex) => {
      upgraded.add(socket);
      socket.once('close', () => upgraded.delete(socket));
    });

    // The durable inbox: every machine message is committed here before it is acknowledged,
    // whether or not a flow runs; the flows read what it commits.
    const inbox = new InboxWriter(database.pool, {
      groupCommit: config.scanGroupCommit,
      minFlushSpacingMs: config.inboxFlushSpacingMs,
    });
    let mqttPort: number | undefined;
    if (!config.mqttUrl) {
      broker = await EmbeddedBroker.create({
        machines,
        topicPrefix: config.topicPrefix,
        internalPassword: secrets.internalMqttPassword,
        runtimeId,
        maxPayloadBytes: config.mqttMaxPayloadBytes,
        maxConnections: config.mqttMaxConnections,
        maxPendingConnections: config.mqttMaxPending,
        connectTimeoutMs: config.mqttConnectTimeoutMs,
        maxConnectionsPerMachine: config.mqttMaxConnectionsPerMachine,
        maxRetainedPerMachine: config.mqttMaxRetainedPerMachine,
        maxRetainedBytesPerMachine: config.mqttMaxRetainedBytesPerMachine,
        log: (level, message) => log(`[mqtt] ${level}: ${message}`),
      });
      attachInbox(broker, inbox, systemClock);
      cleanups.push(() => broker!.close());
      try {
        mqttPort = await broker.listen(config.mqttPort, config.host);
      } catch (err) {
        throw portError(err, config.mqttPort, 'MQTT_PORT');
      }
      broker.attachWebSocket(server, '/mqtt');
      // The flows' mqtt-broker config node reads these (see flows/config.json).
      process.env.FLOORFLOW_MQTT_HOST = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
      process.env.FLOORFLOW_MQTT_PORT = String(mqttPort);
    } else {
      const u = new URL(config.mqttUrl);
      const problem = await sharedSubscriptionProblem(config.mqttUrl, runtimeId);
      if (problem)
        throw new Error(
          `MQTT_URL ${u.host}: ${problem}; floorflow needs an MQTT 5 broker with shared subscriptions (Mosquitto 2, EMQX, HiveMQ) to take machine messages`,
        );
      ingest = new ExternalIngest({
        url: config.mqttUrl,
        sessions: config.ingestSessions,
        topicPrefix: config.topicPrefix,
        pool: database.pool,
        runtimeId,
        inbox,
        clock: systemClock,
        ttlMs: config.leaseTtlMs,
        log,
      });
      ingest.start();
      cleanups.push(() => ingest!.stop());
      process.env.FLOORFLOW_MQTT_HOST = u.hostname;
      process.env.FLOORFLOW_MQTT_PORT = u.port || '1883';
      externalMqtt = mqtt.connect(config.mqttUrl, {
        clientId: `floorflow-health-${runtimeId}`,
        reconnectPeriod: 2000,
      });
      externalMqtt.on('error', () => undefined);
      cleanups.push(async () => void (await externalMqtt!.endAsync(true)));
    }

    const events = new EventEmitter();
    events.setMaxListeners(100);
    const versions = new FlowVersions();
    const brokerAccess: BrokerAccess | undefined = broker && brokerAccessOf(broker);
    const services: FloorflowServices = {
      pool: database.pool,
      topicPrefix: config.topicPrefix,
      runtimeId,
      broker: brokerAccess,
      inbox,
      events,
      flowVersion: (flowId) => versions.versionOf(flowId),
      machineSecret: (machineId) => machines.secretOf(machineId),
      access,
      clock: systemClock,
      leases,
    };
    // One log line per scan the inbox rejected or left out as sent twice, and the floor page told.
    const stopScanNotices = watchScanNotices({ inbox, pool: database.pool, events, clock: systemClock, log });
    cleanups.push(async () => stopScanNotices());
    // Every committed lifecycle transition, announced on the bus and MQTT (nodes never announce).
    const relay = await startLifecycleRelay(services, (m) => log(m));
    cleanups.push(() => relay.stop());

    const storage = loadFlowStorage({
      config,
      versions,
      pool: database.pool,
      // With MQTT_URL, the flows' broker connection logs in with that URL's user and password.
      localBrokerCredentials: config.mqttUrl
        ? externalBrokerLogin(config.mqttUrl)
        : { user: INTERNAL_MQTT_USER, password: secrets.internalMqttPassword },
      credentialSecret: secrets.credentialSecret,
      // Several runtimes run the same flow files (docs/scale-out.md): a deploy in one editor would
      // change that runtime alone, so it is refused while others are alive; flows change in git
      // and are rolled out to every runtime.
      deployRefusal: async () => {
        const others = (await liveRuntimes(database.pool)).filter((id) => id !== runtimeId);
        if (others.length === 0) return undefined;
        return `deploy refused: ${others.length} other floorflow runtime(s) run these flows on this database; change the flow files and roll them out to every runtime (docs/scale-out.md)`;
      },
    });
    const settings = nodeRedSettings({
      config,
      adminPasswordHash: secrets.adminPasswordHash,
      adminAuth: access.adminAuth(),
      dashboardIoMiddleware: access.socketMiddleware as (...args: never[]) => void,
      credentialSecret: secrets.credentialSecret,
      nodesDir: path.resolve(__dirname, '..', 'nodes'),
      storageModule: storage,
      services,
    });
    RED.init(server, settings);
    app.use(access.pages());
    app.use('/editor', access.editor());
    app.use('/editor', RED.httpAdmin);
    app.use('/dashboard', access.dashboard());
    // The dashboard's own reload after a restart lands on its root: back to the page it left.
    app.get(['/dashboard', '/dashboard/'], (req, res, next) => {
      const query = req.originalUrl.includes('?')
        ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1)
        : '';
      const target = dashboardReloadTarget(req.get('referer'), req.get('host'), query);
      if (target) res.redirect(302, target);
      else next();
    });
    mountTraceRoute(app, database.pool);
    // Before the POST routes (the import route, the flows' routes): a replayed POST with an
    // Idempotency-Key never reaches them.
    app.use(idempotencyKeys(database.pool, { log }));
    mountImportRoute(app, database.pool, config.httpMaxBody);
    app.use('/', RED.httpNode);
    addFallbacks(app);

    // The flows' http-in routes exist from Node-RED's flows:started on; RED.start() resolves
    // before that, and a deploy stops and starts them again. Until they are there, /api and
    // /v1 answer 503 with Retry-After (runtime/http.ts) instead of a 404 read as "not found".
    const onFlowsStopping = () => (state.starting = true);
    const onFlowsStarted = () => (state.starting = false);
    let settleFlows: (outcome: { running: true } | { running: false; why: string }) => void = () => undefined;
    const flowsSettled = new Promise<{ running: true } | { running: false; why: string }>(
      (resolve) => (settleFlows = resolve),
    );
    const onFlowsStartedOnce = () => settleFlows({ running: true });
    const onRuntimeEvent = (event: { id?: string; payload?: Record<string, unknown> }) => {
      const why = event.id === 'runtime-state' && event.payload ? flowsNotRunning(event.payload) : undefined;
      if (why) settleFlows({ running: false, why });
    };
    RED.events.on('flows:stopping', onFlowsStopping);
    RED.events.on('flows:started', onFlowsStarted);
    RED.events.once('flows:started', onFlowsStartedOnce);
    RED.events.on('runtime-event', onRuntimeEvent);
    cleanups.push(async () => {
      RED.events.off('flows:stopping', onFlowsStopping);
      RED.events.off('flows:started', onFlowsStarted);
      RED.events.off('flows:started', onFlowsStartedOnce);
      RED.events.off('runtime-event', onRuntimeEvent);
    });

    let httpPort: number;
    try {
      httpPort = await listenHttp(server, config.port, config.host);
    } catch (err) {
      throw portError(err, config.port, 'PORT');
    }
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
          for (const socket of upgraded) socket.destroy();
        }),
    );
    checkpoint();
    // Loading the palette cannot be interrupted; a stop asked for meanwhile is seen once the
    // flows have started (below), so that stopping them stops every node they started.
    await RED.start();
    cleanups.push(async () => void (await RED.stop()));
    const aborted = new Promise<'aborted'>((resolve) => {
      if (signal?.aborted) resolve('aborted');
      signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    const flows = await Promise.race([flowsSettled, aborted]);
    if (flows === 'aborted') {
      // Stopping flows that are still being started would leave the nodes started after the
      // stop running: let the start finish (bounded), then stop them. Node-RED starts the flows
      // after RED.start() resolves, so a stop asked for while the palette loaded waits for them
      // too (it stopped nothing, and the flows then ran on a closed pool, the process alive).
      await Promise.race([flowsSettled, new Promise((r) => setTimeout(r, 15000).unref())]);
    }
    checkpoint();
    // Printed now, the generated admin password and API token are kept from now on.
    keep();

    const base = `http://${config.host}:${httpPort}`;
    const heading =
      flows !== 'aborted' && !flows.running
        ? `floorflow started, but the flows are not running (${flows.why}): /api and /v1 answer 503 until they run; start or fix them in the editor`
        : `floorflow ready in ${Date.now() - started} ms`;
    const lines = [
      heading,
      `  editor      ${base}/editor  (user admin; more users: floorflow user add)`,
      `  dashboards  ${base}/dashboard`,
      `  database    ${database.where}`,
      broker
        ? `  mqtt        mqtt://${config.host}:${mqttPort}  and  ws://${config.host}:${httpPort}/mqtt`
        : `  mqtt        ${new URL(config.mqttUrl!).host} (external)`,
    ];
    if (generated.adminPassword)
      lines.push(`  admin password (shown once, stored hashed): ${generated.adminPassword}`);
    if (generated.apiToken) lines.push(`  API token (shown once, stored hashed): ${generated.apiToken}`);
    lines.push('  stop        Ctrl-C (drains work in flight first)');
    // For `floorflow simulate` and other commands beside it: this runtime's broker, not any on 1883.
    // Written before "ready" is printed, so whoever waits for that line finds the file.
    const mqttHost = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
    cleanups.push(
      writeRuntimeAddress(config.dataDir, {
        pid: process.pid,
        mqtt: broker ? `mqtt://${mqttHost}:${mqttPort}` : config.mqttUrl!,
        http: base,
        startedAt: new Date().toISOString(),
      }),
    );
    // One write, so a reader never sees the heading without the lines under it.
    log(lines.join('\n'));

    let stopping: Promise<void> | undefined;
    const stop = (reason = 'stop requested') => {
      stopping ??= (async () => {
        log(`floorflow stopping (${reason}): draining for up to ${config.drainTimeoutMs} ms`);
        state.draining = true;
        broker?.startDrain();
        // The ingest sessions go to the other runtimes now: what is being written is acknowledged,
        // the rest stays in the broker's sessions for them.
        await ingest?.stop();
        // Long-lived responses (SSE streams) end now rather than hold the drain to its deadline.
        events.emit('draining');
        const deadline = Date.now() + config.drainTimeoutMs;
        await broker?.settle(config.drainTimeoutMs);
        while (state.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        events.emit('drain');
        await cleanup();
        if (database.embedded) log('embedded database stopped');
        log('floorflow stopped');
      })();
      return stopping;
    };
    return { httpPort, mqttPort, database, stop };
  }
}
