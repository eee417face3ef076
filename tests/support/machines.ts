// Registers many machines for a runtime started by startRuntimeProcess, the way
// `floorflow machine add` does (same seal key from <dataDir>/secrets.json, same store),
// without one CLI process per machine. With the embedded database it falls back to the CLI.
import fs from 'node:fs';
import path from 'node:path';
import { MachineKind, MachineStore } from '../../store/machines';
import { createPool } from '../../store/db';
import { runCli } from './runtime-process';

export interface MachineCredentials {
  username: string;
  password: string;
}

export async function registerMachines(
  env: NodeJS.ProcessEnv,
  ids: string[],
  kind: MachineKind,
): Promise<MachineCredentials[]> {
  if (!env.DATABASE_URL) {
    return ids.map((id) => {
      const added = runCli(['machine', 'add', id, '--kind', kind], env);
      const secret = /MQTT password \(shown once, stored hashed\): (\S+)/.exec(added.stdout)?.[1];
      if (added.status !== 0 || !secret) throw new Error(`machine add ${id} failed: ${added.stderr}`);
      return { username: id, password: secret };
    });
  }
  const secrets = JSON.parse(fs.readFileSync(path.join(env.FLOORFLOW_DATA_DIR!, 'secrets.json'), 'utf8')) as {
    machineSealKey: string;
  };
  const pool = createPool(env.DATABASE_URL, { max: 2 });
  try {
    const store = new MachineStore(pool, secrets.machineSealKey);
    const registered: MachineCredentials[] = [];
    for (const id of ids) registered.push({ username: id, password: await store.add(id, kind) });
    return registered;
  } finally {
    await pool.end();
  }
}
