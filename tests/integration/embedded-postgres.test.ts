// The embedded PostgreSQL on the data directories a plant gives it: as root (containers, CI)
// under a private directory, through a user namespace or as the postgres OS user, and a
// start stopped half-way, which must leave nothing running and nothing half-made.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { EmbeddedServer, pidAlive, startEmbeddedPostgres } from '../../runtime/embedded-postgres';

const PASSWORD = 'embedded-test-password';
const asRoot = os.userInfo().uid === 0;

/** A directory only its owner may enter, as `mktemp -d` makes. */
function privateDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-private-'));
  fs.chmodSync(dir, 0o700);
  return dir;
}

async function selectOne(server: EmbeddedServer): Promise<void> {
  const client = new Client({ connectionString: server.url });
  await client.connect();
  try {
    assert.deepEqual((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
  } finally {
    await client.end();
  }
}

function idOf(user: string): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  if (uid.status !== 0) return undefined;
  return { uid: Number(uid.stdout), gid: Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout) };
}

describe('embedded PostgreSQL on the data directory', function () {
  this.timeout(120000);
  const dirs: string[] = [];
  let server: EmbeddedServer | undefined;

  afterEach(async () => {
    await server?.stop();
    server = undefined;
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs with its data under a private (0700) directory, as root too; the files stay the runtime user’s and a stop leaves no server', async () => {
    const parent = privateDir();
    dirs.push(parent);
    const dataDir = path.join(parent, 'data');
    server = await startEmbeddedPostgres({ dataDir, password: PASSWORD });
    await selectOne(server);
    assert.equal(fs.statSync(path.join(dataDir, 'postgres')).uid, os.userInfo().uid);
    const pid = server.pid;
    await server.stop();
    server = undefined;
    assert.equal(pidAlive(pid), false, 'the server process is gone');
    // A second start on the same files finds the database it made.
    server = await startEmbeddedPostgres({ dataDir, password: PASSWORD });
    await selectOne(server);
  });

  it('as root without user namespaces, runs as the postgres OS user where it can reach the files, and otherwise says in one line what to change', async function () {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-open-'));
    dirs.push(parent);
    fs.chmodSync(parent, 0o755);
    const privateParent = privateDir();
    dirs.push(privateParent);
    const postgres = idOf('postgres');
    const start = (dataDir: string) =>
      startEmbeddedPostgres({ dataDir, password: PASSWORD, rootMode: 'os-user' });

    if (!asRoot) {
      // Not root: PostgreSQL simply runs as this user, whatever the mode asked for.
      server = await start(path.join(privateParent, 'data'));
      await selectOne(server);
      return;
    }
    if (!postgres) {
      await assert.rejects(
        start(path.join(parent, 'data')),
        /needs an OS user "postgres" \(useradd -r postgres\)/,
      );
      return;
    }
    // The private parent blocks the postgres user: one line naming it.
    await assert.rejects(start(path.join(privateParent, 'data')), (err: Error) => {
      assert.equal(err.message.split('\n').length, 1);
      assert.match(err.message, new RegExp(`cannot enter ${privateParent}: chmod o\\+x it`));
      return true;
    });
    // Whether the postgres user reaches the PostgreSQL programs depends on where the project is
    // checked out (a clone under a private directory hides them too): then the line names that.
    const { postgres: program } = (await import(
      `@embedded-postgres/${process.platform}-${process.arch}`
    )) as {
      postgres: string;
    };
    const reachable =
      spawnSync('test', ['-x', program], { uid: postgres.uid, gid: postgres.gid }).status === 0;
    const dataDir = path.join(parent, 'data');
    if (!reachable) {
      await assert.rejects(
        start(dataDir),
        /runs as the OS user postgres, which cannot enter \/.*: chmod o\+x it/,
      );
      return;
    }
    server = await start(dataDir);
    await selectOne(server);
    assert.equal(
      fs.statSync(path.join(dataDir, 'postgres')).uid,
      postgres.uid,
      'the postgres user owns the files',
    );
    const owner = spawnSync('ps', ['-o', 'user=', '-p', String(server.pid)], {
      encoding: 'utf8',
    }).stdout.trim();
    assert.equal(owner, 'postgres');
    // A later start (any mode) runs as the owner of the files it finds.
    await server.stop();
    server = await startEmbeddedPostgres({ dataDir, password: PASSWORD });
    await selectOne(server);
  });

  it('a start stopped while the database is being created leaves no half-made directory, and the next start creates it', async () => {
    const parent = privateDir();
    dirs.push(parent);
    const dataDir = path.join(parent, 'data');
    const controller = new AbortController();
    const progress: string[] = [];
    await assert.rejects(
      startEmbeddedPostgres({
        dataDir,
        password: PASSWORD,
        signal: controller.signal,
        onProgress: (line) => {
          progress.push(line);
          // Once initdb runs: the line comes just before it is started.
          if (/creating/.test(line)) setImmediate(() => controller.abort(new Error('stopped by the test')));
        },
      }),
      /stopped by the test/,
    );
    assert.match(progress.join('\n'), /embedded database: creating it in .*\/data\/postgres \(first start\)/);
    assert.deepEqual(fs.readdirSync(dataDir), [], 'nothing is left in the data directory');
    server = await startEmbeddedPostgres({ dataDir, password: PASSWORD });
    await selectOne(server);
  });
});
