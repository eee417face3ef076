// Node-RED glue for alerts: evaluates the floor's alert rules (core/alerts) every
// intervalSeconds on the runtime's clock, and on any input. Each alert that begins or ends is
// recorded in floorflow.alerts, published on MQTT <prefix>/alerts, and sent on the output
// (msg.payload = the text, msg.alert = the event) for a ui-notification on every page.
import type { NodeAPI } from 'node-red';
import type { AlertRules } from '../../core/alerts';
import type { JsonSchema } from '../../core/schema';
import { checkAlerts } from './alert-check';
import { defineNode } from '../common/define-node';
import { onCloseAsync } from '../common/node-kit';
import { Refresher } from '../common/refresher';
import { openAlerts } from '../../store/alerts';
import { runOnce } from '../common/run-once';
import type { TimerHandle } from '../common/services';
import configSchema from './schema.json';

interface AlertsConfig {
  name?: string;
  db?: string;
  intervalSeconds: number;
  queueDepthAbove: number;
  qaPassRateBelow: number;
  qaMinResults: number;
  qaWindowHours: number;
  machineSilentMinutes: number;
  schemaVersion: number;
}

export = function register(RED: NodeAPI): void {
  defineNode<AlertsConfig>(
    RED,
    { type: 'floorflow-alerts', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, services, clock, pool }) => {
      const rules: AlertRules = {
        queueDepthAbove: config.queueDepthAbove,
        qaPassRateBelow: config.qaPassRateBelow,
        qaMinResults: config.qaMinResults,
        qaWindowHours: config.qaWindowHours,
        machineSilentMinutes: config.machineSilentMinutes,
      };
      const intervalMs = config.intervalSeconds * 1000;
      let open = 0;
      // One runtime at a time evaluates the rules (several may share the database); another takes
      // over within seconds when it dies. The open rows are shared, so nothing is announced twice.
      const lease = runOnce(services, 'alerts', (held) => {
        if (held) void check.request();
        else node.status({ fill: 'grey', shape: 'ring', text: 'standby: another runtime checks the rules' });
      });

      const check = new Refresher(async () => {
        if (!lease.held()) {
          node.status({ fill: 'grey', shape: 'ring', text: 'standby: another runtime checks the rules' });
          return;
        }
        try {
          const events = await checkAlerts(pool, rules, clock.now(), services, (m) => node.warn(m));
          for (const event of events) {
            open += event.event === 'began' ? 1 : -1;
            const text = event.event === 'began' ? `ALERT: ${event.message}` : `cleared: ${event.message}`;
            node.send({ topic: `alert/${event.rule}`, payload: text, alert: event });
          }
          node.status(
            open > 0
              ? { fill: 'red', shape: 'dot', text: `${open} open` }
              : { fill: 'green', shape: 'dot', text: 'no alerts' },
          );
        } catch (err) {
          node.status({ fill: 'red', shape: 'ring', text: 'check failed' });
          node.error(err);
        }
      });

      node.on('input', (_msg, _send, done: () => void) => {
        void check.request();
        done();
      });

      let timer: TimerHandle | undefined;
      const tick = () => {
        void check.request();
        timer = clock.setTimeout(tick, intervalMs);
      };
      timer = clock.setTimeout(tick, intervalMs);
      void (async () => {
        // Alerts a previous run left open stay open: count them, announce only changes.
        try {
          open = (await openAlerts(pool)).length;
        } catch {
          open = 0;
        }
        await check.request();
      })();

      onCloseAsync(node, async () => {
        clock.clearTimeout(timer);
        await check.stop();
        await lease.release();
      });
    },
  );
};
