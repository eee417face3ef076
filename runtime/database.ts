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
  close(options?: { stopEmbedded?: boolean }): Promise<void>;
}

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
    async close({ stopEmbedded = true } = {}) {
      await pool.end().catch(() => undefined);
      if (embedded && stopEmbedded) await embedded.stop();
    },
  };
}
