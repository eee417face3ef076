// The Workpanel through the floor display nodes on real PostgreSQL: the board (live and
// past products, machines from trackopz.machines, finished records), a product's details, Move
// to Past, Reactivate and the record of finished products, and the processing page's recovery button.
import assert from 'node:assert/strict';
import type { NodeMessage } from 'node-red';
import type { Identity } from '../../core/access';
import type { FlowNode } from '../../core/flow-files';
import type { BoardMessagePayload } from '../../nodes/dashboard-feed/dashboard-boards';
import type { ActionResult } from '../../nodes/dashboard-action/dashboard-actions';
import { ManualClock } from '../../nodes/common/services';
import type { ProductDetails, WorkpanelBoard } from '../../store/workpanel';
import { type FlowKit, startFlowKit } from '../support/flow-kit';

type Message = NodeMessage & Record<string, unknown>;

const tab: FlowNode = { id: 'wp-test', type: 'tab', label: 'workpanel test' };
const OPERATOR = { socketId: 'operator-screen' };
const VIEWER = { socketId: 'viewer-screen' };
const OLGA: Identity = { kind: 'user', name: 'olga', role: 'operator', session: 's-olga' };
const VERA: Identity = { kind: 'user', name: 'vera', role: 'viewer', session: 's-vera' };

describe('Workpanel and processing recovery on the floor displays', function () {
  this.timeout(60000);
  let kit: FlowKit;
  let results: Message[];
  let boards: Message[];

  beforeEach(async () => {
    kit = await startFlowKit({
      flows: [],
      clock: new ManualClock(new Date()),
      extraNodes: [
        tab,
        { id: 'action', type: 'floorflow-dashboard-action', z: 'wp-test', wires: [['result']] },
        { id: 'result', type: 'helper', z: 'wp-test' },
        {
          id: 'feed',
          type: 'floorflow-dashboard-feed',
          z: 'wp-test',
          page: 'workpanel',
          refreshSeconds: 0,
          wires: [['board']],
        },
        { id: 'board', type: 'helper', z: 'wp-test' },
      ],
    });
    kit.loginDashboardClient(OPERATOR.socketId, OLGA);
    kit.loginDashboardClient(VIEWER.socketId, VERA);
    results = [];
    boards = [];
    kit.node('result').on('input', (msg: Message) => results.push(msg));
    kit.node('board').on('input', (msg: Message) => boards.push(msg));
  });

  afterEach(async () => {
    await kit.stop();
  });

  async function product(name: string, states: Array<'ON' | 'OFF'>): Promise<string> {
    const created = await kit.pool.query<{ id: string }>(
      `INSERT INTO trackopz.products (name) VALUES ($1) RETURNING id::text AS id`,
      [name],
    );
    const id = created.rows[0].id;
    for (const [i, state] of states.entries()) {
      await kit.pool.query(
        `INSERT INTO trackopz.jobs (product_id, state, created_at) VALUES ($1, $2, now() - ($3 || ' minutes')::interval)`,
        [id, state, String(60 - i)],
      );
    }
    return id;
  }

  async function act(client: { socketId: string }, topic: string, payload: unknown): Promise<ActionResult> {
    const before = results.length;
    kit.receive('action', { _client: client, topic, payload });
    await kit.waitFor(() => results.length > before, `the outcome of ${topic}`);
    return results[before].payload as ActionResult;
  }

  async function latestBoard(check: (b: WorkpanelBoard) => boolean, what: string): Promise<WorkpanelBoard> {
    kit.receive('feed', {});
    return kit.waitFor(() => {
      const last = boards.at(-1)?.payload as BoardMessagePayload | undefined;
      const board = last?.board as WorkpanelBoard | undefined;
      return board && check(board) ? board : undefined;
    }, what);
  }

  it('a registered machine appears in trackopz.machines with its state, and stays (offline) when it is removed', async () => {
    await kit.addMachine('press-4', 'press');
    const rows = await kit.pool.query(`SELECT id, name, status FROM trackopz.machines`);
    assert.deepEqual(rows.rows, [{ id: 'press-4', name: 'press-4', status: 'offline' }]);
    await kit.pool.query(
      `UPDATE floorflow.machines SET online = true, last_status = '{"state": "busy"}' WHERE machine_id = 'press-4'`,
    );
    const busy = await kit.pool.query(`SELECT status FROM trackopz.machines WHERE id = 'press-4'`);
    assert.equal(busy.rows[0].status, 'busy');
    await kit.pool.query(`UPDATE trackopz.machines SET name = 'Press 4 (hall B)' WHERE id = 'press-4'`);
    await kit.pool.query(`DELETE FROM floorflow.machines WHERE machine_id = 'press-4'`);
    const removed = await kit.pool.query(`SELECT name, status FROM trackopz.machines WHERE id = 'press-4'`);
    assert.deepEqual(removed.rows, [{ name: 'Press 4 (hall B)', status: 'offline' }]);
  });

  it('the board shows live and past products with the reason of the move, the machines and the finished records', async () => {
    await kit.addMachine('press-4', 'press');
    const cup = await product('Trophy cup', ['ON']);
    const shield = await product('Shield oak', ['ON']);
    assert.equal(
      (await act(OPERATOR, 'move_to_past', { product_id: shield, reason: 'scrapped', from: 'workpanel' })).ok,
      true,
    );
    const recorded = await act(OPERATOR, 'record_finished', {
      product_id: cup,
      machine_id: 'press-4',
      quantity: '12',
      notes: 'first batch',
    });
    assert.equal(recorded.ok, true, recorded.message);
    assert.match(recorded.message, /12 finished Trophy cup recorded on press-4/);

    const board = await latestBoard(
      (b) => b.updates.length === 1 && b.past.length === 1 && b.live[0]?.finished === 12,
      'the board',
    );
    assert.deepEqual(
      board.live.map((p) => [p.name, p.finished]),
      [['Trophy cup', 12]],
    );
    assert.deepEqual(
      board.past.map((p) => [p.name, p.reason]),
      [['Shield oak', 'scrapped']],
    );
    assert.equal(board.pastTotal, 1);
    assert.deepEqual(board.machines, [{ id: 'press-4', name: 'press-4', status: 'offline' }]);
    assert.equal(board.updates[0].operator_id, 'olga');
    assert.equal(board.updates[0].notes, 'first batch');

    const row = await kit.pool.query(
      `SELECT u.operator_id, u.machine_id, u.quantity, u.job_id = l.id AS on_current_job
       FROM trackopz.operator_product_updates u
       JOIN LATERAL (SELECT id FROM trackopz.jobs WHERE product_id = u.product_id ORDER BY created_at DESC, id DESC LIMIT 1) l ON true`,
    );
    assert.deepEqual(row.rows, [
      { operator_id: 'olga', machine_id: 'press-4', quantity: 12, on_current_job: true },
    ]);
    const moved = await kit.pool.query(
      `SELECT actor, source, reason FROM trackopz.product_transitions WHERE product_id = $1`,
      [shield],
    );
    assert.deepEqual(moved.rows, [{ actor: 'olga', source: 'workpanel', reason: 'scrapped' }]);
  });

  it("a product's details show its stages, moves and records; Reactivate makes a past product live again", async () => {
    const medal = await product('Medal set', ['ON', 'OFF']);
    const rereads: unknown[] = [];
    kit.services.events.on('dashboard', (e) => rereads.push(e));
    const details = await act(OPERATOR, 'product_details', { product_id: medal });
    assert.deepEqual(rereads, [], 'opening details makes no display re-read its board');
    assert.equal(details.ok, true);
    const data = details.data as ProductDetails;
    assert.equal(data.lifecycle.currentState, 'OFF');
    assert.equal(data.lifecycle.stages.length, 2);
    assert.deepEqual(data.updates, []);

    const reactivated = await act(OPERATOR, 'reactivate_product', { product_id: medal });
    assert.equal(reactivated.ok, true, reactivated.message);
    assert.equal(rereads.length, 1, 'a change makes every display re-read');
    const after = (await act(OPERATOR, 'product_details', { product_id: medal })).data as ProductDetails;
    assert.equal(after.lifecycle.currentState, 'ON');
    assert.deepEqual(
      after.transitions.map((t) => [t.action, t.actor, t.source]),
      [['reactivate', 'olga', 'workpanel']],
    );
    const again = await act(OPERATOR, 'reactivate_product', { product_id: medal });
    assert.equal(again.ok, false, 'a live product cannot be reactivated');
    const unknown = await act(OPERATOR, 'product_details', { product_id: '999999' });
    assert.deepEqual([unknown.ok, unknown.message], [false, 'product 999999 not found']);
  });

  it('finished products are refused for a past product, an unknown machine or a bad quantity, and nothing is written', async () => {
    await kit.addMachine('press-4', 'press');
    const past = await product('Plaque walnut', ['OFF']);
    const live = await product('Trophy cup', ['ON']);
    const refusals = [
      await act(OPERATOR, 'record_finished', { product_id: past, machine_id: 'press-4', quantity: 3 }),
      await act(OPERATOR, 'record_finished', { product_id: live, machine_id: 'press-9', quantity: 3 }),
      await act(OPERATOR, 'record_finished', { product_id: live, machine_id: 'press-4', quantity: 0 }),
      await act(OPERATOR, 'record_finished', { product_id: live, machine_id: 'press-4', quantity: 2.5 }),
    ];
    assert.deepEqual(
      refusals.map((r) => r.ok),
      [false, false, false, false],
    );
    assert.match(refusals[0].message, /Plaque walnut is not live: reactivate it/);
    assert.match(refusals[1].message, /machine press-9 is not known/);
    assert.match(refusals[2].message, /quantity must be a whole number/);
    assert.equal((await kit.pool.query(`SELECT 1 FROM trackopz.operator_product_updates`)).rowCount, 0);
  });

  it('a viewer may open details but not record, move, reactivate or recover; nothing is written', async () => {
    await kit.addMachine('press-4', 'press');
    const cup = await product('Trophy cup', ['ON']);
    assert.equal((await act(VIEWER, 'product_details', { product_id: cup })).ok, true);
    const refused = [
      await act(VIEWER, 'record_finished', { product_id: cup, machine_id: 'press-4', quantity: 1 }),
      await act(VIEWER, 'move_to_past', { product_id: cup, reason: 'finished', from: 'workpanel' }),
      await act(VIEWER, 'reactivate_product', { product_id: cup }),
      await act(VIEWER, 'recover_processing', { job_id: '1' }),
    ];
    for (const r of refused) assert.match(r.message, /vera is a viewer/);
    assert.equal((await kit.pool.query(`SELECT 1 FROM trackopz.operator_product_updates`)).rowCount, 0);
    assert.equal((await kit.pool.query(`SELECT 1 FROM trackopz.product_transitions`)).rowCount, 0);
  });

  it('Recover puts a failed processing job back to pending under the operator, and refuses a job that has not failed', async () => {
    const order = await kit.pool.query<{ id: string }>(
      `INSERT INTO processing.orders (order_number, status) VALUES ('ORD-9', 'confirmed') RETURNING id::text AS id`,
    );
    const job = await kit.pool.query<{ id: string }>(
      `INSERT INTO processing.processing_jobs (order_id, status, stage, completed_stage, progress, attempts, fail_reason)
       VALUES ($1, 'failed', 'verification', 'usb_writing', 80, 4, 'checksum mismatch') RETURNING id::text AS id`,
      [order.rows[0].id],
    );
    const jobId = job.rows[0].id;
    const recovered = await act(OPERATOR, 'recover_processing', { job_id: jobId });
    assert.equal(recovered.ok, true, recovered.message);
    const row = await kit.pool.query(
      `SELECT status, attempts, progress, completed_stage, fail_reason FROM processing.processing_jobs WHERE id = $1`,
      [jobId],
    );
    assert.deepEqual(row.rows, [
      { status: 'pending', attempts: 0, progress: 0, completed_stage: null, fail_reason: null },
    ]);
    const again = await act(OPERATOR, 'recover_processing', { job_id: jobId });
    assert.equal(again.ok, false);
    const logs = await act(VIEWER, 'processing_logs', { job_id: jobId });
    assert.equal(logs.ok, true);
    assert.match(JSON.stringify(logs.data), /reset by olga/);
  });
});
