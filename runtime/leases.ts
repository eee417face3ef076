// The runtime's leases (store/leases.ts): its own liveness lease, renewed every third of the
// lease time, and the leases of work that must run on one runtime at a time (alert rules,
// monitors, pollers), which it takes whenever they are free. When a runtime dies its leases
// expire and another runtime's next round takes them: the work moves within
// FLOORFLOW_LEASE_TTL_MS plus a third of it.
import type { Pool } from 'pg';
import type { LeaseAccess, LeaseHandle } from '../nodes/common/services';
import { acquireLeases, liveRuntimes, releaseLeases, renewLeases, runtimeLeaseName } from '../store/leases';

interface Wanted {
  listeners: Set<(held: boolean) => void>;
}

export interface LeaseKeeperOptions {
  pool: Pool;
  runtimeId: string;
  ttlMs: number;
  log: (line: string) => void;
}

export class LeaseKeeper implements LeaseAccess {
  private readonly wanted = new Map<string, Wanted>();
  private held = new Set<string>();
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private stopped = false;
  /** When the last renewal succeeded (this process's monotonic clock). */
  private renewedAt = 0;
  private failing = false;
  private readonly goneListeners = new Set<(runtimeId: string) => void>();
  /** Runtimes seen alive at the last round. */
  private alive = new Set<string>();

  constructor(private readonly options: LeaseKeeperOptions) {}

  get runtimeLease(): string {
    return runtimeLeaseName(this.options.runtimeId);
  }

  /** Registers this runtime as alive; resolves once its liveness lease is taken. */
  async start(): Promise<void> {
    await this.tick();
    if (!this.held.has(this.runtimeLease))
      throw new Error(`runtime lease ${this.runtimeLease} is held by another process`);
    this.schedule();
  }

  holds(name: string): boolean {
    return this.held.has(name);
  }

  want(name: string, onChange?: (held: boolean) => void): LeaseHandle {
    let entry = this.wanted.get(name);
    if (!entry) this.wanted.set(name, (entry = { listeners: new Set() }));
    const listener = onChange ?? (() => undefined);
    entry.listeners.add(listener);
    // Taken at the next round, not at once: many nodes start together and one round takes them all.
    this.soon();
    return {
      held: () => this.held.has(name),
      release: async () => {
        const e = this.wanted.get(name);
        e?.listeners.delete(listener);
        if (e && e.listeners.size === 0) {
          this.wanted.delete(name);
          if (this.held.delete(name))
            await releaseLeases(this.options.pool, [name], this.options.runtimeId).catch(() => undefined);
        }
      },
    };
  }

  onRuntimeGone(listener: (runtimeId: string) => void): () => void {
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  /** Gives every lease back, so other runtimes take the work at their next round. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round?.catch(() => undefined);
    const names = [...this.held];
    this.setHeld(new Set());
    await releaseLeases(this.options.pool, names, this.options.runtimeId).catch(() => undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick().finally(() => this.schedule()), this.options.ttlMs / 3);
    this.timer.unref();
  }

  private soon(): void {
    if (this.stopped || !this.renewedAt) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick().finally(() => this.schedule()), 10);
    this.timer.unref();
  }

  private tick(): Promise<void> {
    this.round ??= this.renewAndTake().finally(() => (this.round = undefined));
    return this.round;
  }

  private async renewAndTake(): Promise<void> {
    const { pool, runtimeId, ttlMs, log } = this.options;
    try {
      const renewed = new Set(await renewLeases(pool, [...this.held], runtimeId, ttlMs));
      const free = [this.runtimeLease, ...this.wanted.keys()].filter((n) => !renewed.has(n));
      for (const name of await acquireLeases(pool, free, runtimeId, ttlMs)) renewed.add(name);
      this.renewedAt = performance.now();
      if (this.failing) log('leases: the database answers again');
      this.failing = false;
      this.setHeld(renewed);
      const alive = new Set(await liveRuntimes(pool));
      for (const id of this.alive) {
        if (alive.has(id) || id === runtimeId) continue;
        log(`runtime ${id} is gone (its lease expired or it stopped): its work is taken over`);
        for (const listener of this.goneListeners) listener(id);
      }
      this.alive = alive;
    } catch (err) {
      if (!this.failing) log(`leases: renewal failed (${(err as Error).message}); retrying`);
      this.failing = true;
      // Past the lease time another runtime may hold them: stop their work here.
      if (performance.now() - this.renewedAt > ttlMs * 0.9) this.setHeld(new Set());
    }
  }

  private setHeld(next: Set<string>): void {
    const before = this.held;
    this.held = next;
    for (const [name, entry] of this.wanted) {
      const was = before.has(name);
      const is = next.has(name);
      if (was !== is) for (const listener of entry.listeners) listener(is);
    }
  }
}
