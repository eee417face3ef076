// Node-RED glue for alerts: evaluates the seed 003 alert rules (core/alerts) every
// intervalSeconds on the runtime's clock, and on any input. Each alert that begins or ends is
// recorded in floorflow.alerts, published on MQTT <prefix>/alerts, and sent on the output
// (msg.payload = the text, msg.alert = the event) for a ui-notification on every page.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { AlertRules } from '../../core/alerts';
import type { JsonSchema } from '../../core/schema';
import { checkAlerts } from '../../kit/alert-check';
import { nodePool } from '../../kit/db';
import { checkConfig, onCloseAsync } from '../../kit/node-kit';
import { Refresher } from '../../kit/refresher';
import { openAlerts } from '../../store/alerts';
import { runOnce } from '../../kit/run-once';
import { TimerHandle, servicesOf, systemClock } from '../../kit/services';
import configSchema from './schema.json';

type Setting = number | string;

interface AlertsConfig {
  name?: string;
  db?: string;
  intervalSeconds: Setting;
  queueDepthAbove: Setting;
  qaPassRateBelow: Setting;
  qaMinResults: Setting;
  qaWindowHours: Setting;
  machineSilentMinutes: Setting;
  schemaVersion: number;
}

export = function register(RED: NodeAPI): void {
  RED.nodes.registerType('floorflow-alerts', function AlertsNode(this: Node, def: NodeDef & AlertsConfig) {
    RED.nodes.createNode(this, def);
    const config = checkConfig<AlertsConfig>(this, configSchema as JsonSchema, { ...def });
    if (!config) return;
    const services = servicesOf(RED);
    const clock = services?.clock ?? systemClock;
    const pool = nodePool(RED, this, config.db);
    if (!pool) return;
    const rules: AlertRules = {
      queueDepthAbove: Number(config.queueDepthAbove),
      qaPassRateBelow: Number(config.qaPassRateBelow),
      qaMinResults: Number(config.qaMinResults),
      qaWindowHours: Number(config.qaWindowHours),
      machineSilentMinutes: Number(config.machineSilentMinutes),
    };
    const intervalMs = Number(config.intervalSeconds) * 1000;
    let open = 0;
    // One runtime at a time evaluates the rules (several may share the database); another takes
    // over within seconds when it dies. The open rows are shared, so nothing is announced twice.
    const lease = runOnce(services, 'alerts', (held) => {
      if (held) void check.request();
      else this.status({ fill: 'grey', shape: 'ring', text: 'standby: another runtime checks the rules' });
    });

    const check = new Refresher(async () => {
      if (!lease.held()) {
        this.status({ fill: 'grey', shape: 'ring', text: 'standby: another runtime checks the rules' });
        return;
      }
      try {
        const events = await checkAlerts(pool, rules, clock.now(), services, (m) => this.warn(m));
        for (const event of events) {
          open += event.event === 'began' ? 1 : -1;
          const text = event.event === 'began' ? `ALERT: ${event.message}` : `cleared: ${event.message}`;
          this.send({ topic: `alert/${event.rule}`, payload: text, alert: event });
        }
        this.status(
          open > 0
            ? { fill: 'red', shape: 'dot', text: `${open} open` }
            : { fill: 'green', shape: 'dot', text: 'no alerts' },
        );
      } catch (err) {
        this.status({ fill: 'red', shape: 'ring', text: 'check failed' });
        this.error(err);
      }
    });

    this.on('input', (_msg, _send, done: () => void) => {
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

    onCloseAsync(this, async () => {
      clock.clearTimeout(timer);
      await check.stop();
      await lease.release();
    });
  });
};
