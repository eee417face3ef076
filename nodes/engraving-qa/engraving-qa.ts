// The QA inspector's result (POST /api/engraving-jobs/:id/qa), the process's decision: a pass
// completes the job, a failure goes back to be re-engraved, the last allowed failure to a manager.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEngravingRoute } from '../common/engraving-node';
import { qualityCheck } from '../common/engraving-steps';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEngravingRoute(RED, 'floorflow-engraving-qa', configSchema as JsonSchema, qualityCheck);
};
