// Node-RED glue for embossing-cancel: answers POST /api/embossing-jobs/:id/cancel. The
// route itself is in nodes/common/embossing-routes.ts.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEmbossingRoute, cancelJobRoute } from '../common/embossing-routes';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEmbossingRoute(RED, {
    type: 'floorflow-embossing-cancel',
    schema: configSchema as JsonSchema,
    source: 'embossing cancel',
    route: cancelJobRoute,
    // The job's state before the cancel: the embosser tells a machine that held it.
    changedMessage: (changed) => ({
      payload: changed.job,
      topic: `embossing/${changed.job.id}`,
      cancelled: { jobId: changed.job.id, from: changed.transitions[0]?.from },
    }),
  });
};
