// Orders come in (POST /api/engraving-jobs): the item and text are checked, one unit of stock
// is reserved, and the job is queued, waits for its design's approval, or waits for stock.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEngravingRoute } from '../common/engraving-node';
import { placeOrder } from '../common/engraving-steps';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEngravingRoute(RED, 'floorflow-engraving-order', configSchema as JsonSchema, placeOrder);
};
