// Chooses the database: DATABASE_URL when set, otherwise the embedded server in the data
// directory. The CLI and the runtime share this, so `machine add` reaches the same rows
// whether or not the runtime is running.
import { Pool } from 'pg';
import { createPool } from '../store/db';
import { EmbeddedServer, startEmbeddedPostgres } from './embedded-postgres';

export interface Database {
  pool: Pool;
  url: string;
  /** A description safe to print (no password). */
  where: string;
  embedded?: EmbeddedServer;
  /**
   * Ends the pool, waiting at most `waitMs` (default 10 s) for connections still in use, then
   * stops the embedded server (unless told not to).
   */
  close(options?: { stopEmbedded?: boolean; waitMs?: number }): Promise<void>;
}

/** How long closing waits for connections still in use to come back (Database.close). */
export const POOL_END_WAIT_MS = 10_000;

export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}

export async function openDatabase(options: {
  databaseUrl?: string;
  dataDir: string;
  password: string;
  poolSize?: number;
  /** Progress lines of the embedded database (creating, starting). */
  log?: (line: string) => void;
  /** Stops a start in progress; what it started is stopped again. */
  signal?: AbortSignal;
}): Promise<Database> {
  let embedded: EmbeddedServer | undefined;
  let url = options.databaseUrl;
  if (!url) {
    embedded = await startEmbeddedPostgres({
      dataDir: options.dataDir,
      password: options.password,
      onProgress: options.log,
      signal: options.signal,
    });
    url = embedded.url;
  }
  const pool = createPool(url, { max: options.poolSize ?? 20, connectionTimeoutMillis: 5000 });
  const where = embedded ? `embedded PostgreSQL on 127.0.0.1:${embedded.port}` : describeUrl(url);
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    if (embedded?.startedHere) await embedded.stop();
    const reason = (err as Error).message || (err as { code?: string }).code || 'unknown error';
    throw new Error(
      `cannot reach the database at ${where} (${reason}): check DATABASE_URL or that PostgreSQL runs`,
      { cause: err },
    );
  }
  return {
    pool,
    url,
    where,
    embedded,
    async close({ stopEmbedded = true, waitMs = POOL_END_WAIT_MS } = {}) {
      // pool.end() waits for every connection in use to be given back. One a node still holds
      // (a flow that a deploy started while the runtime was stopping runs on) kept it, and the
      // process, waiting for ever after Ctrl-C: wait a bounded time, then go on; the process ends
      // after the stop, and with it the connections left.
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        pool.end().then(
          () => true,
          () => true,
        ),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), waitMs))),
      ]);
      clearTimeout(timer);
      if (!ended)
        options.log?.(
          `database connections still in use after ${waitMs} ms: stopping without waiting for them`,
        );
      if (embedded && stopEmbedded) await embedded.stop();
    },
  };
}
