// A revised design for a rejected one (POST /api/engraving-jobs/:id/design): it goes back for
// approval, or waits for stock.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEngravingRoute } from '../common/engraving-node';
import { reviseDesignStep } from '../common/engraving-steps';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEngravingRoute(RED, 'floorflow-engraving-revision', configSchema as JsonSchema, reviseDesignStep);
};
