// Leases in floorflow.leases: who does a piece of work that must run on one runtime at a time,
// and which runtimes are alive. Every comparison uses the database's clock (clock_timestamp()),
// never the runtime's: two runtimes whose clocks differ by a minute must still agree on whether
// a lease has expired.
import type { Queryable } from './db';

export interface LeaseRow {
  name: string;
  holder: string;
  expires_at: Date;
  acquired_at: Date;
}

/** The lease that says a runtime is alive; its holder is the runtime id. */
export function runtimeLeaseName(runtimeId: string): string {
  return `runtime/${runtimeId}`;
}

/**
 * Takes each named lease that is free (never taken, or expired) or already ours, for `ttlMs` from
 * now. Returns the names this holder holds afterwards. One statement per call: two runtimes
 * racing for the same free lease are serialised by its row, and only one of them sees it returned.
 */
export async function acquireLeases(
  db: Queryable,
  names: readonly string[],
  holder: string,
  ttlMs: number,
): Promise<string[]> {
  if (names.length === 0) return [];
  const result = await db.query<{ name: string }>(
    `INSERT INTO floorflow.leases AS l (name, holder, expires_at, acquired_at, renewed_at)
     SELECT n, $2, clock_timestamp() + $3 * interval '1 millisecond', clock_timestamp(), clock_timestamp()
     FROM unnest($1::text[]) AS n
     ORDER BY n
     ON CONFLICT (name) DO UPDATE
       SET holder = EXCLUDED.holder,
           expires_at = EXCLUDED.expires_at,
           renewed_at = EXCLUDED.renewed_at,
           acquired_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.acquired_at ELSE EXCLUDED.acquired_at END
       WHERE l.holder = EXCLUDED.holder OR l.expires_at < clock_timestamp()
     RETURNING l.name`,
    [names, holder, ttlMs],
  );
  return result.rows.map((r) => r.name).sort();
}

/**
 * Renews the leases this holder still holds (unexpired) and returns their names. A lease that
 * expired is not renewed even if nobody took it yet: its work may already be starting elsewhere,
 * so the holder must stop and take it again the ordinary way.
 */
export async function renewLeases(
  db: Queryable,
  names: readonly string[],
  holder: string,
  ttlMs: number,
): Promise<string[]> {
  if (names.length === 0) return [];
  const result = await db.query<{ name: string }>(
    `UPDATE floorflow.leases
        SET expires_at = clock_timestamp() + $3 * interval '1 millisecond', renewed_at = clock_timestamp()
      WHERE name = ANY($1::text[]) AND holder = $2 AND expires_at >= clock_timestamp()
      RETURNING name`,
    [names, holder, ttlMs],
  );
  return result.rows.map((r) => r.name).sort();
}

/** Gives leases back at once (a clean stop), so another runtime takes them without waiting for expiry. */
export async function releaseLeases(db: Queryable, names: readonly string[], holder: string): Promise<void> {
  if (names.length === 0) return;
  await db.query(`DELETE FROM floorflow.leases WHERE name = ANY($1::text[]) AND holder = $2`, [
    names,
    holder,
  ]);
}

/** Unexpired leases whose names start with `prefix`. */
export async function liveLeases(db: Queryable, prefix: string): Promise<LeaseRow[]> {
  const result = await db.query<LeaseRow>(
    `SELECT name, holder, expires_at, acquired_at FROM floorflow.leases
     WHERE starts_with(name, $1) AND expires_at >= clock_timestamp() ORDER BY name`,
    [prefix],
  );
  return result.rows;
}

/** Ids of the runtimes whose liveness lease has not expired. */
export async function liveRuntimes(db: Queryable): Promise<string[]> {
  return (await liveLeases(db, 'runtime/')).map((l) => l.holder);
}
