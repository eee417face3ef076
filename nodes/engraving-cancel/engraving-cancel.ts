// An operator cancels a job (POST /api/engraving-jobs/:id/cancel); the engraver holding it is
// told to stop where it understands a cancel command.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEngravingRoute } from '../common/engraving-node';
import { cancelJobStep } from '../common/engraving-steps';
import configSchema from './schema.json';

export = function register(RED: NodeAPI): void {
  defineEngravingRoute(
    RED,
    'floorflow-engraving-cancel',
    configSchema as JsonSchema,
    (ctx, request, _msg, glue) => cancelJobStep(ctx, request, glue.topicPrefix),
  );
};
