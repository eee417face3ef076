// Node-RED glue for the product routes: answers the reads from store/products, turns a
// POST body into a lifecycle-switch request, and turns the switch's result into the answer.
// Output 1 carries msg.statusCode and msg.payload for an http response node; output 2 carries
// transition requests to a lifecycle switch.
import type { NodeAPI, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { LifecycleEvent, SwitchRejection } from '../../core/lifecycle';
import {
  failure,
  type HttpAnswer,
  readProductId,
  readTransitionBody,
  rejectionAnswer,
  transitionAnswer,
} from '../../core/products';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { actorOfMessage } from '../common/identity';
import { responseTimes, streamConnections } from '../common/monitoring';
import { onInputAsync } from '../common/node-kit';
import {
  dashboardStatus,
  dispatchableProducts,
  jobBelongsTo,
  productLifecycle,
  productTransitions,
} from '../../store/products';
import configSchema from './schema.json';

interface ProductsConfig {
  name: string;
  action: 'dispatchable' | 'lifecycle' | 'history' | 'dashboard' | 'request' | 'reply';
  transition: '' | 'move_to_past' | 'reactivate' | 'update_state';
  source: string;
  db: string;
  schemaVersion: 1;
}

type HttpMessage = NodeMessageInFlow & {
  req?: { query?: Record<string, unknown> };
  transition?: LifecycleEvent & { childId?: string };
  error?: Partial<SwitchRejection>;
};

function answer(msg: HttpMessage, result: HttpAnswer): NodeMessage {
  return Object.assign(msg, { statusCode: result.statusCode, payload: result.body });
}

export = function register(RED: NodeAPI): void {
  defineNode<ProductsConfig>(
    RED,
    { type: 'floorflow-products', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, clock, pool }) => {
      onInputAsync(node, async (input, send, done) => {
        const msg = input as HttpMessage;
        const query = (msg.req?.query ?? (msg.payload as Record<string, unknown> | undefined)) || {};
        const reply = (result: HttpAnswer) => {
          send([answer(msg, result), null]);
          done();
        };

        switch (config.action) {
          case 'dispatchable': {
            const products = await dispatchableProducts(pool);
            return reply({
              statusCode: 200,
              body: { success: true, data: products, count: products.length },
            });
          }
          case 'lifecycle':
          case 'history': {
            const id = readProductId(query);
            if ('statusCode' in id) return reply(id);
            const found =
              config.action === 'lifecycle'
                ? await productLifecycle(pool, id.productId)
                : await productTransitions(pool, id.productId);
            if (!found) return reply(failure(404, `product ${id.productId} not found`));
            const key = config.action === 'lifecycle' ? 'lifecycle' : 'history';
            return reply({ statusCode: 200, body: { success: true, [key]: found } });
          }
          case 'dashboard': {
            const now = clock.now();
            const status = await dashboardStatus(pool, now);
            // Monitoring: this runtime's API answer times and live stream connections.
            const monitoring = { responseTimes: responseTimes(), streams: streamConnections() };
            return reply({
              statusCode: 200,
              body: { success: true, status: { ...status, monitoring }, timestamp: now.toISOString() },
            });
          }
          case 'request': {
            const read = readTransitionBody(msg.payload, config.transition || undefined);
            if ('statusCode' in read) return reply(read);
            const { jobId, ...request } = read.request;
            // The login or API token of the request is who moves the product.
            const actor = actorOfMessage(msg);
            if (actor) request.actor = actor;
            if (jobId !== undefined && !(await jobBelongsTo(pool, request.entityId, jobId))) {
              return reply(failure(404, `job ${jobId} of product ${request.entityId} not found`));
            }
            send([null, Object.assign(msg, request, { source: config.source || undefined })]);
            done();
            return;
          }
          case 'reply': {
            if (msg.transition) return reply(transitionAnswer(msg.transition));
            const error = msg.error;
            if (error && typeof error.statusCode === 'number' && typeof error.reason === 'string') {
              return reply(rejectionAnswer(error as SwitchRejection));
            }
            return reply(failure(500, 'internal error'));
          }
        }
      });
    },
  );
};
