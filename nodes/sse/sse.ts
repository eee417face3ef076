// Node-RED glue for floorflow-sse: registers a GET route on the runtime's HTTP app that streams
// lifecycle events (nodes/sse/lifecycle-stream), wakes the stream on each in-process lifecycle event,
// and removes the route and ends every stream when the node closes or the runtime drains.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NodeAPI } from 'node-red';
import { LIFECYCLE_EVENT } from '../../core/lifecycle';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { LifecycleStream } from './lifecycle-stream';
import { registerStream } from '../common/monitoring';
import { onCloseAsync } from '../common/node-kit';
import configSchema from './schema.json';

interface SseConfig {
  name: string;
  path: string;
  lifecycles: string;
  maxClients: number;
  heartbeatSeconds: number;
  db: string;
  schemaVersion: 1;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
interface RouterLayer {
  route?: { path: string; stack: Array<{ handle: unknown }> };
}

/** Removes the route whose handler is `handler` from Node-RED's HTTP app (as the http in node does). */
function removeRoute(RED: NodeAPI, handler: Handler): void {
  const app = RED.httpNode as unknown as { _router?: { stack: RouterLayer[] } };
  const stack = app._router?.stack;
  if (!stack) return;
  for (let i = stack.length - 1; i >= 0; i--) {
    if (stack[i].route?.stack.some((layer) => layer.handle === handler)) stack.splice(i, 1);
  }
}

export = function register(RED: NodeAPI): void {
  defineNode<SseConfig>(
    RED,
    { type: 'floorflow-sse', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, services, clock, pool }) => {
      const stream = new LifecycleStream(
        () => pool,
        clock,
        {
          lifecycles: config.lifecycles.split(',').map((name) => name.trim()),
          maxClients: config.maxClients,
          heartbeatMs: config.heartbeatSeconds * 1000,
        },
        (message) => node.warn(message),
      );
      const showClients = () =>
        node.status({
          fill: 'green',
          shape: stream.clientCount > 0 ? 'dot' : 'ring',
          text: `${stream.clientCount} clients`,
        });
      const handler: Handler = (req, res) => {
        stream.connect(req, res);
        showClients();
        res.on('close', showClients);
      };
      RED.httpNode.get(config.path, handler);
      const wake = () => stream.notify();
      const drain = () => void stream.close();
      services.events.on(LIFECYCLE_EVENT, wake);
      // The runtime waits for open requests before it stops; streams never finish on their own.
      services.events.on('draining', drain);
      showClients();
      // /api/dashboard/status counts this stream's connections.
      const unregister = registerStream(node.id, config.path, () => stream.clientCount);

      onCloseAsync(node, async () => {
        unregister();
        services.events.off(LIFECYCLE_EVENT, wake);
        services.events.off('draining', drain);
        removeRoute(RED, handler);
        await stream.close();
      });
    },
  );
};
