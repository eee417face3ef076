// What the runtime shares with the floorflow nodes: the database pool, the broker's hooks,
// an in-process event bus and the deployed flow versions. The runtime puts this object in
// the Node-RED settings as `floorflow`; nodes read it through RED.settings. Node tests put
// their own in with helper.settings().
import type { EventEmitter } from 'node:events';
import type { NodeAPI } from 'node-red';
import type { Pool } from 'pg';
import type { Identity } from '../../core/access';
import type { InboxListener, InboxMessage, InboxReceipt, RefusalListener } from '../../store/inbox-writer';

/**
 * What nodes may do with the embedded broker. Making machine messages durable is not among it:
 * the runtime's inbox writer commits every scan, event and status before its PUBACK, whether a
 * flow runs or not (FloorflowServices.inbox).
 */
export interface BrokerAccess {
  onlineMachines(): string[];
  publish(
    topic: string,
    payload: string | Buffer,
    options?: { qos?: 0 | 1; retain?: boolean },
  ): Promise<void>;
}

/** Who is on an open dashboard connection (the runtime's access module). */
export interface AccessLookup {
  /** The identity of the connection that sent a message, from msg._client; never from the page's word. */
  identityOfClient(client: unknown): Identity | undefined;
}

export interface FloorflowServices {
  pool: Pool;
  topicPrefix: string;
  runtimeId: string;
  /** The embedded broker, when the runtime runs one (not with MQTT_URL). */
  broker?: BrokerAccess;
  /** The durable inbox: machine messages committed before they are acknowledged; flows read what it commits. */
  inbox?: InboxAccess;
  /** In-process events: lifecycle transitions, alerts, machine status. */
  events: EventEmitter;
  /** Version of the deployed flow (tab) with this id, from flows/manifest.json. */
  flowVersion(flowId: string | undefined): string | undefined;
  /** The machine secret, for verifying callback signatures. */
  machineSecret(machineId: string): Promise<string | undefined>;
  /** Logins of dashboard connections; absent outside the floorflow runtime. */
  access?: AccessLookup;
  /** Time and timers. Nodes never read Date.now() or call setTimeout directly, so tests can run a 60 s backoff instantly. */
  clock: Clock;
  /**
   * Leases of work that must run on one runtime at a time when several share the database
   * (runtime/leases.ts). Absent outside the floorflow runtime: the node is then the only one.
   */
  leases?: LeaseAccess;
}

/** One runtime at a time: a node asks for a named lease and works only while it holds it. */
export interface LeaseAccess {
  /** Asks for the lease while the node runs; onChange hears when this runtime takes or loses it. */
  want(name: string, onChange?: (held: boolean) => void): LeaseHandle;
  /** Hear when another runtime's liveness lease expired (it died): its unfinished work is now orphaned. */
  onRuntimeGone(listener: (runtimeId: string) => void): () => void;
}

export interface LeaseHandle {
  held(): boolean;
  /** No longer wanted (the node closes): given back at once if held. */
  release(): Promise<void>;
}

/**
 * The runtime's inbox writer (store/inbox-writer.ts) as nodes see it: write a message (a serial
 * scan) and settle after its COMMIT, and hear what every flush committed, in commit order.
 */
export interface InboxAccess {
  write(message: InboxMessage): Promise<InboxReceipt>;
  onCommitted(listener: InboxListener): () => void;
  /** Hear of messages the database did not take (so none was acknowledged). */
  onRefused(listener: RefusalListener): () => void;
  /** The repeat window for scans without a msg_id (the scan ingest node's setting). */
  setRepeatWindow(ms: number): void;
}

export type TimerHandle = { readonly id: number };

export interface Clock {
  now(): Date;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

let nextTimerId = 1;
export const systemClock: Clock = (() => {
  const timers = new Map<number, NodeJS.Timeout>();
  return {
    now: () => new Date(),
    setTimeout(fn, ms) {
      const id = nextTimerId++;
      timers.set(
        id,
        setTimeout(() => {
          timers.delete(id);
          fn();
        }, ms),
      );
      return { id };
    },
    clearTimeout(handle) {
      if (!handle) return;
      clearTimeout(timers.get(handle.id));
      timers.delete(handle.id);
    },
  };
})();

/** A clock tests move by hand: advance(60000) fires every timer due within that minute, in order. */
export class ManualClock implements Clock {
  private current: number;
  private timers: Array<{ id: number; due: number; fn: () => void }> = [];
  constructor(start: Date = new Date('2026-01-05T08:00:00Z')) {
    this.current = start.getTime();
  }
  now(): Date {
    return new Date(this.current);
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = nextTimerId++;
    this.timers.push({ id, due: this.current + Math.max(0, ms), fn });
    return { id };
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) this.timers = this.timers.filter((t) => t.id !== handle.id);
  }
  /** Number of timers waiting. */
  get pending(): number {
    return this.timers.length;
  }
  /** Moves time forward, firing due timers in order; awaits a tick after each so async work can run. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      this.timers.sort((a, b) => a.due - b.due || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.due > target) break;
      this.timers.shift();
      this.current = next.due;
      next.fn();
      await new Promise((r) => setImmediate(r));
    }
    this.current = target;
  }
}

export function servicesOf(RED: NodeAPI): FloorflowServices | undefined {
  const settings = RED.settings as unknown as { floorflow?: FloorflowServices };
  return settings.floorflow;
}
