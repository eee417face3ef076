// Node-RED glue shared by every floorflow node: config validation at construction,
// a safe async input handler, and the error shape Catch nodes see.
import type { Node, NodeMessageInFlow, NodeMessage } from 'node-red';
import { FloorflowError } from '../../core/errors';
import { JsonSchema, validate } from '../../core/schema';

export type SendFn = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>) => void;
export type DoneFn = (err?: Error) => void;

/**
 * @deprecated use defineNode (nodes/common/define-node.ts); goes once no node calls it.
 *
 * Validates a node's configuration against its schema. On failure the node shows a red
 * status and logs one clear error, and the caller should not start any work.
 */
export function checkConfig<T>(node: Node, schema: JsonSchema, config: unknown): T | undefined {
  const result = validate<T>(schema, config);
  if (result.ok) return result.value;
  node.status({ fill: 'red', shape: 'ring', text: 'invalid configuration' });
  node.error(new FloorflowError('FF_CONFIG_INVALID', `invalid configuration: ${result.error}`));
  return undefined;
}

/**
 * Registers an async input handler. Node-RED does not catch rejected promises from input
 * handlers (an unhandled rejection stops the process on Node 20), so the body's failure is
 * passed to done(err), where a Catch node sees it with the message.
 */
export function onInputAsync(
  node: Node,
  handler: (msg: NodeMessageInFlow, send: SendFn, done: DoneFn) => Promise<void>,
): void {
  node.on('input', (msg: NodeMessageInFlow, send: SendFn, done: DoneFn) => {
    handler(msg, send, done).then(
      () => undefined,
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
    );
  });
}

/** Registers a close handler that awaits async cleanup and always calls done. */
export function onCloseAsync(node: Node, cleanup: (removed: boolean) => Promise<void>): void {
  node.on('close', (removed: boolean, done: () => void) => {
    cleanup(removed).then(done, (err: unknown) => {
      node.warn(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
      done();
    });
  });
}
