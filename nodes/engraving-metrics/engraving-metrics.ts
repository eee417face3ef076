// The engraving gauges (jobs queued, in work, completed today, QA pass rate, ...) on the
// runtime's event bus for the dashboards, every intervalSeconds on the runtime's clock and on
// any input. The engraving steps also send them after each change.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { engravingGlue, everyInterval } from '../common/engraving-node';
import { metricsEvent } from '../common/engraving-steps';
import { defineNode } from '../common/define-node';
import configSchema from './schema.json';

interface MetricsConfig {
  name?: string;
  db?: string;
  intervalSeconds: number;
  schemaVersion: number;
}

export = function register(RED: NodeAPI): void {
  defineNode<MetricsConfig>(
    RED,
    { type: 'floorflow-engraving-metrics', schema: configSchema as JsonSchema, needs: 'database' },
    (deps) => {
      const { node, config } = deps;
      const glue = engravingGlue(deps);
      everyInterval(deps, config.intervalSeconds * 1000, 'engraving metrics round', async () => {
        const { metrics, event } = await metricsEvent(glue.context());
        glue.emit([event]);
        node.status({
          fill: 'green',
          shape: 'dot',
          text: `${metrics.jobs_in_queue} queued, ${metrics.jobs_completed_today} done today`,
        });
      });
    },
  );
};
