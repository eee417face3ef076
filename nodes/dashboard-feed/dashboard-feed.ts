// Node-RED glue for dashboard-feed: sends its page's board, read from PostgreSQL, when a
// display opens the page or (re)connects (wire a ui-control and a ui-event to the input),
// when domain events arrive on the runtime's event bus, and every refreshSeconds. Nothing
// the page shows lives only in this process, so a restart loses nothing.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { BOARD_EVENT_CHANNELS, readBoard } from './dashboard-boards';
import { Refresher } from '../common/refresher';
import { defineNode } from '../common/define-node';
import { onCloseAsync } from '../common/node-kit';
import type { TimerHandle } from '../common/services';
import type { DashboardPage } from '../../store/dashboards';
import configSchema from './schema.json';

interface DashboardFeedConfig {
  name?: string;
  db?: string;
  page: DashboardPage;
  refreshSeconds: number;
  schemaVersion: number;
}

export = function register(RED: NodeAPI): void {
  defineNode<DashboardFeedConfig>(
    RED,
    { type: 'floorflow-dashboard-feed', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, services, clock, pool }) => {
      const refreshMs = config.refreshSeconds * 1000;

      const refresher = new Refresher(async () => {
        try {
          const payload = await readBoard(config.page, pool, clock.now());
          node.send({ topic: config.page, payload });
          node.status({ fill: 'green', shape: 'dot', text: `read ${payload.read_at.slice(11, 19)}` });
        } catch (err) {
          // The display keeps what it shows; the next trigger reads again.
          node.status({ fill: 'red', shape: 'ring', text: 'database read failed' });
          node.error(err);
        }
      });

      node.on('input', (_msg, _send, done: () => void) => {
        void refresher.request();
        done();
      });

      const onEvent = () => void refresher.request();
      for (const channel of BOARD_EVENT_CHANNELS) services.events.on(channel, onEvent);

      let timer: TimerHandle | undefined;
      const tick = () => {
        void refresher.request();
        timer = clock.setTimeout(tick, refreshMs);
      };
      if (refreshMs > 0) timer = clock.setTimeout(tick, refreshMs);
      // A fresh board at deploy and start, for the displays already connected.
      void refresher.request();

      onCloseAsync(node, async () => {
        clock.clearTimeout(timer);
        for (const channel of BOARD_EVENT_CHANNELS) services.events.off(channel, onEvent);
        await refresher.stop();
      });
    },
  );
};
