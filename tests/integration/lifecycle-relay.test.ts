import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Pool } from 'pg';
import { requireShippedModel } from '../../core/lifecycle-models';
import { LIFECYCLE_EVENT, type LifecycleEvent } from '../../core/lifecycle';
import { systemClock } from '../../nodes/common/services';
import { LifecycleRelay } from '../../runtime/lifecycle-relay';
import { withTransaction } from '../../store/db';
import { isRefusedTransition, transition } from '../../store/lifecycle';
import { createTestDatabase, type TestDatabase, waitFor } from '../support/db';

const product = requireShippedModel('trackopz-product');
const AT = new Date('2026-01-05T08:00:00Z');

async function newProduct(pool: Pool): Promise<string> {
  const created = await pool.query<{ id: string }>(
    `INSERT INTO trackopz.products (name) VALUES ('label roll') RETURNING id::text AS id`,
  );
  const id = created.rows[0].id;
  await pool.query(`INSERT INTO trackopz.jobs (product_id, state) VALUES ($1, 'ON')`, [id]);
  return id;
}

describe('lifecycle relay: the one announcer of committed transitions', function () {
  this.timeout(30000);
  let db: TestDatabase;
  const relays: LifecycleRelay[] = [];

  /** A runtime's relay: its bus, and what it published on MQTT (topic, event). */
  async function runtime() {
    const events = new EventEmitter();
    const heard: LifecycleEvent[] = [];
    const published: Array<{ topic: string; event: LifecycleEvent }> = [];
    events.on(LIFECYCLE_EVENT, (e: LifecycleEvent) => heard.push(e));
    const relay = new LifecycleRelay(
      {
        pool: db.pool,
        events,
        topicPrefix: 'floorflow',
        clock: systemClock,
        broker: {
          onlineMachines: () => [],
          publish: async (topic, payload) => {
            published.push({ topic, event: JSON.parse(String(payload)) as LifecycleEvent });
          },
        },
      },
      (m) => assert.fail(m),
    );
    await relay.start();
    relays.push(relay);
    return { heard, published, relay };
  }

  before(async () => {
    db = await createTestDatabase({ poolSize: 20 });
  });
  afterEach(async () => {
    for (const relay of relays.splice(0)) await relay.stop();
  });
  after(async () => {
    await db?.drop();
  });

  it('announces each committed transition once, in commit order, on the bus and on MQTT', async () => {
    const a = await runtime();
    const ids = [await newProduct(db.pool), await newProduct(db.pool), await newProduct(db.pool)];
    for (const id of ids) {
      await withTransaction(db.pool, (c) =>
        transition(c, product, { entityId: id, action: 'move_to_past', at: AT }),
      );
    }
    await waitFor(() => a.heard.length >= 3, 'three announcements');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(
      a.heard.map((e) => [e.entityId, e.from, e.to, e.action]),
      ids.map((id) => [id, 'ON', 'OFF', 'move_to_past']),
    );
    assert.deepEqual(
      a.published.map((p) => p.topic),
      ids.map((id) => `floorflow/events/trackopz-product/${id}`),
    );
    assert.equal(a.heard[0].at, AT.toISOString());
    assert.ok(Number(a.heard[1].eventId) > Number(a.heard[0].eventId));
  });

  it('announces nothing of a transaction that rolled back', async () => {
    const a = await runtime();
    const id = await newProduct(db.pool);
    await assert.rejects(
      withTransaction(db.pool, async (c) => {
        await transition(c, product, { entityId: id, action: 'move_to_past', at: AT });
        throw new Error('the rest of the change failed');
      }),
      /the rest of the change failed/,
    );
    const other = await newProduct(db.pool);
    await withTransaction(db.pool, (c) =>
      transition(c, product, { entityId: other, action: 'move_to_past', at: AT }),
    );
    await waitFor(() => a.heard.length >= 1, 'the committed one');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(
      a.heard.map((e) => e.entityId),
      [other],
    );
  });

  it('every runtime on the database hears a transition, whichever runtime applied it', async () => {
    const a = await runtime();
    const b = await runtime();
    const id = await newProduct(db.pool);
    await withTransaction(db.pool, (c) =>
      transition(c, product, { entityId: id, action: 'move_to_past', at: AT }),
    );
    await waitFor(() => a.heard.length === 1 && b.heard.length === 1, 'both relays');
  });

  it('transition() has one refusal contract: FF_NOT_FOUND, or FF_TRANSITION_INVALID with the state it was in', async () => {
    const id = await newProduct(db.pool);
    await assert.rejects(
      withTransaction(db.pool, (c) =>
        transition(c, product, { entityId: '999999', action: 'move_to_past', at: AT }),
      ),
      (err: Error & { code?: string }) => err.code === 'FF_NOT_FOUND',
    );
    await withTransaction(db.pool, (c) =>
      transition(c, product, { entityId: id, action: 'move_to_past', at: AT }),
    );
    const refused = await withTransaction(db.pool, (c) =>
      transition(c, product, { entityId: id, action: 'move_to_past', at: AT }),
    ).catch((err: unknown) => err);
    assert.ok(isRefusedTransition(refused), String(refused));
    assert.equal((refused.details as { from?: string }).from, 'OFF');
  });
});
