// The runtime's watch on scans the inbox rejected or left out as sent twice: one log line each, of
// bounded length, the repeat kept for the floor page, and the page told (issue 15).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { systemClock } from '../../nodes/common/services';
import { watchScanNotices } from '../../nodes/common/scan-notices';
import { InboxWriter } from '../../store/inbox-writer';
import { recentScanNotices } from '../../store/scan-notices';
import { createTestDatabase, TestDatabase, waitFor } from '../support/db';

describe('scan notices', () => {
  let db: TestDatabase;
  let inbox: InboxWriter;
  let stop: () => void;
  const lines: string[] = [];
  const events = new EventEmitter();
  const told: unknown[] = [];

  beforeEach(async () => {
    db = await createTestDatabase();
    inbox = new InboxWriter(db.pool);
    lines.length = 0;
    told.length = 0;
    events.on('job-status', (e) => told.push(e));
    stop = watchScanNotices({ inbox, pool: db.pool, events, clock: systemClock, log: (l) => lines.push(l) });
  });
  afterEach(async () => {
    stop();
    events.removeAllListeners();
    await db.drop();
  });

  const scan = (payload: string, at = new Date('2026-01-05T08:00:00Z')) =>
    inbox.write({
      machineId: 'scanner-1',
      kind: 'scan',
      topic: 'floorflow/machines/scanner-1/scan',
      payload,
      receivedAt: at,
    });

  it('a rejected scan is one log line with machine, code and reason, and the page is told', async () => {
    await scan(JSON.stringify({ code: 'BAD-1', operations: 'coating' }));
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^scan from scanner-1 of code "BAD-1" rejected: /);
    assert.deepEqual(told, [{ type: 'scan_rejected', count: 1 }]);
    const [notice] = await recentScanNotices(db.pool);
    assert.equal(notice.code, 'BAD-1');
    assert.equal(notice.kind, 'rejected');
  });

  it('a scan sent twice is logged and kept as ignored, the first one stored', async () => {
    const body = JSON.stringify({ code: '7_7_1', operations: ['coating'] });
    await scan(body);
    await scan(body, new Date('2026-01-05T08:00:01Z'));
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^scan from scanner-1 of code "7_7_1" ignored: the same scan/);
    const notices = await waitFor(async () => {
      const n = await recentScanNotices(db.pool);
      return n.length === 1 && n;
    }, 'the repeat kept');
    assert.equal(notices[0].kind, 'ignored');
    assert.equal(notices[0].machine_id, 'scanner-1');
    const stored = await db.pool.query('SELECT count(*)::int AS n FROM jobmanager.scanned_codes');
    assert.equal(stored.rows[0].n, 1);
  });

  it('a log line stays bounded and on one line whatever the scanner sends', async () => {
    await scan(JSON.stringify({ code: `A\nB${'x'.repeat(5000)}`, operations: 7 }));
    assert.equal(lines.length, 1);
    assert.ok(lines[0].length < 500, `${lines[0].length} characters`);
    assert.ok(!lines[0].includes('\n'));
  });
});
