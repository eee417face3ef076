// <data dir>/runtime.json: where the running runtime's broker and HTTP listen, for the commands
// run beside it (`floorflow simulate`), so they connect to this runtime's broker, not to
// whatever else listens on 1883. Written once the runtime is ready, removed when it stops.
import fs from 'node:fs';
import path from 'node:path';

export interface RuntimeAddress {
  pid: number;
  /** mqtt://host:port of the embedded broker, or the external MQTT_URL. */
  mqtt: string;
  http: string;
  startedAt: string;
}

export function runtimeAddressPath(dataDir: string): string {
  return path.join(dataDir, 'runtime.json');
}

export function writeRuntimeAddress(dataDir: string, address: RuntimeAddress): () => Promise<void> {
  const file = runtimeAddressPath(dataDir);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(address, null, 2) + '\n');
  fs.renameSync(tmp, file);
  return async () => {
    // Only its own: a runtime started since on the same data dir keeps its file.
    const current = readRuntimeAddress(dataDir);
    if (current?.pid === address.pid) fs.rmSync(file, { force: true });
  };
}

export function readRuntimeAddress(dataDir: string): RuntimeAddress | undefined {
  try {
    const parsed = JSON.parse(
      fs.readFileSync(runtimeAddressPath(dataDir), 'utf8'),
    ) as Partial<RuntimeAddress>;
    if (typeof parsed.mqtt !== 'string' || typeof parsed.pid !== 'number') return undefined;
    return parsed as RuntimeAddress;
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote the file still runs (a killed runtime leaves its file behind). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
