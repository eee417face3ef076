// The design timeout: a design the customer has not decided on within designTimeout hours is
// approved, checked every intervalSeconds on the runtime's clock; the approved jobs go on to the
// engraver queue (output 1).
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { engravingGlue, everyInterval } from '../common/engraving-node';
import { designTimeoutRound } from '../common/engraving-steps';
import { defineNode } from '../common/define-node';
import configSchema from './schema.json';

interface DesignTimeoutConfig {
  name?: string;
  db?: string;
  designTimeout: number;
  intervalSeconds: number;
  schemaVersion: number;
}

export = function register(RED: NodeAPI): void {
  defineNode<DesignTimeoutConfig>(
    RED,
    { type: 'floorflow-engraving-design-timeout', schema: configSchema as JsonSchema, needs: 'database' },
    (deps) => {
      const { node, config } = deps;
      const glue = engravingGlue(deps);
      everyInterval(deps, config.intervalSeconds * 1000, 'design timeout round', async (stopped) => {
        const ctx = glue.context();
        const { autoApproved, events } = await designTimeoutRound(ctx, config.designTimeout * 3600 * 1000);
        glue.committed(events);
        node.status({
          fill: 'green',
          shape: 'dot',
          text: `checked ${ctx.now.toISOString().slice(11, 16)} UTC`,
        });
        if (autoApproved.length > 0 && !stopped())
          node.send({
            topic: 'engraving/auto-approved',
            payload: { autoApproved: autoApproved.map(Number) },
          });
      });
    },
  );
};
