// What the floorflow nodes may do with the embedded broker (FloorflowServices.broker): the
// runtime and the flow test kit hand the same adapter to the nodes.
import type { BrokerAccess } from '../kit/services';
import type { EmbeddedBroker } from './broker';

export function brokerAccessOf(broker: EmbeddedBroker): BrokerAccess {
  return {
    onDurable: (kind, handler) => broker.onDurable(kind, handler),
    offDurable: (kind, handler) => broker.offDurable(kind, handler),
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
