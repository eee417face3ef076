// What the floorflow nodes may do with the embedded broker (FloorflowServices.broker), and the
// inbox's place in it: every scan, event and status a machine publishes goes through the
// runtime's inbox writer before its PUBACK. The runtime and the flow test kit wire both the same way.
import type { MachineTopicKind } from '../core/topics';
import type { BrokerAccess, Clock } from '../nodes/common/services';
import type { InboxWriter } from '../store/inbox-writer';
import type { EmbeddedBroker } from './broker';

const INBOX_KINDS = ['scan', 'event', 'status'] as const satisfies readonly MachineTopicKind[];

export function brokerAccessOf(broker: EmbeddedBroker): BrokerAccess {
  return {
    onlineMachines: () => broker.onlineMachines(),
    publish: (topic, payload, options = {}) =>
      new Promise<void>((resolve, reject) =>
        broker.aedes.publish(
          {
            cmd: 'publish',
            topic,
            payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
            qos: options.qos ?? 1,
            retain: options.retain ?? false,
            dup: false,
          },
          (err?: Error | null) => (err ? reject(err) : resolve()),
        ),
      ),
  };
}

/**
 * Makes the inbox writer the broker's durable handler for scans, events and status: a publish is
 * acknowledged once the writer has committed it, whether or not a flow runs. The time of receipt
 * is the runtime's clock's.
 */
export function attachInbox(broker: EmbeddedBroker, inbox: InboxWriter, clock: Clock): void {
  for (const kind of INBOX_KINDS) {
    broker.onDurable(kind, async (machineId, payload, packet) => {
      await inbox.write({ machineId, kind, topic: packet.topic, payload, receivedAt: clock.now() });
    });
  }
}
