// What a node under node-red-node-test-helper showed in its status. The helper replaces
// Node.prototype.status with one spy shared by all nodes; a node's own calls are those whose
// `this` is that node.
import type { Node, NodeStatus } from 'node-red';
import helper from 'node-red-node-test-helper';
import type { SinonSpy } from 'sinon';

export function statusesOf(node: Node): NodeStatus[] {
  const spy = node.status as unknown as SinonSpy<[NodeStatus], void>;
  return spy
    .getCalls()
    .filter((call) => call.thisValue === node)
    .map((call) => call.args[0]);
}

/** The error messages a node logged under the test helper (what the editor's debug pane shows). */
export function errorsLoggedBy(id: string): string[] {
  const log = helper.log();
  return log.args
    .map(([entry]) => entry as { level: number; id?: string; msg: unknown })
    .filter((entry) => entry.level === (log as unknown as { ERROR: number }).ERROR && entry.id === id)
    .map((entry) => String(entry.msg));
}
