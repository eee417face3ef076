// The engrave command: a job the engraver queue claimed (msg.payload from the queue worker)
// becomes the MQTT message for its engraver's command topic (for an `mqtt out` node).
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import type { ClaimedEngraving } from '../../store/engraving';
import { engravingGlue, type RouteConfig } from '../common/engraving-node';
import { commandMessage } from '../common/engraving-steps';
import { defineNode } from '../common/define-node';
import type { DoneFn, SendFn } from '../common/node-kit';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineNode<RouteConfig>(
    RED,
    { type: 'floorflow-engraving-command', schema: configSchema as JsonSchema, needs: 'database' },
    (deps) => {
      const { node } = deps;
      const glue = engravingGlue(deps);
      node.on('input', (msg: NodeMessageInFlow, send: SendFn, done: DoneFn) => {
        const claimed = msg.payload as ClaimedEngraving;
        node.status({ fill: 'blue', shape: 'dot', text: `job ${claimed.id} → ${claimed.machine_id}` });
        // The claim committed in the queue worker; the floor pages hear of it here.
        glue.committed([
          {
            channel: 'engraving',
            body: {
              type: 'job.status',
              jobId: Number(claimed.id),
              status: 'engraving',
              machineId: claimed.machine_id,
            },
          },
        ]);
        send(Object.assign(msg, commandMessage(glue.topicPrefix, claimed)));
        done();
      });
    },
  );
};
