// All SQL of HTTP idempotency keys (floorflow.idempotency_keys): claim a key before its route
// runs, keep the route's answer with it, and read it back for a replay. runtime/idempotency.ts
// decides what a request gets.
import type { Queryable } from './db';

export interface StoredAnswer {
  status: number;
  contentType: string | null;
  body: string;
}

export type KeyClaim =
  | { kind: 'new' }
  | { kind: 'answered'; route: string; requestHash: string | null; answer: StoredAnswer }
  | { kind: 'in_flight'; route: string };

/**
 * Claims (scope, key) for a request on `route`. The insert decides races: of two copies arriving
 * together one runs, the other sees it in flight. A claim older than `expiredBefore` is
 * forgotten (the 24 h replay window), one unanswered since `abandonedBefore` (its runtime died
 * mid-request) is taken over.
 */
export async function claimKey(
  db: Queryable,
  claim: { scope: string; key: string; route: string; at: Date; expiredBefore: Date; abandonedBefore: Date },
): Promise<KeyClaim> {
  await db.query(
    `DELETE FROM floorflow.idempotency_keys
     WHERE scope = $1 AND key = $2 AND (created_at < $3 OR (status_code IS NULL AND created_at < $4))`,
    [claim.scope, claim.key, claim.expiredBefore, claim.abandonedBefore],
  );
  const inserted = await db.query(
    `INSERT INTO floorflow.idempotency_keys (scope, key, request_route, created_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT (scope, key) DO NOTHING`,
    [claim.scope, claim.key, claim.route, claim.at],
  );
  if (inserted.rowCount === 1) return { kind: 'new' };
  const found = await db.query<{
    request_route: string | null;
    request_hash: string | null;
    status_code: number | null;
    response: { contentType?: string | null; body?: string } | null;
  }>(
    `SELECT request_route, request_hash, status_code, response FROM floorflow.idempotency_keys
     WHERE scope = $1 AND key = $2`,
    [claim.scope, claim.key],
  );
  const row = found.rows[0];
  // Pruned between the two statements: it had expired, so this request is a new one.
  if (!row) return claimKey(db, claim);
  if (row.status_code === null) return { kind: 'in_flight', route: row.request_route ?? '' };
  return {
    kind: 'answered',
    route: row.request_route ?? '',
    requestHash: row.request_hash,
    answer: {
      status: row.status_code,
      contentType: row.response?.contentType ?? null,
      body: row.response?.body ?? '',
    },
  };
}

/** Keeps the route's answer with its key, for replays. */
export async function recordAnswer(
  db: Queryable,
  answer: { scope: string; key: string; requestHash: string; answer: StoredAnswer; at: Date },
): Promise<void> {
  await db.query(
    `UPDATE floorflow.idempotency_keys SET status_code = $3, response = $4::jsonb, request_hash = $5, answered_at = $6
     WHERE scope = $1 AND key = $2`,
    [
      answer.scope,
      answer.key,
      answer.answer.status,
      JSON.stringify({ contentType: answer.answer.contentType, body: answer.answer.body }),
      answer.requestHash,
      answer.at,
    ],
  );
}

/** Lets a key go without an answer (the route failed with a 5xx: trying again may succeed). */
export async function releaseKey(db: Queryable, scope: string, key: string): Promise<void> {
  await db.query(
    'DELETE FROM floorflow.idempotency_keys WHERE scope = $1 AND key = $2 AND status_code IS NULL',
    [scope, key],
  );
}

/** Forgets keys older than the replay window. */
export async function pruneKeys(db: Queryable, olderThan: Date): Promise<number> {
  const result = await db.query('DELETE FROM floorflow.idempotency_keys WHERE created_at < $1', [olderThan]);
  return result.rowCount ?? 0;
}
