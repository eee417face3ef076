// Node-RED glue for dashboard-action: takes an action a display sends (msg.topic names it,
// msg.payload holds its fields), runs it through the domain's store and sends the outcome:
// msg.payload = {action, ok, message, data?} for a ui-notification and the page. A refusal
// the person can act on (a plate taken meanwhile) is an outcome; a fault goes to done(err).
// Who acts is the login of the display connection the message came from (msg._client, set by
// Dashboard 2.0 on the server); a viewer, a display or a connection without a login is refused.
import type { NodeAPI } from 'node-red';
import { actionRefusal, actorOf } from '../../core/access';
import { parseDashboardAction } from '../../core/dashboard-actions';
import type { JsonSchema } from '../../core/schema';
import { performAction, refusalOf } from './dashboard-actions';
import { defineNode } from '../common/define-node';
import { onInputAsync } from '../common/node-kit';
import configSchema from './schema.json';

interface DashboardActionConfig {
  name?: string;
  db?: string;
  schemaVersion: number;
}

export = function register(RED: NodeAPI): void {
  defineNode<DashboardActionConfig>(
    RED,
    { type: 'floorflow-dashboard-action', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, services, clock, pool, flowVersion }) => {
      onInputAsync(node, async (msg, send, done) => {
        let request;
        try {
          request = parseDashboardAction(msg.topic, msg.payload);
        } catch (err) {
          const refusal = refusalOf('unknown', err);
          if (!refusal) throw err;
          send({ ...msg, topic: 'action-result', payload: refusal });
          return done();
        }
        const identity = services.access?.identityOfClient((msg as { _client?: unknown })._client);
        const refused = actionRefusal(identity, request.action);
        if (refused || !identity) {
          const message = refused ?? 'log in to use this page';
          node.status({ fill: 'yellow', shape: 'ring', text: message.slice(0, 40) });
          send({ ...msg, topic: 'action-result', payload: { action: request.action, ok: false, message } });
          return done();
        }
        const result = await performAction(
          {
            services,
            pool,
            actor: actorOf(identity),
            now: clock.now(),
            flowVersion: flowVersion(),
            warn: (m) => node.warn(m),
          },
          request,
        );
        node.status({
          fill: result.ok ? 'green' : 'yellow',
          shape: 'dot',
          text: result.message.slice(0, 40),
        });
        send({ ...msg, topic: 'action-result', payload: result });
        done();
      });
    },
  );
};
