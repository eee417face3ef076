// Pending retries of the floorflow-retry-backoff node (floorflow.pending_retries): stored
// when an attempt fails, taken exactly once when the next attempt is due.
import type { Queryable } from './db';

export interface PendingRetry {
  id: string;
  nodeId: string;
  dueAt: Date;
  attempt: number;
  msg: Record<string, unknown>;
}

interface PendingRetryRow {
  id: string;
  node_id: string;
  due_at: Date;
  attempt: number;
  msg: Record<string, unknown>;
}

function fromRow(row: PendingRetryRow): PendingRetry {
  return { id: row.id, nodeId: row.node_id, dueAt: row.due_at, attempt: row.attempt, msg: row.msg };
}

/**
 * The message as JSON. HTTP req/res (and anything else that is not data) cannot be stored;
 * they stay with the in-memory copy while the process lives.
 */
export function storableMessage(msg: Record<string, unknown>): string {
  const { req: _req, res: _res, ...rest } = msg;
  const seen = new WeakSet<object>();
  return JSON.stringify(rest, (_key, value: unknown) => {
    if (typeof value === 'object' && value !== null) {
      if (seen.has(value)) return undefined;
      seen.add(value);
    }
    return typeof value === 'function' ? undefined : value;
  });
}

export async function addPendingRetry(
  db: Queryable,
  retry: { nodeId: string; dueAt: Date; attempt: number; msg: Record<string, unknown>; lastError?: unknown },
): Promise<PendingRetry> {
  const result = await db.query<PendingRetryRow>(
    `INSERT INTO floorflow.pending_retries (node_id, due_at, attempt, msg, last_error)
     VALUES ($1, $2, $3, $4::jsonb, $5::jsonb) RETURNING id, node_id, due_at, attempt, msg`,
    [
      retry.nodeId,
      retry.dueAt,
      retry.attempt,
      storableMessage(retry.msg),
      JSON.stringify(retry.lastError ?? null),
    ],
  );
  return fromRow(result.rows[0]);
}

/** Every retry a node holds, soonest first (what a restarted node schedules again). */
export async function pendingRetriesOf(db: Queryable, nodeId: string): Promise<PendingRetry[]> {
  const result = await db.query<PendingRetryRow>(
    `SELECT id, node_id, due_at, attempt, msg FROM floorflow.pending_retries WHERE node_id = $1 ORDER BY due_at, id`,
    [nodeId],
  );
  return result.rows.map(fromRow);
}

/**
 * Removes a due retry and returns it, or undefined when another runtime (or an earlier
 * timer) already took it: only the caller that deletes the row sends the message.
 */
export async function takePendingRetry(db: Queryable, id: string): Promise<PendingRetry | undefined> {
  const result = await db.query<PendingRetryRow>(
    `DELETE FROM floorflow.pending_retries WHERE id = $1 RETURNING id, node_id, due_at, attempt, msg`,
    [id],
  );
  return result.rows[0] ? fromRow(result.rows[0]) : undefined;
}
