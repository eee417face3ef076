// Node-RED glue for embossing-plates: answers GET /api/plates?status= (read-only). The
// route itself is in nodes/common/embossing-routes.ts.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEmbossingRoute, selectablePlatesRoute } from '../common/embossing-routes';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEmbossingRoute(RED, {
    type: 'floorflow-embossing-plates',
    schema: configSchema as JsonSchema,
    source: 'embossing plates',
    route: selectablePlatesRoute,
  });
};
