// The query of a product read: the request's query string, or msg.payload when a flow sends
// the read itself (an inject or link node instead of an http in node).
import type { NodeMessage } from 'node-red';

export function productQuery(msg: NodeMessage): Record<string, unknown> {
  const req = (msg as { req?: { query?: Record<string, unknown> } }).req;
  return (req?.query ?? (msg.payload as Record<string, unknown> | undefined)) || {};
}
