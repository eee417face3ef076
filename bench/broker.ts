// The embedded broker (Aedes, configured as floorflow runs it: machines authenticated
// against floorflow.machines, topic ACLs, presence rows, metrics) against a private
// Mosquitto with a password file and an equivalent ACL, measured in the same run with the
// same load: 100 publisher clients at QoS 1 and one subscriber receiving everything.
// Each broker runs in its own process; the load generator runs in this one.
// Usage: node dist/bench/broker.js [--quick] [--messages N per publisher] [--rounds N] [--window N]
import { ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { EmbeddedBroker, INTERNAL_MQTT_USER } from '../runtime/broker';
import { createPool } from '../store/db';
import { MachineStore } from '../store/machines';
import { createTestDatabase } from '../tests/support/db';
import { LoadResult, runLoad } from './support/mqtt-load';
import { startMosquitto } from './support/mosquitto';
import { argValue, cpuSecondsOf, median, percentile, ratio } from './support/stats';

const PREFIX = 'floorflow';
const quick = process.argv.includes('--quick');
const publisherCount = argValue('--publishers', 100);
const messagesPerPublisher = argValue('--messages', quick ? 50 : 1000);
const rounds = argValue('--rounds', quick ? 1 : 3);
const window = argValue('--window', 4);
const payloadBytes = argValue('--payload', 128);

/** Child mode: the embedded broker alone in a process, as in the runtime. */
async function serveAedes(): Promise<void> {
  const pool = createPool(process.env.BENCH_DATABASE_URL!, { max: 5 });
  const broker = await EmbeddedBroker.create({
    machines: new MachineStore(pool, process.env.BENCH_SEAL_KEY!),
    topicPrefix: PREFIX,
    internalPassword: process.env.BENCH_INTERNAL_PASSWORD!,
    runtimeId: 'bench',
    maxPayloadBytes: 262144,
    maxConnections: 2000,
    log: (level, message) => {
      if (level !== 'info') console.error(`[mqtt] ${level}: ${message}`);
    },
  });
  const port = await broker.listen(0, '127.0.0.1');
  console.log(`listening ${port}`);
  process.once('SIGTERM', () => {
    void broker.close().then(() => pool.end().then(() => process.exit(0)));
  });
}

async function startAedesProcess(env: NodeJS.ProcessEnv): Promise<{ port: number; child: ChildProcess }> {
  const nodeArgs = (process.env.BENCH_BROKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, __filename, '--serve-aedes'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /listening (\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`embedded broker exited with ${code}: ${text}`)));
  });
  child.removeAllListeners('exit');
  return { port, child };
}

interface Summary {
  throughput: number;
  deliveredPerSecond: number;
  ackP50: number;
  ackP99: number;
  deliveryP99: number;
  /** CPU seconds the broker and the load generator used, per 1,000 messages. */
  brokerCpuMsPerMessage: number;
  generatorCpuMsPerMessage: number;
  complete: boolean;
}

function summarise(result: LoadResult, total: number, brokerCpu: number, generatorCpu: number): Summary {
  return {
    brokerCpuMsPerMessage: (brokerCpu * 1000) / total,
    generatorCpuMsPerMessage: (generatorCpu * 1000) / total,
    throughput: (result.acked / result.ackElapsedMs) * 1000,
    deliveredPerSecond: (result.delivered / result.deliveryElapsedMs) * 1000,
    ackP50: percentile(result.ackLatenciesMs, 50),
    ackP99: percentile(result.ackLatenciesMs, 99),
    deliveryP99: percentile(result.deliveryLatenciesMs, 99),
    complete: result.acked === total && result.delivered === total,
  };
}

function line(label: string, s: Summary): string {
  return (
    `${label.padEnd(10)} ${s.throughput.toFixed(0).padStart(7)} msg/s acked, ` +
    `${s.deliveredPerSecond.toFixed(0).padStart(7)} msg/s delivered, ` +
    `PUBACK p50 ${s.ackP50.toFixed(1)} ms p99 ${s.ackP99.toFixed(1)} ms, delivery p99 ${s.deliveryP99.toFixed(1)} ms, ` +
    `CPU per message: broker ${(s.brokerCpuMsPerMessage * 1000).toFixed(0)} µs, load generator ${(s.generatorCpuMsPerMessage * 1000).toFixed(0)} µs` +
    (s.complete ? '' : '  (INCOMPLETE)')
  );
}

async function main(): Promise<void> {
  const db = await createTestDatabase();
  const sealKey = crypto.randomBytes(16).toString('hex');
  const internalPassword = crypto.randomBytes(24).toString('base64url');
  const store = new MachineStore(db.pool, sealKey);
  const machines: Array<{ username: string; password: string; topic: string }> = [];
  for (let i = 0; i < publisherCount; i++) {
    const id = `bench-press-${String(i).padStart(3, '0')}`;
    machines.push({
      username: id,
      password: await store.add(id, 'press'),
      topic: `${PREFIX}/machines/${id}/event`,
    });
  }
  const mosquitto = await startMosquitto(
    [...machines, { username: INTERNAL_MQTT_USER, password: internalPassword }],
    INTERNAL_MQTT_USER,
    PREFIX,
  );
  const aedes = await startAedesProcess({
    BENCH_DATABASE_URL: db.url,
    BENCH_SEAL_KEY: sealKey,
    BENCH_INTERNAL_PASSWORD: internalPassword,
  });
  const total = publisherCount * messagesPerPublisher;
  const load = (port: number) =>
    runLoad({
      url: `mqtt://127.0.0.1:${port}`,
      publishers: machines,
      subscriber: {
        username: INTERNAL_MQTT_USER,
        password: internalPassword,
        filter: `${PREFIX}/machines/+/event`,
      },
      messagesPerPublisher,
      window,
      payloadBytes,
      timeoutMs: 300000,
    });
  const results: Record<'aedes' | 'mosquitto', Summary[]> = { aedes: [], mosquitto: [] };
  try {
    console.log(
      `${publisherCount} publishers x ${messagesPerPublisher} QoS 1 messages of ${payloadBytes} bytes ` +
        `(${total} per broker per round), ${window} in flight per publisher, 1 subscriber, ${rounds} round(s)`,
    );
    for (let round = 0; round < rounds; round++) {
      // Alternate which broker goes first, so neither always gets the warmer machine.
      const order: Array<'aedes' | 'mosquitto'> =
        round % 2 === 0 ? ['mosquitto', 'aedes'] : ['aedes', 'mosquitto'];
      for (const which of order) {
        const pid = which === 'aedes' ? aedes.child.pid! : mosquitto.pid;
        const brokerCpu = cpuSecondsOf(pid);
        const generatorCpu = process.cpuUsage();
        const result = await load(which === 'aedes' ? aedes.port : mosquitto.port);
        const used = process.cpuUsage(generatorCpu);
        const summary = summarise(
          result,
          total,
          cpuSecondsOf(pid) - brokerCpu,
          (used.user + used.system) / 1e6,
        );
        results[which].push(summary);
        console.log(`round ${round + 1} ${line(which, summary)}`);
      }
    }
  } finally {
    const exited = new Promise((r) => aedes.child.once('exit', r));
    aedes.child.kill('SIGTERM');
    await exited;
    await mosquitto.stop();
    await db.drop();
  }
  const pick = (which: 'aedes' | 'mosquitto', key: keyof Omit<Summary, 'complete'>) =>
    median(results[which].map((s) => s[key]));
  const ours = pick('aedes', 'throughput');
  const baseline = pick('mosquitto', 'throughput');
  console.log(`\nmedian over ${rounds} round(s):`);
  for (const which of ['mosquitto', 'aedes'] as const) {
    console.log(
      line(which === 'aedes' ? 'floorflow' : 'mosquitto', {
        throughput: pick(which, 'throughput'),
        deliveredPerSecond: pick(which, 'deliveredPerSecond'),
        ackP50: pick(which, 'ackP50'),
        ackP99: pick(which, 'ackP99'),
        deliveryP99: pick(which, 'deliveryP99'),
        brokerCpuMsPerMessage: pick(which, 'brokerCpuMsPerMessage'),
        generatorCpuMsPerMessage: pick(which, 'generatorCpuMsPerMessage'),
        complete: results[which].every((s) => s.complete),
      }),
    );
  }
  console.log(
    `ratio floorflow / mosquitto: throughput ${ratio(ours, baseline)}, ` +
      `PUBACK p99 ${ratio(pick('aedes', 'ackP99'), pick('mosquitto', 'ackP99'))}, ` +
      `delivery p99 ${ratio(pick('aedes', 'deliveryP99'), pick('mosquitto', 'deliveryP99'))}; ` +
      `aim at least 0.50x throughput: ${ours / baseline >= 0.5 ? 'met' : 'NOT met'}`,
  );
  const incomplete = [...results.aedes, ...results.mosquitto].some((s) => !s.complete);
  if (incomplete) {
    console.error('some messages were not acknowledged or not delivered');
    process.exitCode = 1;
  }
}

if (process.argv.includes('--serve-aedes')) {
  serveAedes().catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
