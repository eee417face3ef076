// Answers GET /api/products/lifecycle?productId=: the product's state and stages.
import type { NodeAPI } from 'node-red';
import { failure, readProductId } from '../../core/products';
import type { JsonSchema } from '../../core/schema';
import { productLifecycle } from '../../store/products';
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
    { type: 'floorflow-product-lifecycle', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, pool }) => {
      onInputAsync(node, async (msg, send, done) => {
        const id = readProductId(productQuery(msg));
        if ('statusCode' in id) {
          send(respond(msg, id.statusCode, id.body));
        } else {
          const found = await productLifecycle(pool, id.productId);
          const result = found
            ? { statusCode: 200, body: { success: true, lifecycle: found } }
            : failure(404, `product ${id.productId} not found`);
          send(respond(msg, result.statusCode, result.body));
        }
        done();
      });
    },
  );
};
