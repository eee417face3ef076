// `floorflow simulate embosser|engraver <machine_id>`: runs a simulated embossing machine or
// engraver against the broker until Ctrl-C, so the whole flow can be watched without hardware.
import { EmbosserSimulator } from './embosser-simulator';
import { EngraverSimulator } from './engraver-simulator';

export const SIMULATE_USAGE = `floorflow simulate <embosser|engraver> <machine_id> [--secret <secret>] [--url mqtt://host:port]
                    [--work-ms <ms>] [--fail-share <0..1>]
  (the secret may come from FLOORFLOW_MACHINE_SECRET, the URL from MQTT_URL)`;

export class SimulateUsageError extends Error {}

function take(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const value = args[i + 1];
  if (!value || value.startsWith('--')) throw new SimulateUsageError(`${name} needs a value`);
  args.splice(i, 2);
  return value;
}

export async function simulateCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const rest = [...args];
  const secret = take(rest, '--secret') ?? env.FLOORFLOW_MACHINE_SECRET;
  const url = take(rest, '--url') ?? env.MQTT_URL ?? `mqtt://127.0.0.1:${env.MQTT_PORT || 1883}`;
  const workMs = Number(take(rest, '--work-ms') ?? 3000);
  const failShare = Number(take(rest, '--fail-share') ?? 0);
  const [kind, machineId] = rest;
  if ((kind !== 'embosser' && kind !== 'engraver') || !machineId)
    throw new SimulateUsageError('simulate needs: embosser|engraver <machine_id>');
  if (!secret) throw new SimulateUsageError('no secret: pass --secret or set FLOORFLOW_MACHINE_SECRET');
  if (!Number.isFinite(workMs) || workMs < 0) throw new SimulateUsageError('--work-ms must be 0 or more');
  if (!Number.isFinite(failShare) || failShare < 0 || failShare > 1)
    throw new SimulateUsageError('--fail-share must be from 0 to 1');

  const options = { machineId, secret, url, workMs, failShare };
  const simulator = kind === 'engraver' ? new EngraverSimulator(options) : new EmbosserSimulator(options);
  simulator.on('job', (job: { jobId: string; attempt: number }) =>
    console.log(`job ${job.jobId}: received (attempt ${job.attempt})`),
  );
  simulator.on('reported', (r: { jobId: string; status: string }) =>
    console.log(`job ${r.jobId}: ${r.status}`),
  );
  simulator.on('error', (err: Error) => console.error(`simulator: ${err.message}`));
  await simulator.start();
  console.log(
    `${kind} ${machineId} connected to ${url}; ${workMs} ms per job, ${Math.round(failShare * 100)} % fail. Ctrl-C stops.`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await simulator.stop();
  return 0;
}
