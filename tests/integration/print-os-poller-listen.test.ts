// The print OS poller's LISTEN connection when the server ends it (a database restart, an
// administrator, DROP DATABASE ... WITH (FORCE)), while the poller holds it and after the
// poller gave it back to the pool at close. A handler left on a connection the pool owns
// again released it a second time: "Release called on client which has already been
// released to the pool", thrown out of an event handler, which stops the whole runtime.
import assert from 'node:assert/strict';
import { Client } from 'pg';
import { FlowKit, startFlowKit } from '../support/flow-kit';

const POLLER = {
  id: 'listen-poller',
  type: 'floorflow-print-os-poller',
  z: 'listen-tab',
  name: 'print OS poller',
  db: 'floorflow-db-main',
  source: 'print_os',
  batchSize: 100,
  intervalSeconds: 60,
  lookBack: 10,
  listen: true,
  schemaVersion: 1,
  wires: [[]],
};

describe('print OS poller LISTEN connection', function () {
  this.timeout(60000);
  let kit: FlowKit;

  afterEach(async () => {
    await kit?.stop();
  });

  /** A query on a connection of its own: the pool might hand out the very connection looked at. */
  async function aside<T extends Record<string, unknown>>(sql: string, params: unknown[]): Promise<T[]> {
    const admin = new Client({ connectionString: kit.databaseUrl });
    await admin.connect();
    try {
      return (await admin.query<T>(sql, params)).rows;
    } finally {
      await admin.end();
    }
  }

  const terminate = (pid: number) => aside('SELECT pg_terminate_backend($1)', [pid]);

  /** Backend pids of the connections listening for new print OS rows. */
  async function listeners(): Promise<number[]> {
    const rows = await kit.pool.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND query ILIKE 'LISTEN floorflow_print_os%' AND pid <> pg_backend_pid()`,
    );
    return rows.rows.map((r) => r.pid);
  }

  /** The one listening connection's pid, once there is one. */
  async function listening(what: string): Promise<number> {
    const [pid] = await kit.waitFor(async () => {
      const pids = await listeners();
      return pids.length === 1 && pids;
    }, what);
    return pid;
  }

  it('a LISTEN connection the server terminates is released once, and the poller listens again at its next run', async () => {
    kit = await startFlowKit({
      flows: [],
      broker: false,
      extraNodes: [{ id: 'listen-tab', type: 'tab', label: 'listen' }, POLLER],
    });
    const first = await listening('the poller to LISTEN');

    await terminate(first);
    await kit.waitFor(async () => (await listeners()).length === 0, 'the LISTEN connection to end');

    // The interval run listens again on a new connection.
    await kit.clock.advance(60000);
    const second = await listening('the poller to LISTEN again');
    assert.notEqual(second, first);
    assert.deepEqual(
      kit.loggedErrors().filter((e) => /released/.test(e.msg)),
      [],
      'no double release was logged',
    );
  });

  it("a LISTEN connection given back to the pool at close is no longer the poller's: the server ending it later is harmless", async () => {
    kit = await startFlowKit({
      flows: [],
      broker: false,
      extraNodes: [{ id: 'listen-tab', type: 'tab', label: 'listen' }, POLLER],
    });
    const pid = await listening('the poller to LISTEN');
    await kit.node('listen-poller').close(false);
    // The connection now idles in the pool (UNLISTENed); the server ends it.
    const [idle] = await aside<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid]);
    assert.match(idle?.query ?? '', /UNLISTEN/, 'the connection went back to the pool');
    await terminate(pid);
    await kit.waitFor(
      async () =>
        (await kit.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0,
      'the connection to end',
    );
    // The pool still serves queries on its other connections.
    assert.equal((await kit.pool.query('SELECT 1 AS one')).rows[0].one, 1);
  });
});
