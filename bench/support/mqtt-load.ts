// A QoS 1 load generator: N publisher clients, each keeping `window` publishes in flight,
// and one subscriber. It records publish→PUBACK and publish→delivery latencies (the
// payload carries the message's index; send times are kept here, in the same process).
import mqtt from 'mqtt';

export interface Credentials {
  username: string;
  password: string;
}

export interface LoadOptions {
  url: string;
  publishers: Array<Credentials & { topic: string }>;
  subscriber: Credentials & { filter: string };
  messagesPerPublisher: number;
  window: number;
  payloadBytes: number;
  timeoutMs: number;
}

export interface LoadResult {
  sent: number;
  acked: number;
  delivered: number;
  /** From the first publish to the last PUBACK. */
  ackElapsedMs: number;
  /** From the first publish to the last delivery at the subscriber. */
  deliveryElapsedMs: number;
  ackLatenciesMs: number[];
  deliveryLatenciesMs: number[];
}

function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

async function connect(url: string, credentials: Credentials, clientId: string): Promise<mqtt.MqttClient> {
  const client = mqtt.connect(url, {
    ...credentials,
    clientId,
    reconnectPeriod: 0,
    connectTimeout: 30000,
    keepalive: 60,
    protocolVersion: 4,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () =>
      reject(new Error(`${credentials.username}: connection closed before CONNACK`)),
    );
  });
  client.removeAllListeners('error');
  client.on('error', () => undefined);
  // Nagle's algorithm would hold small publishes back for the peer's delayed ACK.
  const stream = client.stream as { setNoDelay?: (noDelay: boolean) => void };
  stream.setNoDelay?.(true);
  return client;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const total = options.publishers.length * options.messagesPerPublisher;
  const sentAt = new Float64Array(total);
  const ackLatencies: number[] = [];
  const deliveryLatencies: number[] = [];
  const seen = new Uint8Array(total);
  let delivered = 0;
  let acked = 0;
  let sent = 0;
  let lastAck = 0;
  let lastDelivery = 0;

  const subscriber = await connect(options.url, options.subscriber, `bench-sub-${process.pid}`);
  await subscriber.subscribeAsync(options.subscriber.filter, { qos: 1 });
  const publishers: mqtt.MqttClient[] = [];
  // Connect in small groups: a burst of 100 CONNECTs is not what we measure.
  for (let i = 0; i < options.publishers.length; i += 10) {
    const group = options.publishers.slice(i, i + 10);
    publishers.push(
      ...(await Promise.all(
        // On floorflow's broker a machine's client id is its id or <id>/<suffix> (docs/machines.md).
        group.map((p, j) =>
          connect(
            options.url,
            p,
            p.username ? `${p.username}/bench-${i + j}` : `bench-pub-${process.pid}-${i + j}`,
          ),
        ),
      )),
    );
  }

  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const checkDone = () => {
    if (acked === total && delivered === total) finish();
  };
  subscriber.on('message', (_topic, payload) => {
    const index = payload.readUInt32BE(0);
    if (index >= total || seen[index]) return;
    seen[index] = 1;
    const t = now();
    deliveryLatencies.push(t - sentAt[index]);
    delivered++;
    lastDelivery = t;
    checkDone();
  });

  const started = now();
  const publishNext = (publisher: number, client: mqtt.MqttClient, state: { next: number }) => {
    if (state.next >= options.messagesPerPublisher) return;
    const index = publisher * options.messagesPerPublisher + state.next++;
    const payload = Buffer.alloc(options.payloadBytes, 0x61);
    payload.writeUInt32BE(index, 0);
    sentAt[index] = now();
    sent++;
    client.publish(options.publishers[publisher].topic, payload, { qos: 1 }, (err) => {
      if (err) return;
      const t = now();
      ackLatencies.push(t - sentAt[index]);
      acked++;
      lastAck = t;
      publishNext(publisher, client, state);
      checkDone();
    });
  };
  publishers.forEach((client, p) => {
    const state = { next: 0 };
    for (let w = 0; w < options.window; w++) publishNext(p, client, state);
  });

  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    finished,
    new Promise<void>((resolve) => (timer = setTimeout(resolve, options.timeoutMs))),
  ]);
  clearTimeout(timer);
  await Promise.all([...publishers, subscriber].map((c) => c.endAsync(true)));
  return {
    sent,
    acked,
    delivered,
    ackElapsedMs: (lastAck || now()) - started,
    deliveryElapsedMs: (lastDelivery || now()) - started,
    ackLatenciesMs: ackLatencies,
    deliveryLatenciesMs: deliveryLatencies,
  };
}
