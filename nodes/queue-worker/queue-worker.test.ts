import assert from 'node:assert/strict';
import helper from 'node-red-node-test-helper';
import { errorsLoggedBy, statusesOf } from '../../tests/support/node-status';
import queueWorker from './queue-worker';

helper.init(require.resolve('node-red'));

type FlowNode = Parameters<typeof helper.load>[1][number] & Record<string, unknown>;

function flowWith(config: Record<string, unknown>): FlowNode[] {
  return [
    { id: 'tab', type: 'tab' },
    { id: 'worker-1', type: 'floorflow-queue-worker', z: 'tab', name: 'the worker', wires: [[]], ...config },
  ];
}

describe('queue-worker node', () => {
  afterEach(async () => {
    await helper.unload();
  });

  it('a queue nobody registered gives a red status and one error naming the known queues, and no polling', async () => {
    await helper.load(queueWorker, flowWith({ queue: 'laminating' }));
    const node = helper.getNode('worker-1');
    assert.deepEqual(statusesOf(node), [{ fill: 'red', shape: 'ring', text: 'unknown queue laminating' }]);
    const errors = errorsLoggedBy('worker-1');
    assert.equal(errors.length, 1);
    // Which queues are known depends on which domain modules this process loaded.
    assert.match(errors[0], /unknown queue "laminating"; known: (\w+, )*engraving, (\w+, )*processing/);
  });

  it('a bad interval gives a red status and one configuration error', async () => {
    await helper.load(queueWorker, flowWith({ queue: 'processing', interval: '-5' }));
    const node = helper.getNode('worker-1');
    assert.deepEqual(statusesOf(node), [{ fill: 'red', shape: 'ring', text: 'invalid configuration' }]);
    const errors = errorsLoggedBy('worker-1');
    assert.equal(errors.length, 1);
    assert.match(errors[0], /interval must be > 0/);
  });
});
