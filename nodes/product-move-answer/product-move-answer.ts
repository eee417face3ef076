// Turns what a lifecycle switch sent for a product (msg.transition from a state output, or
// msg.error from its reject output) into the answer of the POST product routes.
import type { NodeAPI } from 'node-red';
import type { LifecycleEvent, SwitchRejection } from '../../core/lifecycle';
import { failure, rejectionAnswer, transitionAnswer } from '../../core/products';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { respond } from '../common/http-api';
import configSchema from './schema.json';

interface Config {
  name: string;
  schemaVersion: 1;
}

interface SwitchResult {
  transition?: LifecycleEvent & { childId?: string };
  error?: Partial<SwitchRejection>;
}

export = function register(RED: NodeAPI): void {
  defineNode<Config>(
    RED,
    { type: 'floorflow-product-move-answer', schema: configSchema as JsonSchema, needs: 'nothing' },
    ({ node }) => {
      node.on('input', (msg, send, done) => {
        const { transition, error } = msg as typeof msg & SwitchResult;
        const result = transition
          ? transitionAnswer(transition)
          : error && typeof error.statusCode === 'number' && typeof error.reason === 'string'
            ? rejectionAnswer(error as SwitchRejection)
            : failure(500, 'internal error');
        send(respond(msg, result.statusCode, result.body));
        done();
      });
    },
  );
};
