// Node-RED glue for lifecycle-switch: resolves the configured lifecycle model at deploy, then for
// each message applies the requested transition (store/lifecycle), announces it, and sends the
// message out of the output of the new state; requests that cannot be applied leave by the last
// output with msg.error { code, statusCode, reason }.
import type { NodeAPI, NodeMessage } from 'node-red';
import { FloorflowError, httpStatusOf } from '../../core/errors';
import { outputOf, readSwitchInput, type SwitchRejection } from '../../core/lifecycle';
import { pickModel, SHIPPED_MODELS } from '../../core/lifecycle-models';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { actorOfMessage } from '../common/identity';
import { announceTransition } from '../common/lifecycle';
import { onInputAsync } from '../common/node-kit';
import { applyTransition } from '../../store/lifecycle';
import configSchema from './schema.json';

interface LifecycleSwitchConfig {
  name: string;
  model: string;
  customModel: string;
  db: string;
  source: string;
  schemaVersion: 1;
}

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
    ({ node, config, services, clock, pool, flowVersion }) => {
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
        const outcome = await applyTransition(pool, model, {
          ...request,
          actor,
          source: request.source ?? (config.source || undefined),
          flowVersion: flowVersion(),
          at: clock.now(),
        });
        if (outcome.kind === 'not_found') return reject(rejection('FF_NOT_FOUND', outcome.reason));
        if (outcome.kind === 'rejected') return reject(rejection(outcome.code, outcome.reason));
        const event = await announceTransition(services, outcome.transition, (m) => node.warn(m));
        applied += 1;
        node.status({ fill: 'green', shape: 'dot', text: `${applied} applied, ${rejected} rejected` });
        const transition = {
          ...event,
          ...(outcome.transition.childId ? { childId: outcome.transition.childId } : {}),
        };
        outputs[outputOf(model, event.to)] = Object.assign(msg, { transition });
        send([...outputs, null]);
        done();
      });
    },
  );
};
