// Answers GET /api/live-products/dispatchable: the products whose latest job is ON.
import type { NodeAPI } from 'node-red';
import type { JsonSchema } from '../../core/schema';
import { dispatchableProducts } from '../../store/products';
import { defineNode } from '../common/define-node';
import { respond } from '../common/http-api';
import { onInputAsync } from '../common/node-kit';
import configSchema from './schema.json';

interface Config {
  name: string;
  db: string;
  schemaVersion: 1;
}

export = function register(RED: NodeAPI): void {
  defineNode<Config>(
    RED,
    { type: 'floorflow-products-dispatchable', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, pool }) => {
      onInputAsync(node, async (msg, send, done) => {
        const products = await dispatchableProducts(pool);
        send(respond(msg, 200, { success: true, data: products, count: products.length }));
        done();
      });
    },
  );
};
