// The engraving customer notifications and design preview against the shipped engraving flow: each
// notification is an outbox row written with the change it announces, the monitor delivers it
// through the sender (by default a log line saying what would be sent; a plugged sender gets
// it instead, and a failing one leaves it for the next round), and the preview is an SVG drawn
// from the job's text.
import assert from 'node:assert/strict';
import { setNotificationSender } from '../../nodes/common/engraving-notification-sender';
import type { CustomerNotification } from '../../store/engraving-notifications';
import { type FlowKit, startFlowKit } from '../support/flow-kit';

describe('engraving customer notifications and design preview', function () {
  this.timeout(60000);
  let kit: FlowKit;

  beforeEach(async () => {
    kit = await startFlowKit({ flows: ['flows/engraving.json'] });
    await kit.pool.query(
      `INSERT INTO engraving.items (id, name, stock_available, max_lines) VALUES ('cup-10', 'Cup 10 in', 5, 3), ('plaque-a5', 'Plaque A5', 0, 6)`,
    );
  });

  afterEach(async () => {
    setNotificationSender(undefined);
    await kit.stop();
  });

  const create = async (fields: Record<string, unknown> = {}): Promise<number> =>
    (
      await kit
        .request()
        .post('/api/engraving-jobs')
        .send({
          customer_id: 'cust-7',
          item_id: 'cup-10',
          text: ['Club <Champion> & Co', '2026'],
          due_date: '2026-01-20',
          ...fields,
        })
        .expect(202)
    ).body.data.id as number;

  const outbox = async () =>
    (
      await kit.pool.query<{ job_id: string; event: string; sent_by: string | null; attempts: number }>(
        `SELECT job_id::text AS job_id, event, sent_by, attempts FROM engraving.notifications ORDER BY id`,
      )
    ).rows;

  it('a design ready, a job without stock, a cancelled job: one outbox row each, delivered by the default sender as a log line', async () => {
    const design = await create({ artwork_url: 'https://example.test/logo.svg' });
    const blocked = await create({ item_id: 'plaque-a5' });
    await kit
      .request()
      .post(`/api/engraving-jobs/${blocked}/cancel`)
      .send({ reason: 'customer withdrew' })
      .expect(200);
    assert.deepEqual(
      (await outbox()).map((r) => [Number(r.job_id), r.event, r.sent_by]),
      [
        [design, 'design_ready', null],
        [blocked, 'inventory_depleted', null],
        [blocked, 'job_cancelled', null],
      ],
    );
    await kit.clock.advance(15 * 1000);
    await kit.waitFor(async () => (await outbox()).every((r) => r.sent_by === 'log'), 'all delivered');
    const line = kit
      .loggedLines()
      .find((l) => l.msg.startsWith('notification for customer cust-7') && l.msg.includes('design_ready'));
    assert.ok(line, 'the default sender logs what would be sent');
    assert.match(line.msg, new RegExp(`"preview_url":"/api/engraving-jobs/${design}/preview.svg"`));
    await kit.clock.advance(15 * 1000);
    assert.deepEqual(
      (await outbox()).map((r) => r.attempts),
      [1, 1, 1],
      'each sent once',
    );
  });

  it('a plugged sender gets the notification; one that fails leaves it unsent with the error, and it goes on the next round', async () => {
    const delivered: CustomerNotification[] = [];
    let down = true;
    setNotificationSender({
      name: 'test-mail',
      send: async (n) => {
        if (down) throw new Error('mail server unreachable');
        delivered.push(n);
      },
    });
    const id = await create({ artwork_url: 'https://example.test/logo.svg' });
    await kit.clock.advance(15 * 1000);
    const failed = await kit.waitFor(async () => {
      const row = await kit.pool.query(`SELECT attempts, last_error, sent_at FROM engraving.notifications`);
      return row.rows[0]?.attempts === 1 ? row.rows[0] : undefined;
    }, 'a failed attempt');
    assert.equal(failed.last_error, 'mail server unreachable');
    assert.equal(failed.sent_at, null);
    down = false;
    await kit.clock.advance(15 * 1000);
    await kit.waitFor(() => delivered.length === 1, 'delivered on the next round');
    // The sender is called inside the relay's transaction: its row says so once that committed.
    await kit.waitFor(async () => (await outbox())[0]?.sent_by !== null, 'the delivery recorded');
    assert.equal(delivered[0].event, 'design_ready');
    assert.equal(delivered[0].customer_id, 'cust-7');
    assert.equal(delivered[0].payload.job_id, id);
    assert.deepEqual(
      (await outbox()).map((r) => r.sent_by),
      ['test-mail'],
    );
  });

  it('the design preview is an SVG of the item with the job text, escaped', async () => {
    const id = await create({ artwork_url: 'https://example.test/logo.svg', font: 'Garamond' });
    const res = await kit.request().get(`/api/engraving-jobs/${id}/preview.svg`).buffer(true).expect(200);
    assert.match(String(res.headers['content-type']), /^image\/svg\+xml/);
    const svg = res.text || String(res.body);
    assert.match(svg, /<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, />Club &lt;Champion&gt; &amp; Co</);
    assert.match(svg, />2026</);
    assert.match(svg, /font-family="Garamond"/);
    assert.match(svg, />Cup 10 in</);
    const missing = await kit.request().get('/api/engraving-jobs/999/preview.svg').expect(404);
    assert.equal(missing.body.success, false);
  });
});
