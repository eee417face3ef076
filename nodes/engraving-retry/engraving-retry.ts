// An operator sends a job that needs attention back to the engraver queue
// (POST /api/engraving-jobs/:id/retry); the engraver that had it is avoided.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEngravingRoute } from '../common/engraving-node';
import { retryJobStep } from '../common/engraving-steps';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEngravingRoute(RED, 'floorflow-engraving-retry', configSchema as JsonSchema, retryJobStep);
};
