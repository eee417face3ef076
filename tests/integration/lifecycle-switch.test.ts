import assert from 'node:assert/strict';
import type { NodeStatus } from 'node-red';
import type { FlowNode } from '../../core/flow-files';
import { LIFECYCLE_EVENT, type LifecycleEvent } from '../../core/lifecycle';
import { type FlowKit, startFlowKit } from '../support/flow-kit';

const TAB = 'ls-tab';

function switchFlow(config: Record<string, unknown> = {}, outputs = 3): FlowNode[] {
  const ports = Array.from({ length: outputs }, (_, i) =>
    i === outputs - 1 ? ['rejected'] : [`state-${i}`],
  );
  return [
    { id: TAB, type: 'tab', label: 'lifecycle switch test' },
    {
      id: 'switch',
      type: 'floorflow-lifecycle-switch',
      z: TAB,
      model: 'trackopz-product',
      db: 'floorflow-db-main',
      source: 'test flow',
      outputs,
      wires: ports,
      ...config,
    },
    ...Array.from({ length: outputs - 1 }, (_, i) => ({ id: `state-${i}`, type: 'helper', z: TAB })),
    { id: 'rejected', type: 'helper', z: TAB },
  ] as FlowNode[];
}

async function newProduct(kit: FlowKit, state: 'ON' | 'OFF'): Promise<string> {
  const created = await kit.pool.query<{ id: string }>(
    `INSERT INTO trackopz.products (name) VALUES ('label roll') RETURNING id::text AS id`,
  );
  await kit.pool.query('INSERT INTO trackopz.jobs (product_id, state) VALUES ($1, $2)', [
    created.rows[0].id,
    state,
  ]);
  return created.rows[0].id;
}

describe('floorflow-lifecycle-switch node', function () {
  this.timeout(30000);
  let kit: FlowKit | undefined;

  afterEach(async () => {
    await kit?.stop();
    kit = undefined;
  });

  it('applies move_to_past, sends the message out of the OFF output and announces the event on MQTT and the bus', async () => {
    kit = await startFlowKit({ flows: [], extraNodes: switchFlow() });
    const id = await newProduct(kit, 'ON');
    const published: Array<{ topic: string; payload: string }> = [];
    kit.broker!.aedes.on('publish', (packet) => {
      if (packet.topic.startsWith('floorflow/events/'))
        published.push({ topic: packet.topic, payload: String(packet.payload) });
    });
    const onBus = new Promise<LifecycleEvent>((resolve) =>
      kit!.services.events.once(LIFECYCLE_EVENT, resolve),
    );
    const arrived = kit.nextMessage('state-1');
    kit.receive('switch', {
      entityId: Number(id),
      action: 'move_to_past',
      reason: 'dispatched',
      actor: 'op-7',
    });
    const msg = await arrived;
    const transition = msg.transition as LifecycleEvent & { childId: string };
    assert.deepEqual(
      { ...transition, eventId: undefined, childId: undefined },
      {
        lifecycle: 'trackopz-product',
        entityId: id,
        from: 'ON',
        to: 'OFF',
        action: 'move_to_past',
        reason: 'dispatched',
        actor: 'op-7',
        source: 'test flow',
        flowVersion: null, // the test tab is in no flow file, so it has no version
        at: '2026-01-05T08:00:00.000Z',
        eventId: undefined,
        childId: undefined,
      },
    );
    const event = await onBus;
    assert.equal(event.eventId, transition.eventId);
    await kit.waitFor(() => published.length === 1, 'the MQTT event');
    assert.equal(published[0].topic, `floorflow/events/trackopz-product/${id}`);
    assert.equal((JSON.parse(published[0].payload) as LifecycleEvent).to, 'OFF');
    const audit = await kit.pool.query(
      'SELECT source FROM trackopz.product_transitions WHERE product_id = $1',
      [id],
    );
    assert.deepEqual(audit.rows, [{ source: 'test flow' }]);
  });

  it('sends an invalid transition to the reject output with FF_TRANSITION_INVALID and 409, writing nothing', async () => {
    kit = await startFlowKit({ flows: [], extraNodes: switchFlow() });
    const id = await newProduct(kit, 'OFF');
    const arrived = kit.nextMessage('rejected');
    kit.receive('switch', { entityId: id, action: 'move_to_past' });
    const msg = await arrived;
    assert.deepEqual(msg.error, {
      code: 'FF_TRANSITION_INVALID',
      statusCode: 409,
      reason: 'cannot move_to_past a product in state "OFF"; allowed from "ON"',
      message: 'cannot move_to_past a product in state "OFF"; allowed from "ON"',
    });
    const audit = await kit.pool.query('SELECT 1 FROM trackopz.product_transitions WHERE product_id = $1', [
      id,
    ]);
    assert.equal(audit.rowCount, 0);
  });

  it('rejects an unknown product with 404 and a message without an action with 400', async () => {
    kit = await startFlowKit({ flows: [], extraNodes: switchFlow() });
    let arrived = kit.nextMessage('rejected');
    kit.receive('switch', { entityId: '424242', action: 'move_to_past' });
    assert.deepEqual((await arrived).error, {
      code: 'FF_NOT_FOUND',
      statusCode: 404,
      reason: 'product 424242 not found',
      message: 'product 424242 not found',
    });
    arrived = kit.nextMessage('rejected');
    kit.receive('switch', { entityId: '1' });
    const error = (await arrived).error as { code: string; statusCode: number; reason: string };
    assert.deepEqual(
      [error.code, error.statusCode, error.reason],
      ['FF_INPUT_INVALID', 400, 'msg.action is required (a string)'],
    );
  });

  it('routes by the states of a custom model given as JSON', async () => {
    const model = {
      name: 'plate-check',
      entity: 'plate',
      states: [
        'in_production',
        'ready_for_embossing',
        'queued_for_embossing',
        'embossing_in_progress',
        'embossed',
        'in_storage',
      ],
      initial: 'in_production',
      transitions: [{ action: 'approve', from: ['in_production'], to: 'ready_for_embossing' }],
      store: { kind: 'column', table: 'embossing.plates', key: 'id', keyType: 'bigint', column: 'status' },
    };
    kit = await startFlowKit({
      flows: [],
      extraNodes: switchFlow({ model: 'custom', customModel: JSON.stringify(model) }, 7),
    });
    const created = await kit.pool.query<{ id: string }>(
      `INSERT INTO embossing.plates (plate_number) VALUES ('P-9') RETURNING id::text AS id`,
    );
    const arrived = kit.nextMessage('state-1');
    kit.receive('switch', { entityId: created.rows[0].id, action: 'approve' });
    assert.equal(((await arrived).transition as LifecycleEvent).to, 'ready_for_embossing');
  });

  it('shows a red status and logs one error naming the bad state of an invalid custom model; messages fail with FF_CONFIG_INVALID', async () => {
    const model = {
      name: 'broken',
      entity: 'plate',
      states: ['new', 'done'],
      initial: 'new',
      transitions: [{ action: 'finish', from: ['new'], to: 'finished' }],
      store: { kind: 'column', table: 'embossing.plates', key: 'id', keyType: 'bigint', column: 'status' },
    };
    kit = await startFlowKit({
      flows: [],
      extraNodes: switchFlow({ model: 'custom', customModel: JSON.stringify(model) }),
    });
    const errors = kit.loggedErrors().filter((e) => e.id === 'switch');
    assert.equal(errors.length, 1);
    assert.match(
      errors[0].msg,
      /custom model: transition 1 \(\W*finish\W*\): to state \W*finished\W* is not one of the states/,
    );
    const statuses = (kit.node('switch').status as unknown as { args: NodeStatus[][] }).args.map((a) => a[0]);
    assert.deepEqual(statuses, [{ fill: 'red', shape: 'ring', text: 'invalid lifecycle model' }]);
    // done(err) reports the failure with the message (what a Catch node receives) and logs it.
    kit.receive('switch', { entityId: '1', action: 'finish' });
    await kit.waitFor(
      () => kit!.loggedErrors().filter((e) => e.id === 'switch').length === 2,
      'the failed message to be reported',
    );
    assert.match(kit.loggedErrors().filter((e) => e.id === 'switch')[1].msg, /invalid configuration/);
  });

  it('offers the shipped models to the editor', async () => {
    kit = await startFlowKit({ flows: [], extraNodes: switchFlow() });
    const helper = (await import('node-red-node-test-helper')).default;
    const response = await helper.request().get('/floorflow/lifecycle-models').expect(200);
    const names = (response.body as Array<{ name: string }>).map((m) => m.name);
    assert.ok(names.includes('trackopz-product') && names.includes('engraving-job'));
  });
});
