// Closing the runtime's database when a connection is never given back: a flow that a deploy
// started while the runtime was stopping held one, pool.end() waited for it for ever, and the
// runtime never exited after Ctrl-C (an after-all hook timed out in a fresh-clone run).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../runtime/database';
import { createTestDatabase, type TestDatabase } from '../support/db';

describe('closing the database (runtime/database)', function () {
  this.timeout(20000);
  let db: TestDatabase;
  let dataDir: string;

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-db-close-'));
  });

  after(async () => {
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('does not wait for ever for a connection still in use, and says so', async () => {
    const lines: string[] = [];
    const database = await openDatabase({
      databaseUrl: db.url,
      dataDir,
      password: 'unused',
      log: (line) => lines.push(line),
    });
    const held = await database.pool.connect();
    try {
      const closed = await Promise.race([
        database.close({ waitMs: 200 }).then(() => 'closed'),
        new Promise((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000)),
      ]);
      assert.equal(closed, 'closed');
      assert.match(lines.join('\n'), /connections still in use after 200 ms/);
    } finally {
      held.release(true);
    }
  });

  it('closes at once when every connection was given back', async () => {
    const lines: string[] = [];
    const database = await openDatabase({
      databaseUrl: db.url,
      dataDir,
      password: 'unused',
      log: (l) => lines.push(l),
    });
    await database.pool.query('SELECT 1');
    await database.close({ waitMs: 5000 });
    assert.deepEqual(lines, []);
  });
});
