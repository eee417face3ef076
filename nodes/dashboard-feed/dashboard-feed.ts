// Node-RED glue for dashboard-feed: sends its page's board, read from PostgreSQL, when a
// display opens the page or (re)connects (wire a ui-control and a ui-event to the input),
// when domain events arrive on the runtime's event bus, and every refreshSeconds. Nothing
// the page shows lives only in this process, so a restart loses nothing.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { BOARD_EVENT_CHANNELS, readBoard } from './dashboard-boards';
import { Refresher } from '../common/refresher';
import { nodePool } from '../common/db';
import { checkConfig, onCloseAsync } from '../common/node-kit';
import { TimerHandle, servicesOf, systemClock } from '../common/services';
import type { DashboardPage } from '../../store/dashboards';
import configSchema from './schema.json';

interface DashboardFeedConfig {
  name?: string;
  db?: string;
  page: DashboardPage;
  refreshSeconds: number | string;
  schemaVersion: number;
}

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType(
    'floorflow-dashboard-feed',
    function DashboardFeedNode(this: Node, def: NodeDef & DashboardFeedConfig) {
      RED.nodes.createNode(this, def);
      const config = checkConfig<DashboardFeedConfig>(this, configSchema as JsonSchema, { ...def });
      if (!config) return;
      const services = servicesOf(RED);
      const clock = services?.clock ?? systemClock;
      const pool = nodePool(RED, this, config.db);
      if (!pool) return;
      const refreshMs = Number(config.refreshSeconds) * 1000;

      const refresher = new Refresher(async () => {
        try {
          const payload = await readBoard(config.page, pool, clock.now());
          this.send({ topic: config.page, payload });
          this.status({ fill: 'green', shape: 'dot', text: `read ${payload.read_at.slice(11, 19)}` });
        } catch (err) {
          // The display keeps what it shows; the next trigger reads again.
          this.status({ fill: 'red', shape: 'ring', text: 'database read failed' });
          this.error(err);
        }
      });

      this.on('input', (_msg, _send, done: () => void) => {
        void refresher.request();
        done();
      });

      const onEvent = () => void refresher.request();
      for (const channel of BOARD_EVENT_CHANNELS) services?.events.on(channel, onEvent);

      let timer: TimerHandle | undefined;
      const tick = () => {
        void refresher.request();
        timer = clock.setTimeout(tick, refreshMs);
      };
      if (refreshMs > 0) timer = clock.setTimeout(tick, refreshMs);
      // A fresh board at deploy and start, for the displays already connected.
      void refresher.request();

      onCloseAsync(this, async () => {
        clock.clearTimeout(timer);
        for (const channel of BOARD_EVENT_CHANNELS) services?.events.off(channel, onEvent);
        await refresher.stop();
      });
    },
  );
};
