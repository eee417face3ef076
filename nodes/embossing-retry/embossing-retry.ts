// Node-RED glue for embossing-retry: answers POST /api/embossing-jobs/:id/retry. The
// route itself is in nodes/common/embossing-routes.ts.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEmbossingRoute, retryJobRoute } from '../common/embossing-routes';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEmbossingRoute(RED, {
    type: 'floorflow-embossing-retry',
    schema: configSchema as JsonSchema,
    source: 'embossing retry',
    route: retryJobRoute,
    changedMessage: (changed) => ({ payload: changed.job, topic: `embossing/${changed.job.id}` }),
  });
};
