// Node-RED glue for lifecycle-switch: resolves the configured lifecycle model at deploy, then for
// each message applies the requested transition (store/lifecycle), announces it, and sends the
// message out of the output of the new state; requests that cannot be applied leave by the last
// output with msg.error { code, statusCode, reason }.
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { FloorflowError, httpStatusOf } from '../../core/errors';
import { type LifecycleModel, outputOf, readSwitchInput, type SwitchRejection } from '../../core/lifecycle';
import { pickModel, SHIPPED_MODELS } from '../../core/lifecycle-models';
import type { JsonSchema } from '../../core/schema';
import { poolFor } from '../common/db';
import { actorOfMessage } from '../common/identity';
import { announceTransition } from '../common/lifecycle';
import { checkConfig, onInputAsync } from '../common/node-kit';
import { servicesOf, systemClock } from '../common/services';
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

type LifecycleSwitchDef = NodeDef & Partial<LifecycleSwitchConfig>;

const schema = configSchema as JsonSchema;

function configure(
  node: Node,
  def: LifecycleSwitchDef,
): { config: LifecycleSwitchConfig; model: LifecycleModel } | FloorflowError {
  // A copy: ajv fills defaults in place, and Node-RED compares this definition on redeploy.
  const config = checkConfig<LifecycleSwitchConfig>(node, schema, { ...def });
  if (!config)
    return new FloorflowError('FF_CONFIG_INVALID', 'invalid configuration; see the error logged at deploy');
  const picked = pickModel(config.model, config.customModel);
  if (picked.ok) return { config, model: picked.model };
  node.status({ fill: 'red', shape: 'ring', text: 'invalid lifecycle model' });
  const error = new FloorflowError('FF_CONFIG_INVALID', `invalid configuration: ${picked.error}`);
  node.error(error);
  return error;
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

  RED.nodes.registerType(
    'floorflow-lifecycle-switch',
    function LifecycleSwitchNode(this: Node, def: LifecycleSwitchDef) {
      RED.nodes.createNode(this, def);
      const configured = configure(this, def);
      let applied = 0;
      let rejected = 0;

      onInputAsync(this, async (msg, send, done) => {
        if (configured instanceof FloorflowError) {
          done(configured);
          return;
        }
        const { config, model } = configured;
        const outputs: Array<NodeMessage | null> = model.states.map(() => null);
        const reject = (error: SwitchRejection) => {
          rejected += 1;
          this.status({ fill: 'yellow', shape: 'dot', text: `${applied} applied, ${rejected} rejected` });
          send([...outputs, Object.assign(msg, { error })]);
          done();
        };
        const read = readSwitchInput(msg as unknown as Record<string, unknown>);
        if (!read.ok) return reject(rejection('FF_INPUT_INVALID', read.reason));
        const services = servicesOf(RED);
        const clock = services?.clock ?? systemClock;
        const request = read.input;
        // A request that came over HTTP was made by its login or API token, whatever msg.actor says.
        const actor = actorOfMessage(msg) ?? request.actor;
        const outcome = await applyTransition(poolFor(RED, config.db || undefined), model, {
          ...request,
          actor,
          source: request.source ?? (config.source || undefined),
          flowVersion: services?.flowVersion(this.z),
          at: clock.now(),
        });
        if (outcome.kind === 'not_found') return reject(rejection('FF_NOT_FOUND', outcome.reason));
        if (outcome.kind === 'rejected') return reject(rejection(outcome.code, outcome.reason));
        const event = await announceTransition(services, outcome.transition, (m) => this.warn(m));
        applied += 1;
        this.status({ fill: 'green', shape: 'dot', text: `${applied} applied, ${rejected} rejected` });
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
