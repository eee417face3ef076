// The engravers' deadlines, checked every intervalSeconds on the runtime's clock: a job its
// engraver never acknowledged goes back to the engraver queue (output 1) and that engraver is
// told to cancel it (output 3, where it understands a cancel); a job whose engraver went silent
// after accepting it needs a person (output 2). The deadlines live in the job rows, so a restart
// or another runtime sees them.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { engravingGlue, everyInterval } from '../common/engraving-node';
import { deadlineRound, engraverCommandMessage, jobMessage } from '../common/engraving-steps';
import { defineNode } from '../common/define-node';
import configSchema from './schema.json';

interface DeadlinesConfig {
  name?: string;
  db?: string;
  intervalSeconds: number;
  schemaVersion: number;
}

export = function register(RED: NodeAPI): void {
  defineNode<DeadlinesConfig>(
    RED,
    { type: 'floorflow-engraving-deadlines', schema: configSchema as JsonSchema, needs: 'database' },
    (deps) => {
      const { node, config } = deps;
      const glue = engravingGlue(deps);
      everyInterval(deps, config.intervalSeconds * 1000, 'engraver deadline round', async (stopped) => {
        const ctx = glue.context();
        const { requeued, attention, events, commands } = await deadlineRound(ctx);
        glue.committed(events);
        node.status({
          fill: 'green',
          shape: 'dot',
          text: `checked ${ctx.now.toISOString().slice(11, 16)} UTC`,
        });
        if (stopped() || (requeued.length === 0 && attention.length === 0 && commands.length === 0)) return;
        node.send([
          requeued.length > 0
            ? { topic: 'engraving/requeued', payload: { requeued: requeued.map(Number) } }
            : null,
          attention.map((job) => jobMessage(job, 'engraving/needs-attention')),
          commands.map((c) => engraverCommandMessage(glue.topicPrefix, c)),
        ]);
      });
    },
  );
};
