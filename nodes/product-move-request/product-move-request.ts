// Turns the POST body of a product route (dispatch, lifecycle API, legacy move to past) into a
// request for a lifecycle switch. Output 1: the answer to a body it refuses (to http response);
// output 2: the request (to the lifecycle switch of trackopz-product).
import type { NodeAPI } from 'node-red';
import { failure, readTransitionBody } from '../../core/products';
import type { JsonSchema } from '../../core/schema';
import { jobBelongsTo } from '../../store/products';
import { defineNode } from '../common/define-node';
import { respond } from '../common/http-api';
import { actorOfMessage } from '../common/identity';
import { onInputAsync } from '../common/node-kit';
import configSchema from './schema.json';

interface Config {
  name: string;
  transition: '' | 'move_to_past' | 'reactivate' | 'update_state';
  source: string;
  db: string;
  schemaVersion: 1;
}

export = function register(RED: NodeAPI): void {
  defineNode<Config>(
    RED,
    { type: 'floorflow-product-move-request', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, pool }) => {
      onInputAsync(node, async (msg, send, done) => {
        const read = readTransitionBody(msg.payload, config.transition || undefined);
        if ('statusCode' in read) {
          send([respond(msg, read.statusCode, read.body), null]);
          done();
          return;
        }
        const { jobId, ...request } = read.request;
        // The login or API token of the request is who moves the product.
        const actor = actorOfMessage(msg);
        if (actor) request.actor = actor;
        if (jobId !== undefined && !(await jobBelongsTo(pool, request.entityId, jobId))) {
          const refused = failure(404, `job ${jobId} of product ${request.entityId} not found`);
          send([respond(msg, refused.statusCode, refused.body), null]);
        } else {
          send([null, Object.assign(msg, request, { source: config.source || undefined })]);
        }
        done();
      });
    },
  );
};
