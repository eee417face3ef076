// Node-RED glue shared by every floorflow node: a safe async input handler (its failure reaches
// done(err), where a Catch node sees it) and a close handler that awaits cleanup. Configuration
// is defineNode's (define-node.ts).
import type { Node, NodeMessageInFlow, NodeMessage } from 'node-red';

export type SendFn = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>) => void;
export type DoneFn = (err?: Error) => void;

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
