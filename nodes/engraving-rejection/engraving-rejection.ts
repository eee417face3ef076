// The customer rejects a job's design (POST /api/engraving-jobs/:id/design/reject): the job waits
// for a revised design and its stock goes back.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEngravingRoute } from '../common/engraving-node';
import { rejectDesignStep } from '../common/engraving-steps';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEngravingRoute(RED, 'floorflow-engraving-rejection', configSchema as JsonSchema, rejectDesignStep);
};
