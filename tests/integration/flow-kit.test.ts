import assert from 'node:assert/strict';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { DbConfigNode } from '../../nodes/common/db';
import { ManualClock, TimerHandle, servicesOf } from '../../nodes/common/services';
import { FlowKit, startFlowKit } from '../support/flow-kit';

const FIXTURE = 'tests/fixtures/flow-kit/kit-fixture.json';

/**
 * A stand-in for a poller: sends the clock's time every `intervalMs`, on the floorflow clock
 * the way every floorflow node must, so the kit's ManualClock drives it.
 */
function kitTicker(RED: NodeAPI): void {
  RED.nodes.registerType('kit-ticker', function KitTicker(this: Node, def: NodeDef & { intervalMs: number }) {
    RED.nodes.createNode(this, def);
    const clock = servicesOf(RED)!.clock;
    let timer: TimerHandle | undefined;
    const tick = () => {
      this.send({ payload: clock.now().toISOString() });
      timer = clock.setTimeout(tick, def.intervalMs);
    };
    timer = clock.setTimeout(tick, def.intervalMs);
    this.on('close', () => clock.clearTimeout(timer));
  });
}

function start(extra: Partial<Parameters<typeof startFlowKit>[0]> = {}): Promise<FlowKit> {
  return startFlowKit({
    flows: [FIXTURE],
    nodeTypes: [kitTicker],
    extraNodes: [
      { id: 'statuses', type: 'helper', z: 'kit-tab' },
      { id: 'ticks', type: 'helper', z: 'kit-tab' },
    ],
    extraWires: [
      { from: 'kit-status-in', to: 'statuses' },
      { from: 'kit-every-minute', to: 'ticks' },
    ],
    ...extra,
  });
}

describe('flow kit', function () {
  this.timeout(30000);
  let kit: FlowKit | undefined;

  afterEach(async () => {
    await kit?.stop();
    kit = undefined;
  });

  it('answers an http in route of a loaded flow file through request()', async () => {
    kit = await start();
    const response = await kit.request().get('/kit/greeting/press-4').expect(200);
    assert.deepEqual(response.body, { greeting: 'hello press-4' });
  });

  it("delivers a registered machine's MQTT publish to the flow's mqtt in node over the embedded broker", async () => {
    kit = await start();
    const secret = await kit.addMachine('scanner-1', 'scanner');
    const machine = await kit.connectMachine('scanner-1', secret);
    const arrived = kit.nextMessage('statuses');
    await machine.publishAsync('floorflow/machines/scanner-1/status', JSON.stringify({ state: 'idle' }), {
      qos: 1,
    });
    const msg = await arrived;
    assert.equal(msg.topic, 'floorflow/machines/scanner-1/status');
    assert.deepEqual(msg.payload, { state: 'idle' });
  });

  it('inject makes a node send a message as if it had produced it', async () => {
    kit = await start({ broker: false });
    const arrived = kit.nextMessage('statuses');
    kit.inject('kit-status-in', { topic: 'floorflow/machines/m9/status', payload: { state: 'busy' } });
    assert.deepEqual((await arrived).payload, { state: 'busy' });
  });

  it('runs a 60 s timer on the manual clock only when the test advances it, taking no real time', async () => {
    const clock = new ManualClock(new Date('2026-03-02T06:00:00Z'));
    kit = await start({ clock, broker: false });
    assert.equal(clock.pending, 1);
    await clock.advance(59_999);
    const arrived = kit.nextMessage('ticks');
    await clock.advance(1);
    assert.equal((await arrived).payload, '2026-03-02T06:01:00.000Z');
    const second = kit.nextMessage('ticks');
    await clock.advance(60_000);
    assert.equal((await second).payload, '2026-03-02T06:02:00.000Z');
  });

  it('gives the floorflow-db config node of flows/config.json the fresh migrated test database', async () => {
    kit = await start({ broker: false });
    const dbNode = kit.node<DbConfigNode>('floorflow-db-main');
    assert.equal(dbNode.getPool(), kit.pool);
    const migrated = await kit.pool.query('SELECT count(*)::int AS n FROM floorflow.schema_migrations');
    assert.ok(migrated.rows[0].n > 0);
  });

  it('refuses flows that use a node type nobody registered, naming the type, and cleans up', async () => {
    await assert.rejects(
      startFlowKit({
        flows: [FIXTURE],
        nodeTypes: [kitTicker],
        broker: false,
        extraNodes: [{ id: 'x', type: 'no-such-node', z: 'kit-tab' }],
      }),
      /node types nobody registered: no-such-node/,
    );
    // The failed kit released the helper, so the next one starts.
    kit = await start({ broker: false });
  });

  it('names a flow file that does not exist, and a later kit still starts', async () => {
    await assert.rejects(
      startFlowKit({ flows: ['flows/no-such-flow.json'] }),
      /flow kit: .*no-such-flow\.json: ENOENT/,
    );
    kit = await start({ broker: false });
  });

  it('refuses flows where a node did not start, naming it', async () => {
    // A node id equal to a registered type reads as a circular config reference in Node-RED.
    await assert.rejects(
      startFlowKit({
        flows: [FIXTURE],
        nodeTypes: [kitTicker],
        broker: false,
        extraNodes: [{ id: 'kit-ticker', type: 'kit-ticker', z: 'kit-tab', intervalMs: 1000 }],
      }),
      /these nodes did not start: .*kit-ticker/,
    );
  });
});
