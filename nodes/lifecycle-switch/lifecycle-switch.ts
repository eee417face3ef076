// Node-RED glue for lifecycle-switch: resolves the configured lifecycle model at deploy, then for
// each message applies the requested transition (store/lifecycle; the lifecycle relay announces
// it after commit) and sends the message out of the output of the new state; requests that
// cannot be applied leave by the last output with msg.error { code, statusCode, reason }.
import type { NodeAPI, NodeMessage } from 'node-red';
import { FloorflowError, httpStatusOf } from '../../core/errors';
import { outputOf, readSwitchInput, type SwitchRejection } from '../../core/lifecycle';
import { pickModel, SHIPPED_MODELS } from '../../core/lifecycle-models';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { actorOfMessage } from '../common/identity';
import { lifecycleEventOf } from '../common/lifecycle';
import { onInputAsync } from '../common/node-kit';
import { withTransaction } from '../../store/db';
import { transition } from '../../store/lifecycle';
import configSchema from './schema.json';

interface LifecycleSwitchConfig {
  name: string;
  model: string;
  customModel: string;
  db: string;
  source: string;
  schemaVersion: 1;
}

const REFUSALS = new Set<string>(['FF_INPUT_INVALID', 'FF_NOT_FOUND', 'FF_TRANSITION_INVALID']);

function rejection(code: SwitchRejection['code'], reason: string): SwitchRejection {
  return { code, statusCode: httpStatusOf(new FloorflowError(code, reason)), reason, message: reason };
}

export = function register(RED: NodeAPI): void {
  // The editor reads the shipped models to offer them and to size the node's outputs.
  RED.httpAdmin.get(
    '/floorflow/lifecycle-models',
    RED.auth.needsPermission('floorflow-lifecycle-switch.read'),
    (_req, res) => {
      res.json(SHIPPED_MODELS);
    },
  );

  defineNode<LifecycleSwitchConfig>(
    RED,
    {
      type: 'floorflow-lifecycle-switch',
      schema: configSchema as JsonSchema,
      needs: 'database',
      check: (config) => {
        const picked = pickModel(config.model, config.customModel);
        return picked.ok ? undefined : { status: 'invalid lifecycle model', reason: picked.error };
      },
    },
    ({ node, config, clock, pool, flowVersion }) => {
      const picked = pickModel(config.model, config.customModel);
      if (!picked.ok) return; // refused by check
      const model = picked.model;
      let applied = 0;
      let rejected = 0;

      onInputAsync(node, async (msg, send, done) => {
        const outputs: Array<NodeMessage | null> = model.states.map(() => null);
        const reject = (error: SwitchRejection) => {
          rejected += 1;
          node.status({ fill: 'yellow', shape: 'dot', text: `${applied} applied, ${rejected} rejected` });
          send([...outputs, Object.assign(msg, { error })]);
          done();
        };
        const read = readSwitchInput(msg as unknown as Record<string, unknown>);
        if (!read.ok) return reject(rejection('FF_INPUT_INVALID', read.reason));
        const request = read.input;
        // A request that came over HTTP was made by its login or API token, whatever msg.actor says.
        const actor = actorOfMessage(msg) ?? request.actor;
        let moved;
        try {
          moved = await withTransaction(pool, (c) =>
            transition(c, model, {
              ...request,
              actor,
              source: request.source ?? (config.source || undefined),
              flowVersion: flowVersion(),
              at: clock.now(),
            }),
          );
        } catch (err) {
          // The one refusal contract of store/lifecycle: these leave by the reject output.
          if (err instanceof FloorflowError && REFUSALS.has(err.code)) {
            return reject(rejection(err.code as SwitchRejection['code'], err.message));
          }
          throw err;
        }
        // Announced on the bus and MQTT by the lifecycle relay once committed; sent on here.
        const event = lifecycleEventOf(moved);
        applied += 1;
        node.status({ fill: 'green', shape: 'dot', text: `${applied} applied, ${rejected} rejected` });
        outputs[outputOf(model, event.to)] = Object.assign(msg, {
          transition: { ...event, ...(moved.childId ? { childId: moved.childId } : {}) },
        });
        send([...outputs, null]);
        done();
      });
    },
  );
};
