// The customer approves a job's design (POST /api/engraving-jobs/:id/design/approve): the job
// goes to the engraver queue.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEngravingRoute } from '../common/engraving-node';
import { approveDesignStep } from '../common/engraving-steps';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEngravingRoute(RED, 'floorflow-engraving-approval', configSchema as JsonSchema, approveDesignStep);
};
