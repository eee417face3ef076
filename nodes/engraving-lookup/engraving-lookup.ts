// The read side of the engraving jobs: GET /api/engraving-jobs/:id (the job), its
// /preview.svg (the design preview) and GET /api/engraving/queue, told apart by the request.
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { defineEngravingRoute } from '../common/engraving-node';
import { lookUp } from '../common/engraving-steps';
import configSchema from './schema.json';

/** The path the `http in` node matched (express's req.path): tells the preview from the job. */
function pathOf(msg: NodeMessageInFlow): string {
  const req = (msg as NodeMessageInFlow & { req?: { path?: unknown } }).req;
  return typeof req?.path === 'string' ? req.path : '';
}

export = function register(RED: NodeAPI): void {
  defineEngravingRoute(RED, 'floorflow-engraving-lookup', configSchema as JsonSchema, (ctx, request, msg) =>
    lookUp(ctx, request, pathOf(msg)),
  );
};
