// Node-RED glue for serial-scanners: opens the serial port of every scanner registered with one
// (`floorflow machine add wedge-1 --kind scanner --serial /dev/ttyUSB0`) and sends each line it
// reads on, as a scan of that machine, to scan ingest (msg.machine_id). A flow's `serial in` node
// has its port fixed in the flow file; the registry is read here at run time instead, so adding
// a scanner needs no deploy. An open port is the scanner's connection (presence); a port that
// closes or is missing is shown as the scanner's status on the machines page and tried again.
import { ReadlineParser } from '@serialport/parser-readline';
import type { NodeAPI } from 'node-red';
import { SerialPort } from 'serialport';
import { FloorflowError } from '../../core/errors';
import { lineExcerpt } from '../../core/excerpt';
import type { JsonSchema } from '../../core/schema';
import { machineTopic } from '../../core/topics';
import { defineNode } from '../common/define-node';
import { onCloseAsync } from '../common/node-kit';
import type { TimerHandle } from '../common/services';
import {
  recordSerialStatus,
  serialPortClosed,
  serialPortOpened,
  serialScanners,
  type SerialScanner,
} from '../../store/serial-scanners';
import configSchema from './schema.json';

interface SerialScannersConfig {
  name: string;
  db: string;
  rescanSeconds: number;
  schemaVersion: 1;
}

/** Longest line kept: a scanner's code is short; a port spewing noise must not grow a message. */
const MAX_LINE = 4096;

interface OpenPort {
  scanner: SerialScanner;
  port: SerialPort;
  /** The session of the open port, once recorded. */
  session?: Promise<number>;
  closing?: boolean;
}

export = function register(RED: NodeAPI): void {
  defineNode<SerialScannersConfig>(
    RED,
    { type: 'floorflow-serial-scanners', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, services, clock, pool }) => {
      const { runtimeId, topicPrefix: prefix } = services;
      const open = new Map<string, OpenPort>();
      /** The last problem per scanner, so a missing port is reported once, not at every rescan. */
      const problems = new Map<string, string>();
      let timer: TimerHandle | undefined;
      let stopped = false;
      let rescanning: Promise<void> | undefined;

      const showStatus = (): void => {
        if (problems.size > 0) {
          const [machineId, problem] = [...problems.entries()][0];
          node.status({
            fill: 'yellow',
            shape: 'ring',
            text: lineExcerpt(`${open.size} open; ${machineId}: ${problem}`, 60),
          });
        } else {
          node.status({
            fill: open.size > 0 ? 'green' : 'grey',
            shape: open.size > 0 ? 'dot' : 'ring',
            text:
              open.size > 0
                ? `${open.size} port${open.size > 1 ? 's' : ''} open`
                : 'no serial scanner registered',
          });
        }
      };

      const report = (scanner: SerialScanner, problem: string): void => {
        if (problems.get(scanner.machineId) === problem) return;
        problems.set(scanner.machineId, problem);
        node.warn(`scanner ${scanner.machineId}: ${problem}`);
        showStatus();
      };

      const logFailure = (what: string) => (err: Error) => node.warn(`${what}: ${err.message}`);

      const close = (entry: OpenPort, reason: string): Promise<void> => {
        if (entry.closing) return Promise.resolve();
        entry.closing = true;
        open.delete(entry.scanner.machineId);
        const ended = (entry.session ?? Promise.resolve(undefined)).then((seq) =>
          seq === undefined ? undefined : serialPortClosed(pool, entry.scanner, seq, reason),
        );
        if (entry.port.isOpen) entry.port.close(() => undefined);
        showStatus();
        return ended.catch(logFailure(`presence of ${entry.scanner.machineId} not recorded`));
      };

      const openPort = (scanner: SerialScanner): void => {
        const port = new SerialPort({ path: scanner.port, baudRate: scanner.baudRate, autoOpen: false });
        const entry: OpenPort = { scanner, port };
        open.set(scanner.machineId, entry);
        port.on('error', () => undefined); // reported through open's callback or 'close'
        port.open((err) => {
          if (err) {
            open.delete(scanner.machineId);
            const problem = `serial port ${scanner.port} cannot be opened (${err.message})`;
            if (!problems.has(scanner.machineId)) {
              recordSerialStatus(pool, scanner.machineId, {
                state: 'offline',
                port: scanner.port,
                reason: problem,
              }).catch(logFailure(`status of ${scanner.machineId} not recorded`));
            }
            report(scanner, problem);
            return;
          }
          if (stopped || open.get(scanner.machineId) !== entry) {
            port.close(() => undefined);
            return;
          }
          problems.delete(scanner.machineId);
          entry.session = serialPortOpened(pool, scanner, runtimeId);
          entry.session.catch(logFailure(`presence of ${scanner.machineId} not recorded`));
          node.log(
            `scanner ${scanner.machineId}: reading serial port ${scanner.port} at ${scanner.baudRate} baud`,
          );
          showStatus();
        });
        port.on('close', (err?: { disconnected?: boolean; message?: string }) => {
          if (entry.closing) return;
          const problem = err?.disconnected
            ? `serial port ${scanner.port} disappeared`
            : `serial port ${scanner.port} closed${err?.message ? ` (${err.message})` : ''}`;
          void close(entry, problem);
          report(scanner, problem);
        });
        const lines = port.pipe(new ReadlineParser({ delimiter: '\n' }));
        lines.on('data', (raw: string) => {
          const line = raw.replace(/\r$/, '').slice(0, MAX_LINE);
          if (line.trim() === '') return;
          node.send({
            topic: machineTopic(prefix, scanner.machineId, 'scan'),
            payload: line,
            machine_id: scanner.machineId,
            serial_port: scanner.port,
          });
        });
      };

      /** Opens the registered ports that are not open, closes those no longer registered. */
      const rescan = async (): Promise<void> => {
        let registered: SerialScanner[];
        try {
          registered = await serialScanners(pool);
        } catch (err) {
          node.status({ fill: 'red', shape: 'ring', text: 'registry not readable' });
          node.warn(
            new FloorflowError('FF_DB_UNAVAILABLE', `serial scanners: ${(err as Error).message}`).message,
          );
          return;
        }
        if (stopped) return;
        const wanted = new Map(registered.map((s) => [s.machineId, s]));
        for (const entry of [...open.values()]) {
          const now = wanted.get(entry.scanner.machineId);
          if (!now || now.port !== entry.scanner.port || now.baudRate !== entry.scanner.baudRate) {
            await close(entry, 'serial port no longer registered for this scanner');
          }
        }
        for (const id of [...problems.keys()]) if (!wanted.has(id)) problems.delete(id);
        for (const scanner of registered) if (!open.has(scanner.machineId)) openPort(scanner);
        showStatus();
      };

      const tick = (): void => {
        rescanning = rescan().finally(() => {
          rescanning = undefined;
          if (!stopped) timer = clock.setTimeout(tick, config.rescanSeconds * 1000);
        });
      };
      tick();

      onCloseAsync(node, async () => {
        stopped = true;
        clock.clearTimeout(timer);
        await rescanning;
        await Promise.all([...open.values()].map((entry) => close(entry, 'flow stopped')));
      });
    },
  );
};
