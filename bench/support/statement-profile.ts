// Where the time of a database-bound bench goes, statement by statement, including the statements
// inside the appliers' PL/pgSQL functions: auto_explain (loaded per session, so no server setting
// or restart is needed, unlike pg_stat_statements) logs every statement with its duration to the
// client, and this sums them by statement. Needs a superuser connection, as the test servers give.
import type { Pool, PoolClient } from 'pg';

interface Entry {
  calls: number;
  ms: number;
}

export interface StatementProfile {
  /** Statements by total time, longest first. */
  report(top?: number): string;
}

/** Turns on per-statement timing for every connection `pool` makes from now on. */
export function profileStatements(pool: Pool): StatementProfile {
  const entries = new Map<string, Entry>();
  pool.on('connect', (client: PoolClient) => {
    client.on('notice', (notice) => {
      const match =
        /^duration: ([\d.]+) ms\s+plan:\s*\n?Query Text:\s*([\s\S]*?)(\n[A-Z][\w ]+:|\n\s*->|\n[A-Z]|$)/.exec(
          notice.message ?? '',
        );
      if (!match) return;
      const key = match[2].replace(/\s+/g, ' ').trim().slice(0, 110);
      const entry = entries.get(key) ?? { calls: 0, ms: 0 };
      entry.calls += 1;
      entry.ms += Number(match[1]);
      entries.set(key, entry);
    });
    void client
      .query(
        `LOAD 'auto_explain';
         SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
         SET auto_explain.log_analyze = on; SET auto_explain.log_timing = off; SET client_min_messages = log`,
      )
      .catch(() => undefined);
  });
  return {
    report(top = 25) {
      const rows = [...entries.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top);
      return rows
        .map(
          ([key, e]) =>
            `${e.ms.toFixed(0).padStart(9)} ms ${String(e.calls).padStart(6)} calls ${(e.ms / e.calls).toFixed(2).padStart(9)} ms/call  ${key}`,
        )
        .join('\n');
    },
  };
}
