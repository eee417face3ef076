// The one place that opens PostgreSQL pools and runs transactions; every domain module
// in store/ goes through withTransaction so BEGIN/COMMIT/ROLLBACK/release are written once.
import { Pool, PoolClient, PoolConfig } from 'pg';

export type Queryable = Pick<PoolClient, 'query'>;

export function createPool(
  connectionString: string,
  options: Omit<PoolConfig, 'connectionString'> = {},
): Pool {
  const pool = new Pool({ connectionString, max: 10, ...options });
  // An idle client that loses its server (database restart) emits 'error' on the pool;
  // unhandled, that would stop the process. The next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

export async function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let failure: Error | undefined;
  // A checked-out client has no 'error' listener of the pool's: a server that ends the session
  // between two queries (a restart, an admin's terminate) would emit an unhandled 'error' and stop
  // the process. Keep it here instead; the next query fails with it and the work rolls back.
  const onError = (err: Error) => {
    failure ??= err;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err));
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    // A client whose connection broke is destroyed rather than returned to the pool.
    client.off('error', onError);
    client.release(failure && isConnectionError(failure) ? failure : undefined);
  }
}

export function isConnectionError(err: Error): boolean {
  const code = (err as Error & { code?: string }).code ?? '';
  return /^(08|57P0)/.test(code) || /ECONNREFUSED|ECONNRESET|terminat|Connection/i.test(err.message);
}
