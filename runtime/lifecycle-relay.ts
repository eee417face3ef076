// The one place lifecycle transitions are announced. Every transition is written to the durable
// floorflow.lifecycle_events in the transaction that applies it; this relay reads that table after
// the last id it announced and tells the in-process event bus (SSE streams, dashboards) and MQTT
// (<prefix>/events/<lifecycle>/<entity>). So no node announces by hand, nothing is announced
// that did not commit, and every runtime on a shared database hears every transition, whichever
// runtime applied it. It wakes on the commit notice of migration 125 and, should a notice be
// lost with a broken connection, on a slow poll.
import type { PoolClient } from 'pg';
import {
  LIFECYCLE_EVENT,
  type LifecycleEvent,
  type LoggedTransition,
  lifecycleEventTopic,
} from '../core/lifecycle';
import { eventsAfter, lastEventId } from '../store/lifecycle';
import type { FloorflowServices, TimerHandle } from '../nodes/common/services';

const CHANNEL = 'floorflow_lifecycle';
const POLL_MS = 2000;
const BATCH = 500;

type RelayServices = Pick<FloorflowServices, 'pool' | 'events' | 'broker' | 'topicPrefix' | 'clock'>;

export function lifecycleEventOfLogged(logged: LoggedTransition): LifecycleEvent {
  const { id, at, ...record } = logged;
  return { ...record, at: at.toISOString(), eventId: id };
}

export class LifecycleRelay {
  private last = '0';
  private listener: PoolClient | undefined;
  /** Releases the listening connection once, whoever asks first (stop or its error). */
  private dropListener: (() => void) | undefined;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly services: RelayServices,
    private readonly warn: (message: string) => void,
  ) {}

  /** Starts after the newest logged event: what committed before the start was announced by then. */
  async start(): Promise<void> {
    this.last = await lastEventId(this.services.pool);
    await this.listen().catch((err: Error) =>
      this.warn(`lifecycle relay: LISTEN failed, announcing on a ${POLL_MS / 1000} s poll: ${err.message}`),
    );
    this.schedule();
  }

  /** Announces what committed so far; a call while one runs asks for one more round after it. */
  flush(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.flush();
      }
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.services.clock.clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    const client = this.listener;
    const drop = this.dropListener;
    if (client && drop) {
      await client.query(`UNLISTEN ${CHANNEL}`).catch(() => undefined);
      client.removeAllListeners('notification');
      // Through the one release path: an error the connection reports later (the database going
      // away) must not release it a second time, which pg-pool throws on.
      drop();
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.services.clock.setTimeout(() => {
      if (!this.listener) void this.listen().catch(() => undefined);
      void this.flush().finally(() => this.schedule());
    }, POLL_MS);
  }

  private async listen(): Promise<void> {
    if (this.listener || this.stopped) return;
    const client = await this.services.pool.connect();
    let released = false;
    const drop = () => {
      if (released) return;
      released = true;
      if (this.listener === client) {
        this.listener = undefined;
        this.dropListener = undefined;
      }
      client.release(true);
    };
    client.on('error', drop);
    client.on('notification', () => void this.flush());
    try {
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      drop();
      throw err;
    }
    if (this.stopped) {
      drop();
      return;
    }
    this.listener = client;
    this.dropListener = drop;
  }

  private async drain(): Promise<void> {
    for (;;) {
      let batch: LoggedTransition[];
      try {
        batch = await eventsAfter(this.services.pool, this.last, { limit: BATCH });
      } catch (err) {
        if (!this.stopped) this.warn(`lifecycle relay: reading events failed: ${(err as Error).message}`);
        return;
      }
      for (const logged of batch) {
        this.last = logged.id;
        await this.announce(lifecycleEventOfLogged(logged));
      }
      if (batch.length < BATCH) return;
    }
  }

  private async announce(event: LifecycleEvent): Promise<void> {
    const { events, broker, topicPrefix } = this.services;
    events.emit(LIFECYCLE_EVENT, event);
    if (!broker) return;
    const topic = lifecycleEventTopic(topicPrefix, event.lifecycle, event.entityId);
    await broker.publish(topic, JSON.stringify(event), { qos: 1 }).catch((err: unknown) => {
      this.warn(
        `lifecycle event not published on ${topic}: ${err instanceof Error ? err.message : String(err)}`,
      );
    });
  }
}

export async function startLifecycleRelay(
  services: RelayServices,
  warn: (m: string) => void,
): Promise<LifecycleRelay> {
  const relay = new LifecycleRelay(services, warn);
  await relay.start();
  return relay;
}
