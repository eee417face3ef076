// `floorflow <command>`: start the runtime, manage machines, users and displays, import plant data,
// check and diff flows.
import type { Pool } from 'pg';
import { FloorflowConfig, SettingsError, loadConfig } from '../settings';
import { MACHINE_KINDS, MachineKind, MachineStore } from '../store/machines';
import { AccountsUsageError, accountsCommand } from './accounts';
import { SettingsUsageError, describeScannerSettings, scannerSettingsChange } from './machine-settings';
import { readScannerSettings } from '../core/scanner-settings';
import { updateScannerSettings } from '../store/scanner-settings';
import { migrate } from '../store/migrate';
import { openDatabase } from '../runtime/database';
import { RuntimeHandle, StartAborted, startRuntime } from '../runtime/index';
import { loadSecrets } from '../runtime/secrets';

const USAGE = `usage:
  floorflow start
  floorflow demo
  floorflow machine add <machine_id> --kind <${MACHINE_KINDS.join('|')}> [scanner settings]
  floorflow machine set <machine_id> [--default-operations <op,op,...>|none] [--double-send-window <2s>|none]
                        [--serial <port>|none] [--baud <9600>]   (scanner settings)
  floorflow machine list
  floorflow machine remove <machine_id>
  floorflow machine rotate-secret <machine_id>
  floorflow machine export --mosquitto <dir>
  floorflow user add <name> --role <engineer|operator|viewer> [--password <password>]
  floorflow user list
  floorflow user disable <name>
  floorflow user reset-password <name> [--password <password>]
  floorflow display add <name> [--pages <page,page,...>]
  floorflow display list
  floorflow display revoke <name>
  floorflow flows check [--dir <flows dir>]
  floorflow flows manifest | format | migrate [--dir <flows dir>]
  floorflow flows diff <git-rev>
  floorflow import <plates|jobs|products|engraving-items|orders> <file.csv|file.json>
  floorflow simulate <embosser|engraver> <machine_id> [--secret <secret>] [--url mqtt://host:port] [--work-ms <ms>] [--fail-share <0..1>]`;

export class UsageError extends Error {}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const value = args[i + 1];
  if (!value || value.startsWith('--')) throw new UsageError(`${name} needs a value`);
  args.splice(i, 2);
  return value;
}

/** Runs `work` on the runtime's database (the embedded one started for the command if needed). */
async function withDatabase<T>(config: FloorflowConfig, work: (pool: Pool) => Promise<T>): Promise<T> {
  const { secrets } = loadSecrets(config.dataDir, {});
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    password: secrets.databasePassword,
    poolSize: 2,
  });
  try {
    await migrate(db.pool);
    return await work(db.pool);
  } finally {
    // A server the runtime owns keeps running; one started for this command stops.
    await db.close({ stopEmbedded: db.embedded?.startedHere ?? false });
  }
}

async function withMachines<T>(
  config: FloorflowConfig,
  work: (store: MachineStore) => Promise<T>,
): Promise<T> {
  const { secrets } = loadSecrets(config.dataDir, {});
  return withDatabase(config, (pool) => work(new MachineStore(pool, secrets.machineSealKey)));
}

async function machineCommand(config: FloorflowConfig, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'add': {
      const kind = option(rest, '--kind');
      const change = scannerSettingsChange(rest);
      const [id] = rest;
      if (!id || !kind) throw new UsageError('machine add needs <machine_id> and --kind');
      if (!MACHINE_KINDS.includes(kind as MachineKind))
        throw new UsageError(`--kind must be one of ${MACHINE_KINDS.join(', ')}`);
      if (Object.keys(change).length > 0 && kind !== 'scanner')
        throw new UsageError(
          '--default-operations, --double-send-window, --serial and --baud are for scanners',
        );
      const secret = await withDatabase(config, async (pool) => {
        const { secrets } = loadSecrets(config.dataDir, {});
        const added = await new MachineStore(pool, secrets.machineSealKey).add(id, kind as MachineKind);
        if (Object.keys(change).length > 0) await updateScannerSettings(pool, id, change);
        return added;
      });
      console.log(`machine ${id} (${kind}) registered.`);
      console.log(`MQTT username: ${id}`);
      console.log(`MQTT password (shown once, stored hashed): ${secret}`);
      return 0;
    }
    case 'list': {
      const rows = await withMachines(config, (m) => m.list());
      if (rows.length === 0) console.log('no machines registered');
      for (const r of rows) {
        const state = (r.last_status?.state as string | undefined) ?? '-';
        const presence = r.online
          ? `online since ${r.online_since?.toISOString()}`
          : `offline${r.last_seen_at ? `, last seen ${r.last_seen_at.toISOString()}` : ''}`;
        const settings = describeScannerSettings(readScannerSettings(r.settings));
        console.log(
          `${r.machine_id}\t${r.kind}\t${presence}\tstatus ${state}${settings ? `\t${settings}` : ''}`,
        );
      }
      return 0;
    }
    case 'set': {
      const change = scannerSettingsChange(rest);
      const [id] = rest;
      if (!id || Object.keys(change).length === 0)
        throw new UsageError('machine set needs <machine_id> and at least one setting');
      const settings = await withDatabase(config, (pool) => updateScannerSettings(pool, id, change));
      if (!settings) {
        console.error(`machine ${id} is not registered`);
        return 1;
      }
      const described = describeScannerSettings(settings);
      console.log(
        `scanner ${id}: ${described || 'no settings of its own'} (running runtimes apply it within a second)`,
      );
      return 0;
    }
    case 'remove': {
      const [id] = rest;
      if (!id) throw new UsageError('machine remove needs <machine_id>');
      const removed = await withMachines(config, (m) => m.remove(id));
      console.log(removed ? `machine ${id} removed` : `machine ${id} was not registered`);
      return removed ? 0 : 1;
    }
    case 'rotate-secret': {
      const [id] = rest;
      if (!id) throw new UsageError('machine rotate-secret needs <machine_id>');
      const secret = await withMachines(config, (m) => m.rotateSecret(id));
      console.log(`new MQTT password for ${id} (shown once, stored hashed): ${secret}`);
      return 0;
    }
    case 'export': {
      const dir = option(rest, '--mosquitto');
      if (!dir) throw new UsageError('machine export needs --mosquitto <dir>');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const exporter = require('./mosquitto-export') as typeof import('./mosquitto-export');
      const machines = await withMachines(config, async (m) => {
        const credentials = [];
        for (const r of await m.list())
          credentials.push({ username: r.machine_id, password: (await m.secretOf(r.machine_id))! });
        return credentials;
      });
      const runtime = exporter.runtimeAccount(config.mqttUrl);
      const written = exporter.writeMosquittoFiles(dir, config.topicPrefix, machines, runtime);
      console.log(`${machines.length} machines written for Mosquitto:`);
      console.log(`  password file  ${written.passwordFile}`);
      console.log(`  ACL file       ${written.aclFile}`);
      console.log(
        `  load them with the lines in ${written.configFile}; reload Mosquitto (SIGHUP) after each export`,
      );
      if (!runtime)
        console.log(
          "  no runtime account: MQTT_URL has no user and password, add the runtimes' account yourself",
        );
      return 0;
    }
    default:
      throw new UsageError(`unknown machine command "${sub ?? ''}"`);
  }
}

async function start(config: FloorflowConfig): Promise<number> {
  // The handlers are there before anything starts: a service manager may stop the runtime
  // while it is still starting, and without them that signal would end the process at once
  // and leave the embedded database running on the data directory.
  const starting = new AbortController();
  let runtime: RuntimeHandle | undefined;
  let resolveStopped: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  const stopRuntime = (reason: string) =>
    runtime!.stop(reason).then(
      () => resolveStopped(0),
      (err: Error) => {
        console.error(`stop failed: ${err.message}`);
        resolveStopped(1);
      },
    );
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // npm and the terminal may both deliver one Ctrl-C; only a later second one forces.
    if (firstSignalAt > 0) {
      if (Date.now() - firstSignalAt < 1500) return;
      console.log(`${signal} again: stopping without waiting`);
      process.exit(130);
    }
    firstSignalAt = Date.now();
    if (runtime) void stopRuntime(signal);
    else starting.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    runtime = await startRuntime(config, undefined, { signal: starting.signal });
  } catch (err) {
    // A stop during the start is a clean stop: everything started was stopped again.
    if (err instanceof StartAborted) return 0;
    throw err;
  }
  // A signal between the start's last step and this line aborted nothing: stop now.
  if (starting.signal.aborted) void stopRuntime(String(starting.signal.reason));
  return stopped;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    const config = loadConfig();
    switch (command) {
      case 'start':
        return await start(config);
      case 'demo': {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const demo = require('./demo') as typeof import('./demo');
        return await demo.demoCommand();
      }
      case 'machine':
        return await machineCommand(config, args).catch((err: Error) => {
          throw err instanceof SettingsUsageError ? new UsageError(err.message) : err;
        });
      case 'user':
      case 'display':
        return await accountsCommand(config, command, args, withDatabase).catch((err: Error) => {
          throw err instanceof AccountsUsageError ? new UsageError(err.message) : err;
        });
      case 'import': {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const load = require('./import') as typeof import('./import');
        return await load
          .importCommand(args, (work) => withDatabase(config, work))
          .catch((err: Error) => {
            throw err instanceof load.ImportUsageError ? new UsageError(err.message) : err;
          });
      }
      case 'simulate': {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const simulate = require('./simulate') as typeof import('./simulate');
        return await simulate.simulateCommand(args).catch((err: Error) => {
          throw err instanceof simulate.SimulateUsageError ? new UsageError(err.message) : err;
        });
      }
      case 'flows': {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const flows = require('./flows') as {
          flowsCommand(config: FloorflowConfig, args: string[]): Promise<number>;
        };
        return await flows.flowsCommand(config, args);
      }
      case undefined:
      case 'help':
      case '--help':
        console.log(USAGE);
        return command ? 0 : 2;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`floorflow: ${err.message}\n${USAGE}`);
      return 2;
    }
    // One clear line; the stack only when asked for.
    console.error(`floorflow: ${(err as Error).message}`);
    if (process.env.FLOORFLOW_DEBUG && !(err instanceof SettingsError)) console.error((err as Error).stack);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
