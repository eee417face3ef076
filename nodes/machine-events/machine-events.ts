// Node-RED glue for machine-events: the flow's door to the durable inbox for machine events. The
// runtime's inbox writer commits every event before its PUBACK, whether or not a flow runs; this
// node sends on, one message per event and in event order, those of its machine kinds: new ones as
// they commit, and at start every one its consumer has not applied yet (a deploy, a restart, a
// crash). The consumer (embosser, engraving) applies each with its ledger row in one transaction,
// so an event sent twice takes effect once.
import type { NodeAPI } from 'node-red';
import { FloorflowError } from '../../core/errors';
import type { JsonSchema } from '../../core/schema';
import { defineNode } from '../common/define-node';
import { onCloseAsync } from '../common/node-kit';
import type { TimerHandle } from '../common/services';
import { eventSource } from '../../store/ledger';
import { advanceEventMarker, unprocessedEvents, type StoredEvent } from '../../store/machine-inbox';
import configSchema from './schema.json';

interface MachineEventsConfig {
  name: string;
  db: string;
  consumer: string;
  machineKinds: string;
  lookBack: number;
  schemaVersion: 1;
}

/** Events read per catch-up query. */
const PAGE = 500;
/** An event still not applied this long after it arrived is sent again (its consumer failed on it). */
const RETRY_MS = 60000;

export = function register(RED: NodeAPI): void {
  defineNode<MachineEventsConfig>(
    RED,
    { type: 'floorflow-machine-events', schema: configSchema as JsonSchema, needs: 'database' },
    ({ node, config, services, clock, pool }) => {
      const inbox = services.inbox;
      if (!inbox) {
        node.status({ fill: 'red', shape: 'ring', text: 'needs the floorflow runtime (no inbox)' });
        node.error(
          new FloorflowError('FF_CONFIG_INVALID', 'machine events runs only in the floorflow runtime'),
        );
        return;
      }
      const source = eventSource(config.consumer);
      const kinds = config.machineKinds.split(',');
      const lookBack = config.lookBack;
      let closed = false;
      let caughtUp = false;
      let lastSent = 0;
      let sent = 0;
      // Events committed while the catch-up reads: sent after it, in event order, once.
      const held: StoredEvent[] = [];

      const sendEvent = (event: StoredEvent, again = false): void => {
        if (closed || (!again && event.event_id <= lastSent)) return;
        lastSent = Math.max(lastSent, event.event_id);
        sent += 1;
        node.send({
          topic: event.topic,
          payload: event.payload ?? event.raw,
          inbox: {
            source,
            id: event.event_id,
            machine_id: event.machine_id,
            machine_kind: event.machine_kind,
            received_at: event.received_at.toISOString(),
            ...(event.reason ? { reason: event.reason } : {}),
          },
        });
      };
      const showStatus = (): void => {
        node.status({ fill: 'green', shape: 'dot', text: `${sent} events sent · ${kinds.join(', ')}` });
      };

      const stop = inbox.onCommitted((receipts) => {
        let any = false;
        for (const receipt of receipts) {
          if (receipt.kind !== 'event' || !kinds.includes(receipt.event.machine_kind ?? '')) continue;
          any = true;
          if (caughtUp) sendEvent(receipt.event);
          else held.push(receipt.event);
        }
        if (any && caughtUp) showStatus();
      });

      /**
       * Sends the events of its kinds the consumer has not processed, in event order: at start all
       * of them (then those committed meanwhile), later only those older than a retry interval that
       * are still open (their consumer failed on them, e.g. while the database was away).
       */
      const catchUp = async (first: boolean): Promise<void> => {
        const marker = await advanceEventMarker(pool, { source, machineKinds: kinds, lookBack }, clock.now());
        const retryBefore = clock.now().getTime() - RETRY_MS;
        let after = Math.max(0, marker - lookBack);
        for (;;) {
          const page = await unprocessedEvents(pool, { source, machineKinds: kinds, after, limit: PAGE });
          for (const event of page) {
            if (first) sendEvent(event);
            else if (event.event_id <= lastSent && event.received_at.getTime() < retryBefore)
              sendEvent(event, true);
          }
          if (page.length < PAGE || closed) break;
          after = page[page.length - 1].event_id;
        }
        if (first) {
          held.sort((a, b) => a.event_id - b.event_id);
          for (const event of held.splice(0)) sendEvent(event);
          caughtUp = true;
        }
      };

      let timer: TimerHandle | undefined;
      let running: Promise<void> = Promise.resolve();
      const round = (first: boolean): void => {
        running = catchUp(first).then(showStatus, (err: Error) => {
          if (first) {
            // The live events still flow; the retry round catches up on what was missed.
            caughtUp = true;
            for (const event of held.splice(0)) sendEvent(event);
          }
          node.status({ fill: 'red', shape: 'ring', text: `catch-up failed: ${err.message}`.slice(0, 80) });
          node.error(err);
        });
        void running.then(() => {
          if (!closed) timer = clock.setTimeout(() => round(false), RETRY_MS);
        });
      };
      // Sent before every node of the flow exists, a message would be lost: start once the flows have.
      const start = (): void => round(true);
      node.status({ fill: 'blue', shape: 'ring', text: 'catching up' });
      RED.events.once('flows:started', start);

      onCloseAsync(node, async () => {
        closed = true;
        RED.events.removeListener('flows:started', start);
        clock.clearTimeout(timer);
        stop();
        await running;
      });
    },
  );
};
