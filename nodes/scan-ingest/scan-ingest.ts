// Node-RED glue for scan-ingest: makes every scan durable in jobmanager.scanned_codes before it
// is acknowledged. MQTT scans come through the broker's durable hook (the PUBACK waits for the
// commit); serial scans come as input messages. Stored scans leave on output 1 for scan-parser,
// rejected ones on output 2.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { FloorflowError } from '../../core/errors';
import { readIncomingScan } from '../../core/job-status';
import type { JsonSchema } from '../../core/schema';
import { machineTopic } from '../../core/topics';
import { poolFor } from '../../kit/db';
import { checkConfig, onCloseAsync, onInputAsync } from '../../kit/node-kit';
import { servicesOf, systemClock } from '../../kit/services';
import { insertScan, rejectScan, type StoredScan } from '../../store/job-status';
import configSchema from './schema.json';

interface ScanIngestConfig {
  name: string;
  db: string;
  windowMs: number | string;
  serialMachineId: string;
  mqtt: boolean;
  schemaVersion: 1;
}

const schema = configSchema as JsonSchema;

function payloadText(payload: unknown): string {
  if (Buffer.isBuffer(payload)) return payload.toString('utf8');
  if (typeof payload === 'string') return payload;
  try {
    return JSON.stringify(payload) ?? String(payload);
  } catch {
    return String(payload);
  }
}

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType(
    'floorflow-scan-ingest',
    function ScanIngestNode(this: Node, def: NodeDef & Partial<ScanIngestConfig>) {
      RED.nodes.createNode(this, def);
      const config = checkConfig<ScanIngestConfig>(this, schema, { ...def });
      if (!config) return;
      const services = servicesOf(RED);
      const clock = services?.clock ?? systemClock;
      const windowMs = Number(config.windowMs);
      const prefix = services?.topicPrefix ?? 'floorflow';
      const counts = { stored: 0, duplicate: 0, rejected: 0 };

      const showCounts = (): void => {
        this.status({
          fill: counts.rejected > 0 ? 'yellow' : 'green',
          shape: 'dot',
          text: `${counts.stored} stored, ${counts.duplicate} repeats, ${counts.rejected} rejected`,
        });
      };

      const scanMessage = (scan: StoredScan, channel: 'mqtt' | 'serial') => {
        const payload: Record<string, unknown> = {
          code: scan.code_text,
          operations: scan.operations,
          scanned_at: scan.scanned_at.toISOString(),
        };
        if (scan.user_id !== null) payload.user_id = scan.user_id;
        if (scan.msg_id !== null) payload.msg_id = scan.msg_id;
        return {
          topic: machineTopic(prefix, scan.machine_id, 'scan'),
          payload,
          scan_id: scan.scan_id,
          machine_id: scan.machine_id,
          channel,
        };
      };

      /**
       * Stores one scan. Resolves when it is committed, or when it is a repeat or can never be
       * stored (then it is kept in rejected_scans): in all three cases the sender may forget it.
       * Rejects only when the database did not take it, so MQTT leaves it unacknowledged.
       */
      const ingest = async (
        machineId: string,
        payload: unknown,
        channel: 'mqtt' | 'serial',
      ): Promise<void> => {
        const now = clock.now();
        const pool = poolFor(RED, config!.db || undefined);
        const read = readIncomingScan(payload);
        if (!read.ok) {
          const text = payloadText(payload);
          await rejectScan(pool, machineId, text, read.reason, now);
          counts.rejected += 1;
          showCounts();
          this.send([
            null,
            {
              topic: machineTopic(prefix, machineId, 'scan'),
              payload: { machine_id: machineId, reason: read.reason, payload: text },
              channel,
            },
          ]);
          return;
        }
        const result = await insertScan(pool, machineId, read.scan, { now, windowMs });
        if (result.stored) {
          counts.stored += 1;
          this.send([scanMessage(result.scan, channel), null]);
        } else {
          counts.duplicate += 1;
        }
        showCounts();
      };

      // A scan the database did not take is not acknowledged; the status says why, until one is stored.
      const onScan = async (machineId: string, payload: Buffer): Promise<void> => {
        try {
          await ingest(machineId, payload, 'mqtt');
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          this.status({
            fill: 'red',
            shape: 'ring',
            text: `not stored, not acknowledged: ${reason}`.slice(0, 80),
          });
          throw err;
        }
      };
      if (config.mqtt) {
        if (services?.broker) {
          services.broker.onDurable('scan', onScan);
          showCounts();
        } else {
          this.status({ fill: 'yellow', shape: 'ring', text: 'no embedded broker: serial input only' });
        }
      }

      onInputAsync(this, async (msg: NodeMessageInFlow, _send, done) => {
        if (msg.payload === undefined || msg.payload === null) {
          throw new FloorflowError(
            'FF_INPUT_INVALID',
            'msg.payload must hold the scanned code or a scan object',
          );
        }
        await ingest(config.serialMachineId, msg.payload, 'serial');
        done();
      });

      onCloseAsync(this, async () => {
        services?.broker?.offDurable('scan', onScan);
      });
    },
  );
};
