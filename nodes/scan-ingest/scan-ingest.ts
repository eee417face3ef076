// Node-RED glue for scan-ingest: the flow's door to the durable inbox for scans. The runtime's inbox
// writer commits every MQTT scan before its PUBACK, whether or not a flow runs; this node sends on
// each scan the inbox committed (output 1) or kept as rejected (output 2), one message per scan.
// Scans of a serial scanner arrive as input messages and are written through the same inbox.
import type { Node, NodeAPI, NodeMessageInFlow } from 'node-red';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { machineTopic } from '../../core/topics';
import { defineNode } from '../common/define-node';
import { onCloseAsync, onInputAsync } from '../common/node-kit';
import type { InboxAccess } from '../common/services';
import type { InboxReceipt } from '../../store/inbox-writer';
import { MACHINE_ID_PATTERN } from '../../store/machines';
import type { StoredScan } from '../../store/scan-ingest';
import configSchema from './schema.json';

interface ScanIngestConfig {
  name: string;
  db: string;
  windowMs: number;
  serialMachineId: string;
  mqtt: boolean;
  schemaVersion: 1;
}

/** The scan ingest node that sends MQTT scans on, per inbox: the last deployed (one flow path, not two). */
const mqttIngest = new WeakMap<InboxAccess, Node>();

export = function register(RED: NodeAPI): void {
  defineNode<ScanIngestConfig>(
    RED,
    { type: 'floorflow-scan-ingest', schema: configSchema as JsonSchema, needs: 'runtime' },
    ({ node, config, services, clock }) => {
      const inbox = services.inbox;
      if (!inbox) {
        node.status({ fill: 'red', shape: 'ring', text: 'needs the floorflow runtime (no inbox)' });
        node.error(new FloorflowError('FF_CONFIG_INVALID', 'scan ingest runs only in the floorflow runtime'));
        return;
      }
      const prefix = services.topicPrefix;
      const counts = { stored: 0, duplicate: 0, rejected: 0 };
      inbox.setRepeatWindow(config.windowMs);

      const showCounts = (): void => {
        node.status({
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

      /** Sends on what became of one committed scan; repeats are counted, not sent. */
      const forward = (receipt: InboxReceipt): void => {
        if (receipt.kind !== 'scan') return;
        if (receipt.outcome === 'stored') {
          counts.stored += 1;
          node.send([scanMessage(receipt.scan, receipt.channel), null]);
        } else if (receipt.outcome === 'rejected') {
          counts.rejected += 1;
          node.send([
            null,
            {
              topic: machineTopic(prefix, receipt.machineId, 'scan'),
              payload: {
                machine_id: receipt.machineId,
                reason: receipt.rejected.reason,
                payload: receipt.rejected.payload,
              },
              channel: receipt.channel,
            },
          ]);
        } else {
          counts.duplicate += 1;
        }
      };

      const stops: Array<() => void> = [];
      if (config.mqtt) {
        mqttIngest.set(inbox, node);
        stops.push(
          inbox.onCommitted((receipts) => {
            if (mqttIngest.get(inbox) !== node) return;
            let scans = 0;
            for (const receipt of receipts) {
              if (receipt.kind !== 'scan' || receipt.channel !== 'mqtt') continue;
              scans += 1;
              forward(receipt);
            }
            if (scans > 0) showCounts();
          }),
          // A scan the database did not take is not acknowledged; the status says why, until one is stored.
          inbox.onRefused((err, messages) => {
            if (mqttIngest.get(inbox) !== node || !messages.some((m) => m.kind === 'scan')) return;
            node.status({
              fill: 'red',
              shape: 'ring',
              text: `not stored, not acknowledged: ${err.message}`.slice(0, 80),
            });
          }),
        );
        showCounts();
      } else {
        node.status({ fill: 'grey', shape: 'ring', text: 'serial input only' });
      }

      onInputAsync(node, async (msg: NodeMessageInFlow, _send, done) => {
        const payload = msg.payload;
        if (payload === undefined || payload === null) {
          throw new FloorflowError(
            'FF_INPUT_INVALID',
            'msg.payload must hold the scanned code or a scan object',
          );
        }
        // The serial scanners node names the registered scanner a line came from; a serial in
        // node names none, and its scans are the node's serial machine id's.
        const named = (msg as { machine_id?: unknown }).machine_id;
        const machineId =
          typeof named === 'string' && MACHINE_ID_PATTERN.test(named) ? named : config.serialMachineId;
        const receipt = await inbox.write({
          machineId,
          kind: 'scan',
          topic: machineTopic(prefix, machineId, 'scan'),
          payload:
            Buffer.isBuffer(payload) || typeof payload === 'string' ? payload : JSON.stringify(payload),
          receivedAt: clock.now(),
          channel: 'serial',
        });
        forward(receipt);
        showCounts();
        done();
      });

      onCloseAsync(node, async () => {
        for (const stop of stops) stop();
        if (mqttIngest.get(inbox) === node) mqttIngest.delete(inbox);
      });
    },
  );
};
