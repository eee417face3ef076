// floorflow's settings: every environment variable the runtime reads, validated in one
// place, and the Node-RED settings object built from them. A bad value stops the start
// with one line naming the variable and what it accepts.
import path from 'node:path';
import type { LocalSettings } from '@node-red/runtime';
import { bodyParsers } from './runtime/http';

export interface FloorflowConfig {
  /** HTTP port: editor, dashboards, HTTP API, MQTT over WebSocket. `PORT`, default 1880. */
  port: number;
  /** Address HTTP and MQTT listen on. `HOST`, default 127.0.0.1. */
  host: string;
  /** TCP port of the embedded broker; 0 picks a free port. `MQTT_PORT`, default 1883. */
  mqttPort: number;
  /** External broker to use instead of the embedded one. `MQTT_URL`. */
  mqttUrl?: string;
  /** PostgreSQL server to use instead of the embedded one. `DATABASE_URL`. */
  databaseUrl?: string;
  /** Embedded database files, Node-RED user dir, generated secrets. `FLOORFLOW_DATA_DIR`, default ./data. */
  dataDir: string;
  /** Password of user `admin`; generated on first start when unset. `FLOORFLOW_ADMIN_PASSWORD`. */
  adminPassword?: string;
  /** Bearer token for /api and /v1; generated on first start when unset. `FLOORFLOW_API_TOKEN`. */
  apiToken?: string;
  /** The API token's name in audit rows (`token:<name>`). `FLOORFLOW_API_TOKEN_NAME`, default api. */
  apiTokenName: string;
  /** First level of every machine topic. `FLOORFLOW_TOPIC_PREFIX`, default floorflow. */
  topicPrefix: string;
  /** Directory holding the versioned flows (one file per tab). `FLOORFLOW_FLOWS_DIR`, default ./flows. */
  flowsDir: string;
  /** Directory holding the dashboard flows. `FLOORFLOW_DASHBOARDS_DIR`, default ./dashboards. */
  dashboardsDir: string;
  /** How long a stop waits for work in flight. `FLOORFLOW_DRAIN_TIMEOUT_MS`, default 10000. */
  drainTimeoutMs: number;
  /** Largest MQTT payload accepted, in bytes. `FLOORFLOW_MQTT_MAX_PAYLOAD`, default 262144. */
  mqttMaxPayloadBytes: number;
  /** Most MQTT connections at once. `FLOORFLOW_MQTT_MAX_CONNECTIONS`, default 2000. */
  mqttMaxConnections: number;
  /** Most MQTT connections not yet logged in. `FLOORFLOW_MQTT_MAX_PENDING`, default 64. */
  mqttMaxPending: number;
  /** Time a new MQTT connection has to send CONNECT. `FLOORFLOW_MQTT_CONNECT_TIMEOUT_MS`, default 5000. */
  mqttConnectTimeoutMs: number;
  /** Most MQTT connections of one machine. `FLOORFLOW_MQTT_MAX_CONNECTIONS_PER_MACHINE`, default 8. */
  mqttMaxConnectionsPerMachine: number;
  /** Most retained messages one machine keeps. `FLOORFLOW_MQTT_MAX_RETAINED_PER_MACHINE`, default 20. */
  mqttMaxRetainedPerMachine: number;
  /** Most bytes of retained messages one machine keeps. `FLOORFLOW_MQTT_MAX_RETAINED_BYTES_PER_MACHINE`, default 1048576. */
  mqttMaxRetainedBytesPerMachine: number;
  /** Origins (scheme://host[:port]) whose pages may call the editor's admin API. `FLOORFLOW_ADMIN_CORS_ORIGINS`, default none. */
  adminCorsOrigins: string[];
  /** Largest HTTP request body. `FLOORFLOW_HTTP_MAX_BODY`, default 1mb. */
  httpMaxBody: string;
  /** Node-RED log level. `FLOORFLOW_LOG_LEVEL`, default info. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /**
   * Group commit of the machine inbox (scans, events, status): many messages in one transaction.
   * `FLOORFLOW_SCAN_GROUP_COMMIT`, default on; off stores each message in a transaction of its own.
   */
  scanGroupCommit: boolean;
  /**
   * Least time between the starts of two inbox flushes, in ms: a steady trickle of messages is
   * then stored a few at a time (a PUBACK waits up to this much more). `FLOORFLOW_INBOX_FLUSH_SPACING_MS`,
   * default 0: each flush as soon as the last committed, nothing waits on a timer.
   */
  inboxFlushSpacingMs: number;
  /**
   * With MQTT_URL: the fixed number of ingest sessions (client ids floorflow-ingest-0..N-1) the
   * runtimes share; the same on every runtime. `FLOORFLOW_INGEST_SESSIONS`, default 6.
   */
  ingestSessions: number;
  /** How long a runtime's leases last without renewal (docs/scale-out.md). `FLOORFLOW_LEASE_TTL_MS`, default 6000. */
  leaseTtlMs: number;
}

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

type Env = Record<string, string | undefined>;

function port(env: Env, name: string, fallback: number, allowZero: boolean): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  const min = allowZero ? 0 : 1;
  if (!Number.isInteger(value) || value < min || value > 65535) {
    throw new SettingsError(`${name}=${raw} is not a port: use a whole number from ${min} to 65535`);
  }
  return value;
}

function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new SettingsError(`${name}=${raw} is not valid: use a whole number above 0`);
  }
  return value;
}

function wholeMs(env: Env, name: string, fallback: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new SettingsError(`${name}=${raw} is not valid: use a whole number of ms from 0 to ${max}`);
  }
  return value;
}

function onOff(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(on|1|true|yes)$/i.test(raw)) return true;
  if (/^(off|0|false|no)$/i.test(raw)) return false;
  throw new SettingsError(`${name}=${raw} is not valid: use on or off`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new SettingsError(`${name} is not a URL: use e.g. ${protocols[0]}//host:port/...`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new SettingsError(`${name} must start with ${protocols.map((p) => p + '//').join(' or ')}`);
  }
  return raw;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): FloorflowConfig {
  const host = env.HOST || '127.0.0.1';
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(host))
    throw new SettingsError(`HOST=${host} is not an address or host name`);
  const prefix = env.FLOORFLOW_TOPIC_PREFIX || 'floorflow';
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) {
    throw new SettingsError(`FLOORFLOW_TOPIC_PREFIX=${prefix} may hold only letters, digits, _ and -`);
  }
  const logLevel = (env.FLOORFLOW_LOG_LEVEL || 'info') as FloorflowConfig['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new SettingsError(`FLOORFLOW_LOG_LEVEL=${logLevel} is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const adminPassword = env.FLOORFLOW_ADMIN_PASSWORD || undefined;
  if (adminPassword !== undefined && adminPassword.length < 8) {
    throw new SettingsError('FLOORFLOW_ADMIN_PASSWORD is too short: use at least 8 characters');
  }
  const apiToken = env.FLOORFLOW_API_TOKEN || undefined;
  if (apiToken !== undefined && apiToken.length < 16) {
    throw new SettingsError('FLOORFLOW_API_TOKEN is too short: use at least 16 characters');
  }
  const adminCorsOrigins = (env.FLOORFLOW_ADMIN_CORS_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of adminCorsOrigins) {
    // An exact origin only: a wildcard would let any page on the network drive the editor's API.
    if (!/^https?:\/\/[A-Za-z0-9.\-[\]:]+$/.test(origin)) {
      throw new SettingsError(
        `FLOORFLOW_ADMIN_CORS_ORIGINS: ${origin} is not an origin: use e.g. https://mes.plant.local (no *, no path)`,
      );
    }
  }
  const apiTokenName = env.FLOORFLOW_API_TOKEN_NAME || 'api';
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(apiTokenName)) {
    throw new SettingsError(
      `FLOORFLOW_API_TOKEN_NAME=${apiTokenName} may hold only lower-case letters, digits, . _ and -`,
    );
  }
  const httpMaxBody = env.FLOORFLOW_HTTP_MAX_BODY || '1mb';
  if (!/^\d+(b|kb|mb)$/i.test(httpMaxBody)) {
    throw new SettingsError(`FLOORFLOW_HTTP_MAX_BODY=${httpMaxBody} is not a size: use e.g. 512kb or 1mb`);
  }
  return {
    port: port(env, 'PORT', 1880, true),
    host,
    mqttPort: port(env, 'MQTT_PORT', 1883, true),
    mqttUrl: url(env, 'MQTT_URL', ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:']),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir: path.resolve(cwd, env.FLOORFLOW_DATA_DIR || 'data'),
    adminPassword,
    apiToken,
    apiTokenName,
    topicPrefix: prefix,
    flowsDir: path.resolve(cwd, env.FLOORFLOW_FLOWS_DIR || 'flows'),
    dashboardsDir: path.resolve(cwd, env.FLOORFLOW_DASHBOARDS_DIR || 'dashboards'),
    drainTimeoutMs: positiveInt(env, 'FLOORFLOW_DRAIN_TIMEOUT_MS', 10000),
    mqttMaxPayloadBytes: positiveInt(env, 'FLOORFLOW_MQTT_MAX_PAYLOAD', 256 * 1024),
    mqttMaxConnections: positiveInt(env, 'FLOORFLOW_MQTT_MAX_CONNECTIONS', 2000),
    mqttMaxPending: positiveInt(env, 'FLOORFLOW_MQTT_MAX_PENDING', 64),
    mqttConnectTimeoutMs: positiveInt(env, 'FLOORFLOW_MQTT_CONNECT_TIMEOUT_MS', 5000),
    mqttMaxConnectionsPerMachine: positiveInt(env, 'FLOORFLOW_MQTT_MAX_CONNECTIONS_PER_MACHINE', 8),
    mqttMaxRetainedPerMachine: positiveInt(env, 'FLOORFLOW_MQTT_MAX_RETAINED_PER_MACHINE', 20),
    mqttMaxRetainedBytesPerMachine: positiveInt(
      env,
      'FLOORFLOW_MQTT_MAX_RETAINED_BYTES_PER_MACHINE',
      1024 * 1024,
    ),
    adminCorsOrigins,
    httpMaxBody,
    logLevel,
    scanGroupCommit: onOff(env, 'FLOORFLOW_SCAN_GROUP_COMMIT', true),
    inboxFlushSpacingMs: wholeMs(env, 'FLOORFLOW_INBOX_FLUSH_SPACING_MS', 0, 1000),
    ingestSessions: positiveInt(env, 'FLOORFLOW_INGEST_SESSIONS', 6),
    leaseTtlMs: positiveInt(env, 'FLOORFLOW_LEASE_TTL_MS', 6000),
  };
}

export interface NodeRedSettingsInput {
  config: FloorflowConfig;
  /** bcrypt hash of the admin password, for an editor without floorflow's logins. */
  adminPasswordHash: string;
  /** Node-RED's adminAuth backed by floorflow's accounts and sessions (runtime/access.ts). */
  adminAuth?: Record<string, unknown>;
  /** Dashboard 2.0's socket.io middleware that checks each connection's login. */
  dashboardIoMiddleware?: (...args: never[]) => void;
  credentialSecret: string;
  /** Absolute path of the compiled floorflow nodes (dist/nodes). */
  nodesDir: string;
  /** Storage module that reads and writes the versioned flow files, if any. */
  storageModule?: object;
  /** Shared services the floorflow nodes reach through RED.settings.floorflow. */
  services: object;
}

/** The Node-RED settings object for the embedded runtime. */
export function nodeRedSettings(input: NodeRedSettingsInput): LocalSettings {
  const { config } = input;
  const settings: Record<string, unknown> = {
    userDir: path.join(config.dataDir, 'node-red'),
    nodesDir: [input.nodesDir],
    httpAdminRoot: '/editor',
    httpNodeRoot: '/',
    uiHost: config.host,
    uiPort: config.port,
    credentialSecret: input.credentialSecret,
    flowFile: 'flows.json',
    disableEditor: false,
    adminAuth: input.adminAuth ?? {
      type: 'credentials',
      users: [{ username: 'admin', password: input.adminPasswordHash, permissions: '*' }],
      sessionExpiryTime: 12 * 3600,
    },
    dashboard: input.dashboardIoMiddleware ? { ioMiddleware: input.dashboardIoMiddleware } : {},
    apiMaxLength: config.httpMaxBody,
    // Bad bodies get the contract's 4xx instead of the http in node's bare 500.
    httpNodeMiddleware: bodyParsers(config.httpMaxBody),
    functionExternalModules: false,
    externalModules: {
      autoInstall: false,
      palette: { allowInstall: false },
      modules: { allowInstall: false },
    },
    editorTheme: {
      page: { title: 'floorflow' },
      header: { title: 'floorflow' },
      projects: { enabled: false },
      tours: false,
      palette: { catalogues: [] },
    },
    logging: { console: { level: config.logLevel, metrics: false, audit: false } },
    diagnostics: { enabled: false },
    runtimeState: { enabled: false },
    telemetry: { enabled: false },
    floorflow: input.services,
  };
  if (input.storageModule) settings.storageModule = input.storageModule;
  return settings as unknown as LocalSettings;
}
