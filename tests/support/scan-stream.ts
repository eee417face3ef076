// A stream of QoS 1 scans from several scanner clients at a steady rate, for fault tests and
// benches. Each scan carries a unique msg_id; the stream records which ones the broker
// acknowledged (PUBACK), which is what a scanner treats as "stored". Clients reconnect by
// themselves, so the stream survives a runtime restart and resends what was not acknowledged.
import mqtt from 'mqtt';
import { MachineCredentials } from './machines';

export interface ScanStreamOptions {
  url: () => string;
  scanners: MachineCredentials[];
  ratePerSecond: number;
  /** Stops sending new scans after this many (the stream is bounded). */
  maxScans: number;
  topicPrefix?: string;
  /** The scanned code of the n-th scan. */
  codeFor?: (n: number) => string;
  reconnectPeriodMs?: number;
}

export interface ScanStream {
  /** msg_ids of scans the broker acknowledged. */
  readonly acked: Set<string>;
  /** msg_ids with the machine that sent them, for every scan published. */
  readonly sent: Map<string, string>;
  readonly ackLatenciesMs: number[];
  /** Resolves when every scan was sent and acknowledged, or after `timeoutMs`. */
  settled(timeoutMs: number): Promise<boolean>;
  /** Stops sending and closes every client (unacknowledged scans are dropped). */
  stop(): Promise<void>;
}

export function scanPayload(code: string, msgId: string): string {
  return JSON.stringify({
    code,
    operations: ['coating'],
    msg_id: msgId,
    scanned_at: new Date().toISOString(),
  });
}

export function startScanStream(options: ScanStreamOptions): ScanStream {
  const prefix = options.topicPrefix ?? 'floorflow';
  const codeFor = options.codeFor ?? ((n: number) => `JOB${100000 + n}`);
  const acked = new Set<string>();
  const sent = new Map<string, string>();
  const ackLatenciesMs: number[] = [];
  const clients = options.scanners.map((scanner) => {
    const client = mqtt.connect(options.url(), {
      username: scanner.username,
      password: scanner.password,
      clientId: `${scanner.username}/scan-stream`,
      // A persistent session so QoS 1 scans in flight are resent after a reconnect.
      clean: false,
      reconnectPeriod: options.reconnectPeriodMs ?? 250,
      // A scanner keeps trying when the runtime answers "server unavailable" (database down).
      reconnectOnConnackError: true,
      connectTimeout: 5000,
      keepalive: 30,
    });
    client.on('error', () => undefined);
    client.on('close', () => {
      // Point the next reconnect at the runtime's current address.
      const url = new URL(options.url());
      client.options.host = url.hostname;
      client.options.hostname = url.hostname;
      client.options.port = Number(url.port);
    });
    return { scanner, client };
  });
  // Scans sent and not yet acknowledged, per scanner: a scanner resends them after a reconnect
  // (its broker session may be gone with the runtime it was connected to).
  const pending = clients.map(() => new Map<string, { topic: string; payload: string; sentAt: number }>());
  let n = 0;
  // The rate counts from the moment every scanner is connected: connecting is not the load.
  let started: number | undefined;
  const waiters: Array<() => void> = [];
  const publish = (index: number, msgId: string) => {
    const entry = pending[index].get(msgId)!;
    clients[index].client.publish(entry.topic, entry.payload, { qos: 1 }, (err) => {
      if (err || !pending[index].has(msgId)) return;
      pending[index].delete(msgId);
      acked.add(msgId);
      ackLatenciesMs.push(Date.now() - entry.sentAt);
      if (acked.size === options.maxScans) waiters.splice(0).forEach((w) => w());
    });
  };
  clients.forEach(({ client }, index) => {
    let connectedBefore = false;
    client.on('connect', () => {
      if (connectedBefore) for (const msgId of pending[index].keys()) publish(index, msgId);
      connectedBefore = true;
    });
  });
  const tick = () => {
    if (started === undefined) {
      if (!clients.every(({ client }) => client.connected)) return;
      started = Date.now();
    }
    const due = Math.min(
      options.maxScans,
      Math.floor(((Date.now() - started) / 1000) * options.ratePerSecond),
    );
    while (n < due) {
      const index = n % clients.length;
      const { scanner } = clients[index];
      const msgId = `${scanner.username}-${n}`;
      sent.set(msgId, scanner.username);
      pending[index].set(msgId, {
        topic: `${prefix}/machines/${scanner.username}/scan`,
        payload: scanPayload(codeFor(n), msgId),
        sentAt: Date.now(),
      });
      publish(index, msgId);
      n++;
    }
    if (n >= options.maxScans) clearInterval(timer);
  };
  const timer = setInterval(tick, 10);
  return {
    acked,
    sent,
    ackLatenciesMs,
    settled: (timeoutMs) =>
      new Promise<boolean>((resolve) => {
        if (acked.size >= options.maxScans) return resolve(true);
        const t = setTimeout(() => resolve(false), timeoutMs);
        waiters.push(() => {
          clearTimeout(t);
          resolve(true);
        });
      }),
    stop: async () => {
      clearInterval(timer);
      await Promise.all(clients.map(({ client }) => client.endAsync(true)));
    },
  };
}
