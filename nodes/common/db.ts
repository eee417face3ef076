// How a floorflow node finds its database: its `db` property names a floorflow-db config
// node; without one, the runtime's own pool is used.
import type { Node, NodeAPI } from 'node-red';
import type { Pool } from 'pg';
import { FloorflowError } from '../../core/errors';
import { servicesOf } from './services';

export interface DbConfigNode extends Node {
  /** The pool to use; throws FF_DB_UNAVAILABLE when none is configured. */
  getPool(): Pool;
}

/** @deprecated use defineNode with needs 'database'; goes once no node calls it. */
export function poolFor(RED: NodeAPI, dbNodeId: string | undefined): Pool {
  if (dbNodeId) {
    const dbNode = RED.nodes.getNode(dbNodeId) as DbConfigNode | null;
    if (!dbNode || typeof dbNode.getPool !== 'function') {
      throw new FloorflowError(
        'FF_CONFIG_INVALID',
        `database config node ${dbNodeId} is missing or not a floorflow-db`,
      );
    }
    return dbNode.getPool();
  }
  const services = servicesOf(RED);
  if (!services) throw new FloorflowError('FF_DB_UNAVAILABLE', 'no database: add a floorflow-db config node');
  return services.pool;
}

/**
 * @deprecated use defineNode with needs 'database'; goes once no node calls it.
 *
 * poolFor at a node's construction: when there is no database the node shows a red
 * "no database" status, logs why, and gets undefined (it then does nothing else).
 */
export function nodePool(RED: NodeAPI, node: Node, dbNodeId: string | undefined): Pool | undefined {
  try {
    return poolFor(RED, dbNodeId || undefined);
  } catch (err) {
    node.status({ fill: 'red', shape: 'ring', text: 'no database' });
    node.error(err);
    return undefined;
  }
}
