// What a node under node-red-node-test-helper showed in its status. The helper replaces
// Node.prototype.status with one spy shared by all nodes; a node's own calls are those whose
// `this` is that node.
import type { Node, NodeStatus } from 'node-red';
import type { SinonSpy } from 'sinon';

export function statusesOf(node: Node): NodeStatus[] {
  const spy = node.status as unknown as SinonSpy<[NodeStatus], void>;
  return spy
    .getCalls()
    .filter((call) => call.thisValue === node)
    .map((call) => call.args[0]);
}
