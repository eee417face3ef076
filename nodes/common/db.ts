// A floorflow-db config node as the nodes that use it see it: defineNode asks the node named by
// a node's `db` property for its pool (an empty `db` means the runtime's own database).
import type { Node } from 'node-red';
import type { Pool } from 'pg';

export interface DbConfigNode extends Node {
  /** The pool to use; throws FF_DB_UNAVAILABLE when none is configured. */
  getPool(): Pool;
}
