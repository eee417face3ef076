// Node-RED glue for embossing-create: answers POST /api/embossing-jobs. The
// route itself is in nodes/common/embossing-routes.ts.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEmbossingRoute, createJobRoute } from '../common/embossing-routes';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEmbossingRoute(RED, {
    type: 'floorflow-embossing-create',
    schema: configSchema as JsonSchema,
    source: 'embossing create',
    route: createJobRoute,
    changedMessage: (changed) => ({ payload: changed.job, topic: `embossing/${changed.job.id}` }),
  });
};
