// Delivers the customer notifications the engraving steps wrote to their outbox
// (engraving.notifications: design ready, no stock, complete, cancelled), every intervalSeconds
// on the runtime's clock; one that fails stays and goes on the next round. Who delivers them is
// nodes/common/engraving-notification-sender (a log line until a plant plugs in its own).
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { relayNotifications } from '../../store/engraving-notifications';
import { everyInterval } from '../common/engraving-node';
import { notificationSender } from '../common/engraving-notification-sender';
import { defineNode } from '../common/define-node';
import configSchema from './schema.json';

interface NotificationsConfig {
  name?: string;
  db?: string;
  intervalSeconds: number;
  schemaVersion: number;
}

export = function register(RED: NodeAPI): void {
  defineNode<NotificationsConfig>(
    RED,
    { type: 'floorflow-engraving-notifications', schema: configSchema as JsonSchema, needs: 'database' },
    (deps) => {
      const { node, config, pool, clock } = deps;
      everyInterval(deps, config.intervalSeconds * 1000, 'customer notification round', async () => {
        const relayed = await relayNotifications(
          pool,
          notificationSender((m) => node.log(m)),
          { now: clock.now() },
        );
        for (const f of relayed.failed) node.warn(`customer notification ${f.id} not sent: ${f.error}`);
        node.status(
          relayed.failed.length > 0
            ? { fill: 'yellow', shape: 'ring', text: `${relayed.failed.length} not sent` }
            : { fill: 'green', shape: 'dot', text: 'all sent' },
        );
      });
    },
  );
};
