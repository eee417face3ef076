// `floorflow simulate embosser|engraver <machine_id>`: runs a simulated embossing machine or
// engraver against the runtime's broker until Ctrl-C, so the whole flow can be watched without
// hardware. It finds the broker as the CLI finds the database: from the settings, and otherwise
// from the running runtime's <data dir>/runtime.json; never by trying 1883, where another
// broker may listen. Like a real machine it reconnects when the runtime restarts.
import { isRunning, readRuntimeAddress, runtimeAddressPath } from '../runtime/address-file';
import { loadConfig } from '../settings';
import { EmbosserSimulator } from './embosser-simulator';
import { EngraverSimulator } from './engraver-simulator';

export const SIMULATE_USAGE = `floorflow simulate <embosser|engraver> <machine_id> [--secret <secret>] [--url mqtt://host:port]
                    [--work-ms <ms>] [--fail-share <0..1>]
  (the secret may come from FLOORFLOW_MACHINE_SECRET; the broker from --url, MQTT_URL or MQTT_PORT,
   else the runtime running on FLOORFLOW_DATA_DIR)`;

export class SimulateUsageError extends Error {}

function take(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const value = args[i + 1];
  if (!value || value.startsWith('--')) throw new SimulateUsageError(`${name} needs a value`);
  args.splice(i, 2);
  return value;
}

/** The broker to connect to, and where that came from (said when it connects). */
export function brokerOf(url: string | undefined, env: NodeJS.ProcessEnv): { url: string; from: string } {
  if (url) return { url, from: '--url' };
  if (env.MQTT_URL) return { url: env.MQTT_URL, from: 'MQTT_URL' };
  if (env.MQTT_PORT && env.MQTT_PORT !== '0') {
    const host = !env.HOST || env.HOST === '0.0.0.0' ? '127.0.0.1' : env.HOST;
    return { url: `mqtt://${host}:${env.MQTT_PORT}`, from: 'MQTT_PORT' };
  }
  const { dataDir } = loadConfig(env);
  const running = readRuntimeAddress(dataDir);
  if (!running || !isRunning(running.pid)) {
    throw new SimulateUsageError(
      `no floorflow runtime is running on ${dataDir} (${runtimeAddressPath(dataDir)} ${running ? 'names a stopped one' : 'is missing'}): start it with npm start, set FLOORFLOW_DATA_DIR to its data directory, or name its broker with --url or MQTT_PORT`,
    );
  }
  return { url: running.mqtt, from: `the floorflow runtime (pid ${running.pid}) on ${dataDir}` };
}

export async function simulateCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const rest = [...args];
  const secret = take(rest, '--secret') ?? env.FLOORFLOW_MACHINE_SECRET;
  const given = take(rest, '--url');
  const workMs = Number(take(rest, '--work-ms') ?? 3000);
  const failShare = Number(take(rest, '--fail-share') ?? 0);
  const [kind, machineId] = rest;
  if ((kind !== 'embosser' && kind !== 'engraver') || !machineId)
    throw new SimulateUsageError('simulate needs: embosser|engraver <machine_id>');
  if (!secret) throw new SimulateUsageError('no secret: pass --secret or set FLOORFLOW_MACHINE_SECRET');
  if (!Number.isFinite(workMs) || workMs < 0) throw new SimulateUsageError('--work-ms must be 0 or more');
  if (!Number.isFinite(failShare) || failShare < 0 || failShare > 1)
    throw new SimulateUsageError('--fail-share must be from 0 to 1');
  const { url, from } = brokerOf(given, env);

  const options = { machineId, secret, url, workMs, failShare };
  const simulator = kind === 'engraver' ? new EngraverSimulator(options) : new EmbosserSimulator(options);
  simulator.on('job', (job: { jobId: string; attempt: number }) =>
    console.log(`job ${job.jobId}: received (attempt ${job.attempt})`),
  );
  simulator.on('reported', (r: { jobId: string; status: string }) =>
    console.log(`job ${r.jobId}: ${r.status}`),
  );
  simulator.on('error', (err: Error) => console.error(`simulator: ${err.message}`));
  simulator.on('disconnected', () =>
    console.log(`${kind} ${machineId}: broker gone, reconnecting to ${url}`),
  );
  simulator.on('reconnected', () => console.log(`${kind} ${machineId}: reconnected to ${url}`));
  await simulator.start();
  console.log(
    `${kind} ${machineId} connected to ${url} (from ${from}); ${workMs} ms per job, ${Math.round(failShare * 100)} % fail. Ctrl-C stops.`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await simulator.stop();
  return 0;
}
