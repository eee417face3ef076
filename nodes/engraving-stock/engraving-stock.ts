// Stock arrives for an item (POST /api/engraving/items/:itemId/stock): its jobs that waited for
// stock go on, rush first.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEngravingRoute } from '../common/engraving-node';
import { stockArrives } from '../common/engraving-steps';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEngravingRoute(RED, 'floorflow-engraving-stock', configSchema as JsonSchema, stockArrives);
};
