import assert from 'node:assert/strict';
import type { Pool } from 'pg';
import { SHIPPED_MODELS, requireShippedModel } from '../../core/lifecycle-models';
import { applyTransition, eventsAfter, lastEventId, readState } from '../../store/lifecycle';
import { createTestDatabase, type TestDatabase } from '../support/db';

const product = requireShippedModel('trackopz-product');
const AT = new Date('2026-01-05T08:00:00Z');

async function newProduct(pool: Pool, state: 'ON' | 'OFF' | null = 'ON'): Promise<string> {
  const created = await pool.query<{ id: string }>(
    `INSERT INTO trackopz.products (name) VALUES ('label roll') RETURNING id::text AS id`,
  );
  const id = created.rows[0].id;
  if (state) await pool.query('INSERT INTO trackopz.jobs (product_id, state) VALUES ($1, $2)', [id, state]);
  return id;
}

/** The states a table's CHECK constraint on `column` allows, read from the catalog. */
async function checkedStates(pool: Pool, table: string, column: string): Promise<string[]> {
  const result = await pool.query<{ def: string }>(
    `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
     WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE $2`,
    [table, `%(${column} = ANY%`],
  );
  assert.equal(result.rows.length, 1, `one CHECK on ${table}.${column}`);
  return [...result.rows[0].def.matchAll(/'([^']+)'::text/g)].map((m) => m[1]).sort();
}

describe('store/lifecycle (PostgreSQL)', function () {
  this.timeout(30000);
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase({ poolSize: 20 });
  });
  after(async () => {
    await db?.drop();
  });

  it("every shipped model's states are exactly its table's CHECK states", async () => {
    for (const model of SHIPPED_MODELS) {
      const store = model.store;
      const [table, column] =
        store.kind === 'column' ? [store.table, store.column] : [store.child.table, store.child.column];
      const allowed = await checkedStates(db.pool, table, column);
      const modelled = model.states.filter((s) => store.kind !== 'column' || s !== store.nullState).sort();
      assert.deepEqual(modelled, allowed, model.name);
    }
  });

  it('move_to_past inserts an OFF job as the latest job and a product_transitions row', async () => {
    const id = await newProduct(db.pool);
    const outcome = await applyTransition(db.pool, product, {
      entityId: id,
      action: 'move_to_past',
      reason: 'dispatched',
      actor: 'op-7',
      source: 'dispatch',
      flowVersion: '1.0.3',
      at: AT,
    });
    assert.equal(outcome.kind, 'applied');
    const transition = outcome.kind === 'applied' ? outcome.transition : undefined;
    assert.deepEqual(await readState(db.pool, product, id), {
      found: true,
      state: 'OFF',
      childId: transition?.childId,
    });
    const audit = await db.pool.query(
      `SELECT job_id::text, from_state, to_state, action, reason, actor, source, flow_version
       FROM trackopz.product_transitions WHERE product_id = $1`,
      [id],
    );
    assert.deepEqual(audit.rows, [
      {
        job_id: transition?.childId,
        from_state: 'ON',
        to_state: 'OFF',
        action: 'move_to_past',
        reason: 'dispatched',
        actor: 'op-7',
        source: 'dispatch',
        flow_version: '1.0.3',
      },
    ]);
  });

  it('of ten concurrent move_to_past of one product exactly one wins, with one audit row and one event', async () => {
    const id = await newProduct(db.pool);
    const before = await lastEventId(db.pool);
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () =>
        applyTransition(db.pool, product, { entityId: id, action: 'move_to_past', at: AT }),
      ),
    );
    assert.equal(outcomes.filter((o) => o.kind === 'applied').length, 1);
    for (const o of outcomes.filter((o) => o.kind !== 'applied')) {
      assert.deepEqual(o, {
        kind: 'rejected',
        code: 'FF_TRANSITION_INVALID',
        from: 'OFF',
        reason: 'cannot move_to_past a product in state "OFF"; allowed from "ON"',
      });
    }
    const audit = await db.pool.query('SELECT 1 FROM trackopz.product_transitions WHERE product_id = $1', [
      id,
    ]);
    assert.equal(audit.rowCount, 1);
    const jobs = await db.pool.query(`SELECT 1 FROM trackopz.jobs WHERE product_id = $1 AND state = 'OFF'`, [
      id,
    ]);
    assert.equal(jobs.rowCount, 1);
    const events = await eventsAfter(db.pool, before);
    assert.deepEqual(
      events.map((e) => [e.entityId, e.from, e.to]),
      [[id, 'ON', 'OFF']],
    );
  });

  it('a new job is the latest even when the caller clock is behind the database clock', async () => {
    const id = await newProduct(db.pool, 'ON'); // created_at = the database's now()
    const past = new Date('2001-01-01T00:00:00Z');
    await applyTransition(db.pool, product, { entityId: id, action: 'move_to_past', at: past });
    const reactivated = await applyTransition(db.pool, product, {
      entityId: id,
      action: 'reactivate',
      at: past,
    });
    assert.deepEqual(await readState(db.pool, product, id), {
      found: true,
      state: 'ON',
      childId: reactivated.kind === 'applied' ? reactivated.transition.childId : 'none',
    });
  });

  it('a product without jobs has no state; update_state gives it one, with from_state NULL', async () => {
    const id = await newProduct(db.pool, null);
    assert.deepEqual(await readState(db.pool, product, id), { found: true, state: null });
    const refused = await applyTransition(db.pool, product, { entityId: id, action: 'move_to_past', at: AT });
    assert.equal(refused.kind, 'rejected');
    const outcome = await applyTransition(db.pool, product, {
      entityId: id,
      action: 'update_state',
      targetState: 'ON',
      at: AT,
    });
    assert.equal(outcome.kind === 'applied' && outcome.transition.from, null);
    const audit = await db.pool.query(
      'SELECT from_state FROM trackopz.product_transitions WHERE product_id = $1',
      [id],
    );
    assert.deepEqual(audit.rows, [{ from_state: null }]);
  });

  it('an unknown or malformed id is not found and writes nothing', async () => {
    for (const entityId of ['987654321', 'abc']) {
      const outcome = await applyTransition(db.pool, product, { entityId, action: 'move_to_past', at: AT });
      assert.deepEqual(outcome, { kind: 'not_found', reason: `product ${entityId} not found` });
    }
  });

  it('a column model updates the status and updated_at, and audits to floorflow.lifecycle_transitions', async () => {
    const plates = requireShippedModel('embossing-plate');
    const created = await db.pool.query<{ id: string }>(
      `INSERT INTO embossing.plates (plate_number) VALUES ('P-1') RETURNING id::text AS id`,
    );
    const id = created.rows[0].id;
    const outcome = await applyTransition(db.pool, plates, {
      entityId: id,
      action: 'queue',
      actor: 'planner',
      at: AT,
    });
    assert.equal(outcome.kind, 'applied');
    const row = await db.pool.query('SELECT status, updated_at FROM embossing.plates WHERE id = $1', [id]);
    assert.deepEqual(row.rows, [{ status: 'queued_for_embossing', updated_at: AT }]);
    const audit = await db.pool.query(
      `SELECT lifecycle, entity_id, from_state, to_state, action, actor FROM floorflow.lifecycle_transitions
       WHERE entity_id = $1`,
      [id],
    );
    assert.deepEqual(audit.rows, [
      {
        lifecycle: 'embossing-plate',
        entity_id: id,
        from_state: 'in_production',
        to_state: 'queued_for_embossing',
        action: 'queue',
        actor: 'planner',
      },
    ]);
  });

  it('a NULL status reads as the model nullState and is written back as NULL', async () => {
    const operations = requireShippedModel('operation-status');
    await db.pool.query(
      `INSERT INTO logs.job_operations (job_operation_id, job_id, operation_id) VALUES ('jo-1', '4604_5889', 'op003')`,
    );
    assert.deepEqual(await readState(db.pool, operations, 'jo-1'), { found: true, state: 'pending' });
    const outcome = await applyTransition(db.pool, operations, { entityId: 'jo-1', action: 'abort', at: AT });
    assert.equal(outcome.kind === 'applied' && outcome.transition.from, 'pending');
    const row = await db.pool.query(`SELECT status FROM logs.job_operations WHERE job_operation_id = 'jo-1'`);
    assert.deepEqual(row.rows, [{ status: 'aborted' }]);
  });

  it("an action's sets write request fields to their columns (engraving block_reason)", async () => {
    const engraving = requireShippedModel('engraving-job');
    await db.pool.query(`INSERT INTO engraving.items (id, name, max_lines) VALUES ('cup', 'Cup', 3)`);
    const created = await db.pool.query<{ id: string }>(
      `INSERT INTO engraving.engraving_jobs (customer_id, item_id, due_date)
       VALUES ('c-1', 'cup', now()) RETURNING id::text AS id`,
    );
    const id = created.rows[0].id;
    const missing = await applyTransition(db.pool, engraving, { entityId: id, action: 'block', at: AT });
    assert.deepEqual(missing.kind === 'rejected' && [missing.code, missing.reason], [
      'FF_INPUT_INVALID',
      'block needs reason',
    ]);
    const outcome = await applyTransition(db.pool, engraving, {
      entityId: id,
      action: 'block',
      reason: 'no_inventory',
      at: AT,
    });
    assert.equal(outcome.kind, 'applied');
    const row = await db.pool.query(
      'SELECT status, block_reason FROM engraving.engraving_jobs WHERE id = $1',
      [id],
    );
    assert.deepEqual(row.rows, [{ status: 'blocked', block_reason: 'no_inventory' }]);
  });

  it('logs events with increasing ids that eventsAfter returns in order, filtered by lifecycle', async () => {
    const start = await lastEventId(db.pool);
    const a = await newProduct(db.pool);
    const b = await newProduct(db.pool);
    await applyTransition(db.pool, product, { entityId: a, action: 'move_to_past', at: AT });
    await applyTransition(db.pool, product, { entityId: b, action: 'move_to_past', at: AT });
    await applyTransition(db.pool, product, { entityId: a, action: 'reactivate', at: AT });
    const events = await eventsAfter(db.pool, start, { lifecycles: ['trackopz-product'] });
    assert.deepEqual(
      events.map((e) => [e.entityId, e.action]),
      [
        [a, 'move_to_past'],
        [b, 'move_to_past'],
        [a, 'reactivate'],
      ],
    );
    const ids = events.map((e) => BigInt(e.id));
    assert.ok(ids[0] < ids[1] && ids[1] < ids[2]);
    assert.deepEqual(await eventsAfter(db.pool, start, { lifecycles: ['engraving-job'] }), []);
  });
});
