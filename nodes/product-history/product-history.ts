// Answers GET /api/products/move-to-past?productId=: the product's transitions, newest first.
import type { NodeAPI } from 'node-red';
import { failure, readProductId } from '../../core/products';
import type { JsonSchema } from '../../core/schema';
import { productTransitions } from '../../store/products';
import { defineNode } from '../common/define-node';
import { respond } from '../common/http-api';
import { onInputAsync } from '../common/node-kit';
import { productQuery } from '../common/product-query';
import configSchema from './schema.json';

interface Config {
  name: string;
  db: string;
  schemaVersion: 1;
}

export = function register(RED: NodeAPI): void {
  defineNode<Config>(
    RED,
    { type: 'floorflow-product-history', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, pool }) => {
      onInputAsync(node, async (msg, send, done) => {
        const id = readProductId(productQuery(msg));
        if ('statusCode' in id) {
          send(respond(msg, id.statusCode, id.body));
        } else {
          const found = await productTransitions(pool, id.productId);
          const result = found
            ? { statusCode: 200, body: { success: true, history: found } }
            : failure(404, `product ${id.productId} not found`);
          send(respond(msg, result.statusCode, result.body));
        }
        done();
      });
    },
  );
};
