// What a lifecycle event stream (Server-Sent Events) sends: the product dispatch message types for
// product events, a generic one for other lifecycles, and the SSE wire format. Pure.
import type { LoggedTransition } from './lifecycle';

/** A logged lifecycle event as the stream reads it back from floorflow.lifecycle_events. */
export type StreamEvent = Omit<LoggedTransition, 'flowVersion'>;

/** One SSE message's data: `{type, data, timestamp}`, read by EventSource.onmessage. */
export interface StreamMessage {
  type: string;
  data: Record<string, unknown>;
  timestamp: string;
}

const PRODUCT_LIFECYCLE = 'trackopz-product';

/**
 * The messages one logged event becomes. Products: a product leaving ON is
 * `product_moved_to_past`, and any change of whether it is dispatchable (ON) is also a
 * `dispatchable_products_update`. Other lifecycles: one `lifecycle_transition`.
 */
export function streamMessagesFor(event: StreamEvent): StreamMessage[] {
  const timestamp = event.at.toISOString();
  const common = {
    from: event.from,
    to: event.to,
    action: event.action,
    reason: event.reason,
    actor: event.actor,
    source: event.source,
  };
  if (event.lifecycle !== PRODUCT_LIFECYCLE) {
    return [
      {
        type: 'lifecycle_transition',
        data: { lifecycle: event.lifecycle, entityId: event.entityId, ...common },
        timestamp,
      },
    ];
  }
  const messages: StreamMessage[] = [];
  const wasLive = event.from === 'ON';
  const isLive = event.to === 'ON';
  if (wasLive && !isLive) {
    messages.push({
      type: 'product_moved_to_past',
      data: { productId: event.entityId, ...common },
      timestamp,
    });
  }
  if (wasLive !== isLive) {
    messages.push({
      type: 'dispatchable_products_update',
      data: {
        productId: event.entityId,
        change: isLive ? 'added' : 'removed',
        isDispatchable: isLive,
        ...common,
      },
      timestamp,
    });
  }
  return messages;
}

/** One SSE frame; `id` sets the client's Last-Event-ID. Data is one JSON line. */
export function sseFrame(message: StreamMessage, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(message)}\n\n`;
}

/** The frames of one logged event, written together so a client never sees half of them. */
export function sseFramesFor(event: StreamEvent): string {
  return streamMessagesFor(event)
    .map((m) => sseFrame(m, event.id))
    .join('');
}

/** A Last-Event-ID (header, or `lastEventId` query parameter for clients that cannot set headers). */
export function parseLastEventId(value: unknown): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === 'string' && /^[0-9]{1,18}$/.test(text.trim()) ? text.trim() : undefined;
}
