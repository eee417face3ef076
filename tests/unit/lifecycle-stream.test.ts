import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  parseLastEventId,
  sseFramesFor,
  streamMessagesFor,
  type StreamEvent,
} from '../../core/lifecycle-stream';
import { readProductId, readTransitionBody } from '../../core/products';

function productEvent(from: string | null, to: string, action: string): StreamEvent {
  return {
    id: '41',
    lifecycle: 'trackopz-product',
    entityId: '7',
    from,
    to,
    action,
    reason: null,
    actor: null,
    source: 'dispatch',
    at: new Date('2026-01-05T08:00:00Z'),
  };
}

describe('core/lifecycle-stream', () => {
  it('a product leaving ON is product_moved_to_past and a dispatchable_products_update removing it', () => {
    const messages = streamMessagesFor(productEvent('ON', 'OFF', 'move_to_past'));
    assert.deepEqual(
      messages.map((m) => [m.type, m.data.productId, m.data.change ?? null]),
      [
        ['product_moved_to_past', '7', null],
        ['dispatchable_products_update', '7', 'removed'],
      ],
    );
    assert.equal(messages[0].timestamp, '2026-01-05T08:00:00.000Z');
  });

  it('a reactivated product is only a dispatchable_products_update adding it', () => {
    const messages = streamMessagesFor(productEvent('OFF', 'ON', 'reactivate'));
    assert.deepEqual(
      messages.map((m) => [m.type, m.data.change]),
      [['dispatchable_products_update', 'added']],
    );
  });

  it('other lifecycles become lifecycle_transition messages', () => {
    const messages = streamMessagesFor({
      ...productEvent('queued', 'sent', 'send'),
      lifecycle: 'embossing-job',
    });
    assert.deepEqual(
      messages.map((m) => [m.type, m.data.lifecycle, m.data.entityId]),
      [['lifecycle_transition', 'embossing-job', '7']],
    );
  });

  it('writes every frame of one event with the event id, as unnamed messages', () => {
    const frames = sseFramesFor(productEvent('ON', 'OFF', 'move_to_past'));
    assert.equal(frames.match(/^id: 41$/gm)?.length, 2);
    assert.ok(!/^event:/m.test(frames));
    assert.ok(frames.endsWith('\n\n'));
  });

  it('property: a frame is one data line whatever the text in the event', () => {
    fc.assert(
      fc.property(fc.string(), (reason) => {
        const frames = sseFramesFor({ ...productEvent('ON', 'OFF', 'move_to_past'), reason });
        for (const frame of frames.split('\n\n').filter(Boolean)) {
          assert.deepEqual(
            frame.split('\n').map((line) => line.split(':')[0]),
            ['id', 'data'],
          );
        }
      }),
    );
  });

  it('accepts only a whole-number Last-Event-ID', () => {
    assert.equal(parseLastEventId(' 12 '), '12');
    assert.equal(parseLastEventId(['5']), '5');
    assert.equal(parseLastEventId('12; DROP'), undefined);
    assert.equal(parseLastEventId(undefined), undefined);
  });
});

describe('core/products', () => {
  it('requires productId as a whole number', () => {
    assert.deepEqual(readProductId({}), {
      statusCode: 400,
      body: { success: false, error: 'productId is required' },
    });
    assert.deepEqual(readProductId({ productId: 'x1' }), {
      statusCode: 400,
      body: { success: false, error: 'productId must be a whole number' },
    });
    assert.deepEqual(readProductId({ productId: 12 }), { productId: '12' });
  });

  it('reads a lifecycle body: the route action wins, state is the target, and a body naming who acts is refused', () => {
    assert.deepEqual(
      readTransitionBody({ productId: '3', action: 'reactivate', reason: 'dispatched' }, 'move_to_past'),
      { request: { entityId: '3', action: 'move_to_past', reason: 'dispatched' } },
    );
    assert.deepEqual(readTransitionBody({ productId: '3', operatorId: 'op-1' }, 'move_to_past'), {
      statusCode: 400,
      body: {
        success: false,
        error:
          'operatorId is not accepted: floorflow records who made the request from the login or API token',
      },
    });
    assert.deepEqual(readTransitionBody({ productId: 3, action: 'update_state', state: 'off' }, undefined), {
      request: { entityId: '3', action: 'update_state', targetState: 'OFF' },
    });
  });

  it('refuses a body that is not an object, an unknown action and a malformed jobId with 400', () => {
    for (const [body, error] of [
      [[1], 'body must be a JSON object with productId'],
      [{ productId: '1', action: 'explode' }, 'action must be one of move_to_past, reactivate, update_state'],
      [{ productId: '1', action: 'reactivate', jobId: 'j-1' }, 'jobId must be a whole number'],
    ] as const) {
      assert.deepEqual(readTransitionBody(body, undefined), {
        statusCode: 400,
        body: { success: false, error },
      });
    }
  });
});
