import assert from 'node:assert/strict';
import type { Node, NodeMessage } from 'node-red';
import helper from 'node-red-node-test-helper';
import moveAnswer from './product-move-answer';

helper.init(require.resolve('node-red'));

type Answer = NodeMessage & { statusCode?: number };

describe('product-move-answer node', () => {
  afterEach(async () => {
    await helper.unload();
  });

  async function answerTo(msg: Record<string, unknown>): Promise<Answer> {
    await helper.load(moveAnswer, [
      { id: 'tab', type: 'tab' },
      { id: 'answer', type: 'floorflow-product-move-answer', z: 'tab', wires: [['out']] },
      { id: 'out', type: 'helper', z: 'tab' },
    ]);
    const out = helper.getNode('out') as Node;
    const received = new Promise<Answer>((resolve) => out.once('input', (m: Answer) => resolve(m)));
    helper.getNode('answer').receive(msg as NodeMessage);
    return received;
  }

  it('answers a move the switch made with 200 and the product state before and after', async () => {
    const out = await answerTo({
      transition: {
        lifecycle: 'trackopz-product',
        entityId: 'P-7',
        from: 'ON',
        to: 'OFF',
        action: 'move_to_past',
        reason: 'shipped',
        actor: 'ana',
        source: 'dispatch',
        at: '2026-12-02T08:00:00.000Z',
        eventId: '41',
        childId: '12',
      },
    });
    assert.equal(out.statusCode, 200);
    const body = out.payload as { success: boolean; message: string; data: Record<string, unknown> };
    assert.equal(body.success, true);
    assert.equal(body.message, 'product P-7 moved to past: ON -> OFF');
    assert.equal(body.data.jobId, '12');
    assert.equal(body.data.isDispatchable, false);
    assert.equal(body.data.source, 'dispatch');
  });

  it('answers a move the switch refused with its status and reason', async () => {
    const out = await answerTo({
      error: {
        code: 'FF_TRANSITION_INVALID',
        statusCode: 409,
        reason: 'move_to_past is not allowed from OFF',
        message: 'x',
      },
    });
    assert.equal(out.statusCode, 409);
    assert.deepEqual(out.payload, { success: false, error: 'move_to_past is not allowed from OFF' });
  });

  it('answers 500 to a message that carries neither a move nor a refusal', async () => {
    const out = await answerTo({ payload: {} });
    assert.equal(out.statusCode, 500);
    assert.deepEqual(out.payload, { success: false, error: 'internal error' });
  });
});
