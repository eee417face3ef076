// Node-RED glue for embossing-jobs: answers GET /api/embossing-jobs, GET /api/embossing-jobs/:id, GET /api/embossing-jobs/:id/logs (read-only). The
// route itself is in nodes/common/embossing-routes.ts.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEmbossingRoute, jobsRoute } from '../common/embossing-routes';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEmbossingRoute(RED, {
    type: 'floorflow-embossing-jobs',
    schema: configSchema as JsonSchema,
    source: 'embossing jobs',
    route: jobsRoute,
  });
};
