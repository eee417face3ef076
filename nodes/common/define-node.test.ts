import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { NodeAPI, NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import type { Pool } from 'pg';
import type { JsonSchema } from '../../core/schema';
import { errorsLoggedBy, statusesOf } from '../../tests/support/node-status';
import { configOf, defineNode } from './define-node';
import { type FloorflowServices, ManualClock } from './services';

helper.init(require.resolve('node-red'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const catchNode = require('@node-red/nodes/core/common/25-catch.js') as (RED: NodeAPI) => void;

type FlowNode = Parameters<typeof helper.load>[1][number] & Record<string, unknown>;

const schema: JsonSchema = {
  type: 'object',
  required: ['station'],
  properties: {
    station: { type: 'string', minLength: 1 },
    intervalSeconds: { type: 'number', exclusiveMinimum: 0, default: 5 },
    batchSize: {
      anyOf: [
        { type: 'integer', minimum: 1 },
        { type: 'string', pattern: '^\\d*$' },
      ],
    },
    schemaVersion: { type: 'integer', const: 1, default: 1 },
  },
};

interface StationConfig {
  station: string;
  intervalSeconds: number;
  batchSize?: number | '';
}

/** A node that sends its configuration on every input: what the setup received. */
function stationNode(needs: 'runtime' | 'nothing') {
  return (RED: NodeAPI) =>
    defineNode<StationConfig>(
      RED,
      {
        type: 'test-station',
        schema,
        needs: needs as 'runtime',
        check: (config) =>
          config.station === 'closed'
            ? { status: 'station closed', reason: 'the station is closed' }
            : undefined,
      },
      ({ node, config }) => {
        node.on('input', (_msg: NodeMessage, send: (m: NodeMessage) => void, done: () => void) => {
          send({ payload: config });
          done();
        });
      },
    );
}

function flowWith(config: Record<string, unknown>, extra: FlowNode[] = []): FlowNode[] {
  return [
    { id: 'tab', type: 'tab' },
    { id: 'station', type: 'test-station', z: 'tab', wires: [['out']], ...config },
    { id: 'out', type: 'helper', z: 'tab' },
    ...extra,
  ];
}

describe('defineNode', () => {
  afterEach(async () => {
    await helper.unload();
    helper.settings({});
  });

  describe('configOf', () => {
    it('makes numeric text a number before validating, so a limit reads as a limit', () => {
      assert.deepEqual(configOf(schema, { station: 'S1', intervalSeconds: '2.5', batchSize: '10' }), {
        station: 'S1',
        intervalSeconds: 2.5,
        batchSize: 10,
        schemaVersion: 1,
      });
      assert.equal(configOf(schema, { station: 'S1', intervalSeconds: '-5' }), 'intervalSeconds must be > 0');
    });

    it('reads an empty box of a number-only property as not set, so the schema default applies', () => {
      assert.deepEqual(configOf(schema, { station: 'S1', intervalSeconds: '', batchSize: '' }), {
        station: 'S1',
        intervalSeconds: 5,
        batchSize: '',
        schemaVersion: 1,
      });
    });

    it('leaves text that is not a number for the schema to refuse, and does not change the definition', () => {
      const def = { station: 'S1', intervalSeconds: 'soon' };
      assert.equal(configOf(schema, def), 'intervalSeconds must be number');
      assert.deepEqual(def, { station: 'S1', intervalSeconds: 'soon' });
    });
  });

  it('gives the setup the validated configuration with numbers', async () => {
    await helper.load(stationNode('nothing'), flowWith({ station: 'S1', intervalSeconds: '30' }));
    const arrived = new Promise<NodeMessage>((resolve) => helper.getNode('out').on('input', resolve));
    helper.getNode('station').receive({ payload: 'go' });
    const { station, intervalSeconds, schemaVersion } = (await arrived).payload as StationConfig & {
      schemaVersion: number;
    };
    assert.deepEqual(
      { station, intervalSeconds, schemaVersion },
      { station: 'S1', intervalSeconds: 30, schemaVersion: 1 },
    );
  });

  it('a check names its own red status; a message that reaches the refused node fails with the reason, where a Catch node sees it', async () => {
    const flow = flowWith({ station: 'closed' }, [
      { id: 'catcher', type: 'catch', z: 'tab', scope: ['station'], uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'tab' },
    ]);
    await helper.load([stationNode('nothing'), catchNode], flow);
    const station = helper.getNode('station');
    assert.deepEqual(statusesOf(station), [{ fill: 'red', shape: 'ring', text: 'station closed' }]);
    assert.equal(errorsLoggedBy('station').length, 1);
    const caught = new Promise<NodeMessage & { error?: { message: string } }>((resolve) =>
      helper.getNode('caught').on('input', resolve),
    );
    station.receive({ payload: 'go' });
    assert.match((await caught).error!.message, /invalid configuration: the station is closed/);
  });

  it('a node that needs the runtime says so in red outside it, and does not start', async () => {
    await helper.load(stationNode('runtime'), flowWith({ station: 'S1' }));
    const station = helper.getNode('station');
    assert.deepEqual(statusesOf(station), [
      { fill: 'red', shape: 'ring', text: 'needs the floorflow runtime' },
    ]);
    assert.match(errorsLoggedBy('station')[0], /runs only in the floorflow runtime/);
  });

  it('in the runtime, a node that needs it starts', async () => {
    const services: FloorflowServices = {
      pool: {} as Pool,
      topicPrefix: 'floorflow',
      runtimeId: 'test',
      events: new EventEmitter(),
      flowVersion: () => '1.0.0',
      machineSecret: async () => undefined,
      clock: new ManualClock(),
    };
    helper.settings({ floorflow: services } as Parameters<typeof helper.settings>[0]);
    await helper.load(stationNode('runtime'), flowWith({ station: 'S1' }));
    assert.deepEqual(statusesOf(helper.getNode('station')), []);
    const arrived = new Promise<NodeMessage>((resolve) => helper.getNode('out').on('input', resolve));
    helper.getNode('station').receive({ payload: 'go' });
    assert.equal(((await arrived).payload as StationConfig).station, 'S1');
  });
});
