// The flow test kit: loads shipped flow files (flows/*.json) as they are into
// node-red-node-test-helper with every floorflow node and Node-RED's core nodes, a fresh
// migrated PostgreSQL database, the embedded broker on a free port and a ManualClock, so a
// test drives a whole flow (HTTP in, MQTT in, timers) and awaits its effects.
// Guide: docs/flow-testing.md.
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { MqttClient } from 'mqtt';
import type { Node, NodeAPI, NodeInitializer, NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import type { Pool } from 'pg';
import supertest from 'supertest';
import express from 'express';
import type { FlowNode } from '../../core/flow-files';
import { migrateFlowNodes } from '../../core/node-migrations';
import { FloorflowServices, ManualClock, systemClock } from '../../nodes/common/services';
import { type LifecycleRelay, startLifecycleRelay } from '../../runtime/lifecycle-relay';
import { attachIdentity } from '../../nodes/common/identity';
import type { Identity } from '../../core/access';
import { EmbeddedBroker, INTERNAL_MQTT_USER } from '../../runtime/broker';
import { attachInbox, brokerAccessOf } from '../../runtime/broker-access';
import { FlowVersions, nextManifest, readManifest } from '../../runtime/flow-runtime';
import { InboxWriter } from '../../store/inbox-writer';
import { MachineKind, MachineStore } from '../../store/machines';
import { TestDatabase, createTestDatabase, waitFor } from './db';

helper.init(require.resolve('node-red'));

/** The project root (where package.json, flows/ and dist/ are), from dist/tests/support or tests/support. */
export const PROJECT_ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`flow kit: no package.json above ${__dirname}`);
    dir = up;
  }
  return dir;
})();

export const LOCAL_BROKER_ID = 'floorflow-local-broker';
export const TOPIC_PREFIX = 'floorflow';

export interface FlowKitOptions {
  /** Flow files to load, relative to the project root (or absolute). flows/config.json is always added. */
  flows: string[];
  /** Nodes added to the loaded flows, typically `helper` nodes a test observes. */
  extraNodes?: FlowNode[];
  /** Wires added from a loaded node's output `port` (default 0) to an extra node, without editing the file. */
  extraWires?: Array<{ from: string; port?: number; to: string }>;
  /** Node modules the flows need besides the floorflow and core nodes (a test's own stand-ins). */
  nodeTypes?: NodeInitializer[];
  /** The clock the floorflow nodes get; a new ManualClock at 2026-01-05T08:00Z when omitted. */
  clock?: ManualClock;
  /** Start the embedded broker (default true). Without it, mqtt nodes cannot connect. */
  broker?: boolean;
  /**
   * Use this database instead of a fresh one, and leave it in place on stop(): a second kit on
   * the first one's database is the runtime started again over the rows the first left.
   */
  database?: TestDatabase;
}

export interface FlowKit {
  pool: Pool;
  databaseUrl: string;
  clock: ManualClock;
  services: FloorflowServices;
  broker?: EmbeddedBroker;
  /** The inbox writer the broker and the nodes share. */
  inbox: InboxWriter;
  mqttPort?: number;
  /** supertest against the flows' HTTP endpoints (Node-RED's httpNode app), without auth. */
  request(): supertest.Agent;
  /** The flows' HTTP routes (Node-RED's httpNode app), to mount behind a test's own middleware. */
  httpApp(): express.RequestHandler;
  /** As request(), with the identity the runtime's login would have given the request. */
  requestAs(identity: Identity): supertest.Agent;
  /** Makes `socketId` a dashboard connection logged in as `identity` (msg._client.socketId names it). */
  loginDashboardClient(socketId: string, identity: Identity): void;
  /** Registers a machine (floorflow.machines) and returns its MQTT secret. */
  addMachine(machineId: string, kind: MachineKind): Promise<string>;
  /** An MQTT client logged in as the machine; closed by stop(). */
  connectMachine(machineId: string, secret: string): Promise<MqttClient>;
  /**
   * Makes node `nodeId` send `msg` on its outputs as if it had produced it: how a test
   * injects into an `http in`, `mqtt in`, `inject` or poller node.
   */
  inject(nodeId: string, msg: Record<string, unknown>): void;
  /** Delivers `msg` to the input of node `nodeId`. */
  receive(nodeId: string, msg: Record<string, unknown>): void;
  /** The running node with this id; throws when there is none (disabled, or a missing type). */
  node<T extends Node = Node>(nodeId: string): T;
  /** The next message arriving at the input of node `nodeId` (a helper node or any other). */
  nextMessage(nodeId: string, timeoutMs?: number): Promise<NodeMessage & Record<string, unknown>>;
  /** Error lines logged so far by the nodes, with the node id. */
  loggedErrors(): Array<{ id?: string; msg: string }>;
  /** Every line logged so far by the nodes (any level: node.log, warn, error), with the node id. */
  loggedLines(): Array<{ id?: string; msg: string }>;
  waitFor<T>(
    probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
    what: string,
    timeoutMs?: number,
  ): Promise<T>;
  stop(): Promise<void>;
}

let active = false;

function readFlowFile(file: string): FlowNode[] {
  const full = path.isAbsolute(file) ? file : path.join(PROJECT_ROOT, file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(full, 'utf8'));
  } catch (err) {
    throw new Error(`flow kit: ${full}: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(parsed)) throw new Error(`flow kit: ${full}: must be a JSON array of nodes`);
  return parsed as FlowNode[];
}

/** Node-RED's core node modules (inject, function, http in, mqtt, ...), all of them. */
function coreNodeModules(): NodeInitializer[] {
  const core = path.join(path.dirname(require.resolve('@node-red/nodes/package.json')), 'core');
  const modules: NodeInitializer[] = [];
  for (const group of fs.readdirSync(core).sort()) {
    for (const file of fs.readdirSync(path.join(core, group)).sort()) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      if (file.endsWith('.js')) modules.push(require(path.join(core, group, file)) as NodeInitializer);
    }
  }
  return modules;
}

/**
 * Every node listed in package.json "node-red".nodes (the compiled files under dist/nodes).
 * One not built yet is left out, and named if a flow needs its type.
 */
function floorflowNodeModules(notBuilt: string[]): NodeInitializer[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    'node-red'?: { nodes?: Record<string, string> };
  };
  return Object.entries(pkg['node-red']?.nodes ?? {}).flatMap(([type, file]) => {
    const full = path.join(PROJECT_ROOT, file);
    if (!fs.existsSync(full)) {
      notBuilt.push(`${type} (${file} is not built: run node scripts/build.js)`);
      return [];
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return [require(full) as NodeInitializer];
  });
}

/** The flows to load: the files' nodes, config.json first, plus the test's nodes and wires. */
function assembleFlows(options: FlowKitOptions): {
  nodes: FlowNode[];
  files: Array<{ file: string; nodes: FlowNode[] }>;
} {
  const names = ['flows/config.json', ...options.flows.filter((f) => f !== 'flows/config.json')];
  const files = names.map((file) => ({ file, nodes: readFlowFile(file) }));
  // As the runtime's storage module does: old node configurations load in their current shape.
  const nodes: FlowNode[] = files.flatMap((f) => migrateFlowNodes(structuredClone(f.nodes)).nodes);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const extra of options.extraNodes ?? []) {
    if (byId.has(extra.id))
      throw new Error(`flow kit: extra node id ${extra.id} is already used by the flows`);
    const copy = structuredClone(extra);
    nodes.push(copy);
    byId.set(copy.id, copy);
  }
  for (const wire of options.extraWires ?? []) {
    const from = byId.get(wire.from);
    if (!from) throw new Error(`flow kit: extra wire from ${wire.from}: no such node`);
    if (!byId.has(wire.to)) throw new Error(`flow kit: extra wire to ${wire.to}: no such node`);
    const port = wire.port ?? 0;
    const wires = (from.wires ??= []);
    while (wires.length <= port) wires.push([]);
    wires[port].push(wire.to);
  }
  return { nodes, files };
}

type Subscription = { topic: string };
type HttpApp = Parameters<typeof supertest.agent>[0];

export async function startFlowKit(options: FlowKitOptions): Promise<FlowKit> {
  // node-red-node-test-helper holds one runtime per process: one kit at a time.
  if (active)
    throw new Error('flow kit: another kit is still running; call stop() on it first (e.g. in afterEach)');
  active = true;
  let assembled: ReturnType<typeof assembleFlows>;
  let db: TestDatabase;
  try {
    assembled = assembleFlows(options);
    db = options.database ?? (await createTestDatabase());
  } catch (err) {
    active = false;
    throw err;
  }
  const { nodes, files } = assembled;
  const clock = options.clock ?? new ManualClock();
  const machines = new MachineStore(db.pool, crypto.randomBytes(32).toString('hex'));
  // As the runtime: machine messages are committed by the inbox writer before their PUBACK.
  const inbox = new InboxWriter(db.pool);
  const internalPassword = crypto.randomBytes(24).toString('base64url');
  const clients: MqttClient[] = [];
  const savedEnv = { host: process.env.FLOORFLOW_MQTT_HOST, port: process.env.FLOORFLOW_MQTT_PORT };
  let broker: EmbeddedBroker | undefined;
  let mqttPort: number | undefined;
  let loaded = false;
  // Topic filters the runtime's own MQTT clients have subscribed to, so start waits until
  // every `mqtt in` node can actually receive before the test publishes.
  const internalSubscriptions = new Set<string>();
  let services: FloorflowServices | undefined;
  let relay: LifecycleRelay | undefined;
  const dashboardClients = new Map<string, Identity>();
  let httpNode: HttpApp | undefined;

  const stop = async () => {
    for (const client of clients) await client.endAsync(true).catch(() => undefined);
    if (loaded) await helper.unload();
    await relay?.stop();
    if (broker) await broker.close();
    if (!options.database) await db.drop();
    restoreEnv('FLOORFLOW_MQTT_HOST', savedEnv.host);
    restoreEnv('FLOORFLOW_MQTT_PORT', savedEnv.port);
    active = false;
  };

  try {
    if (options.broker !== false) {
      broker = await EmbeddedBroker.create({
        machines,
        topicPrefix: TOPIC_PREFIX,
        internalPassword,
        runtimeId: 'flow-kit',
        maxPayloadBytes: 256 * 1024,
        maxConnections: 100,
        log: () => undefined,
      });
      attachInbox(broker, inbox, clock);
      mqttPort = await broker.listen(0, '127.0.0.1');
      // Before start() returns only the flows' own clients are connected.
      broker.aedes.on('subscribe', (subscriptions: Subscription[]) => {
        for (const s of subscriptions) internalSubscriptions.add(s.topic);
      });
      // What the runtime sets for the flows' mqtt-broker config node (flows/config.json).
      process.env.FLOORFLOW_MQTT_HOST = '127.0.0.1';
      process.env.FLOORFLOW_MQTT_PORT = String(mqttPort);
    }

    const versions = new FlowVersions();
    versions.update(
      nextManifest(
        readManifest({
          flowsDir: path.join(PROJECT_ROOT, 'flows'),
          dashboardsDir: path.join(PROJECT_ROOT, 'dashboards'),
        }),
        files,
      ),
    );
    const events = new EventEmitter();
    events.setMaxListeners(100);
    services = {
      access: {
        identityOfClient: (client) => {
          const socketId = (client as { socketId?: unknown } | undefined)?.socketId;
          return typeof socketId === 'string' ? dashboardClients.get(socketId) : undefined;
        },
      },
      pool: db.pool,
      topicPrefix: TOPIC_PREFIX,
      runtimeId: 'flow-kit',
      broker: broker && brokerAccessOf(broker),
      inbox,
      events,
      flowVersion: (flowId) => versions.versionOf(flowId),
      machineSecret: (machineId) => machines.secretOf(machineId),
      clock,
    };
    helper.settings({ floorflow: services } as Parameters<typeof helper.settings>[0]);
    // As the runtime: committed lifecycle transitions are announced by the relay alone.
    // Its safety poll runs on real time: the test's manual clock holds only the flows' timers.
    relay = await startLifecycleRelay({ ...services, clock: systemClock }, () => undefined);

    // The helper loads catch, status and complete itself, before `capture` can see them.
    const registered = new Set<string>(['helper', 'tab', 'subflow', 'group', 'catch', 'status', 'complete']);
    // Runs first: keeps the node API's httpNode app for request(), and records every type
    // registered so a flow needing a type nobody loaded fails here instead of never starting.
    const capture: NodeInitializer = (RED: NodeAPI) => {
      httpNode = (RED as unknown as { httpNode: HttpApp }).httpNode;
      const register = RED.nodes.registerType.bind(RED.nodes) as (...args: unknown[]) => void;
      (RED.nodes as unknown as { registerType: (...args: unknown[]) => void }).registerType = (...args) => {
        registered.add(String(args[0]));
        register(...args);
      };
    };
    const notBuilt: string[] = [];
    const needed = [...new Set(nodes.map((n) => n.type).filter((t) => !t.startsWith('subflow:')))];
    const credentials = broker
      ? { [LOCAL_BROKER_ID]: { user: INTERNAL_MQTT_USER, password: internalPassword } }
      : {};
    loaded = true;
    await helper.load(
      [capture, ...coreNodeModules(), ...floorflowNodeModules(notBuilt), ...(options.nodeTypes ?? [])],
      nodes as Parameters<typeof helper.load>[1],
      credentials as Parameters<typeof helper.load>[2],
    );
    const unknown = needed.filter((t) => !registered.has(t));
    if (unknown.length > 0) {
      const hint = notBuilt.filter((n) => unknown.some((t) => n.startsWith(`${t} `)));
      throw new Error(
        `flow kit: the flows use node types nobody registered: ${unknown.join(', ')} (${hint.length > 0 ? hint.join('; ') : 'pass their modules in nodeTypes'})`,
      );
    }
    // Node-RED logs a flow that fails to start (e.g. a node id equal to a config node type
    // reads as a circular config reference) and carries on; a test must not.
    const notStarted = expectedToRun(nodes).filter((id) => !helper.getNode(id));
    if (notStarted.length > 0) {
      throw new Error(
        `flow kit: these nodes did not start: ${notStarted.join(', ')} (see the Node-RED log above)`,
      );
    }

    // Every mqtt in node must be subscribed before a test publishes, or the message is lost.
    const mqttInTopics = nodes
      .filter((n) => n.type === 'mqtt in' && !n.d && typeof n.topic === 'string')
      .map((n) => String(n.topic));
    if (broker && mqttInTopics.length > 0) {
      await waitFor(
        () => mqttInTopics.every((t) => internalSubscriptions.has(t)),
        `mqtt in subscriptions ${mqttInTopics.join(', ')}`,
        10000,
      );
    }
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  const node = <T extends Node = Node>(nodeId: string): T => {
    const found = helper.getNode(nodeId) as T | null;
    if (!found)
      throw new Error(
        `flow kit: no running node ${nodeId} (not in the loaded flows, disabled, or its type is missing)`,
      );
    return found;
  };

  const kit: FlowKit = {
    pool: db.pool,
    databaseUrl: db.url,
    clock,
    services: services!,
    broker,
    inbox,
    mqttPort,
    request() {
      if (!httpNode) throw new Error('flow kit: the HTTP app is not available');
      return supertest.agent(httpNode);
    },
    httpApp() {
      if (!httpNode) throw new Error('flow kit: the HTTP app is not available');
      return httpNode as unknown as express.RequestHandler;
    },
    requestAs(identity) {
      if (!httpNode) throw new Error('flow kit: the HTTP app is not available');
      const app = express();
      app.use((req, _res, next) => {
        attachIdentity(req, identity);
        next();
      });
      app.use(httpNode as unknown as express.RequestHandler);
      return supertest.agent(app);
    },
    loginDashboardClient(socketId, identity) {
      dashboardClients.set(socketId, identity);
    },
    addMachine: (machineId, kind) => machines.add(machineId, kind),
    async connectMachine(machineId, secret) {
      if (!mqttPort) throw new Error('flow kit: started with broker: false');
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
        username: machineId,
        password: secret,
        clientId: `${machineId}/${crypto.randomBytes(3).toString('hex')}`,
        reconnectPeriod: 0,
      });
      clients.push(client);
      return client;
    },
    inject(nodeId, msg) {
      node(nodeId).send(msg as NodeMessage);
    },
    receive(nodeId, msg) {
      node(nodeId).receive(msg as NodeMessage);
    },
    node,
    nextMessage(nodeId, timeoutMs = 5000) {
      const target = node(nodeId);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          target.removeListener('input', onInput);
          reject(new Error(`flow kit: no message reached ${nodeId} within ${timeoutMs} ms`));
        }, timeoutMs);
        const onInput = (msg: NodeMessage & Record<string, unknown>) => {
          clearTimeout(timer);
          resolve(msg);
        };
        target.once('input', onInput);
      });
    },
    loggedErrors() {
      const log = helper.log() as unknown as {
        args: Array<[{ level: number; id?: string; msg: unknown }]>;
        ERROR: number;
      };
      return log.args
        .map(([entry]) => entry)
        .filter((entry) => entry.level === log.ERROR)
        .map((entry) => ({
          id: entry.id,
          msg: entry.msg instanceof Error ? entry.msg.message : String(entry.msg),
        }));
    },
    loggedLines() {
      const log = helper.log() as unknown as { args: Array<[{ id?: string; msg: unknown }]> };
      return log.args.map(([entry]) => ({
        id: entry.id,
        msg: entry.msg instanceof Error ? entry.msg.message : String(entry.msg),
      }));
    },
    waitFor: (probe, what, timeoutMs) => waitFor(probe, what, timeoutMs),
    stop,
  };
  return kit;
}

/** Ids of the nodes Node-RED creates: not tabs, groups or subflow internals, not disabled. */
function expectedToRun(nodes: FlowNode[]): string[] {
  const disabledTabs = new Set(nodes.filter((n) => n.type === 'tab' && n.disabled === true).map((n) => n.id));
  const subflows = new Set(nodes.filter((n) => n.type === 'subflow').map((n) => n.id));
  return nodes
    .filter((n) => !['tab', 'subflow', 'group'].includes(n.type) && n.d !== true)
    .filter((n) => !n.z || (!disabledTabs.has(n.z) && !subflows.has(n.z)))
    .map((n) => n.id);
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
