// The durable inbox writer: every machine message that changes state (a scan, an event, the
// latest status) is committed to PostgreSQL before the machine is told it arrived. It knows
// nothing of MQTT: the embedded broker calls it from authorizePublish (runtime/broker-access.ts),
// and an MQTT client on an external broker can call it before its manual acknowledgement; the
// promise of write() settles after COMMIT.
//
// Group commit: messages arriving while flushes are in flight queue, and the next flush stores up
// to `maxBatch` of them, of every kind, in one transaction of one set-based statement per table.
// Nothing waits on a timer by default: a lone message is flushed at once, batches form only while
// the database is busy. With `minFlushSpacingMs` (FLOORFLOW_INBOX_FLUSH_SPACING_MS) they also form
// while messages keep coming: a flush starts no sooner than that long after the previous one
// started (a full batch at once), so a steady trickle is stored a few at a time instead of a round
// trip each. With `maxInFlight` above 1, that many flushes may run at once (a PUBACK waits for one
// round trip, not for the flush before it), with one rule that keeps order: a machine's messages
// are never in two flushes in flight at once. A message whose machine has a flush in flight waits
// for the next flush after that one commits, so a machine's messages commit, and are told to
// listeners, in the order they arrived, and the repeat check of scans without a msg_id sees the
// machine's earlier flushes committed. A flush that fails because of one message's content (a data
// error) does not fail the others: its messages are stored one at a time, and the one the database
// refuses is kept raw with the reason and acknowledged, so no machine is blocked by one bad
// message. Any other failure (the database down, a connection lost) rejects every message of the
// flush: none is acknowledged, and the machines resend them.
import type { Pool } from 'pg';
import { type InboxKind, rawExcerpt, readMachineEvent, readMachineStatus } from '../core/inbox';
import { isDoubleSend, readIncomingScan } from '../core/job-status';
import { operationsWithDefaults } from '../core/scanner-settings';
import { isConnectionError, type Queryable, withTransaction } from './db';
import {
  storeMessages,
  type EventToStore,
  type RejectedScan,
  type RejectedScanToStore,
  type ScanToStore,
  type StatusToStore,
  type StoredEvent,
  type StoredScan,
} from './machine-inbox';
import { insertScansWithoutMsgId } from './scan-ingest';
import { ScannerSettingsCache, type ScannerSettings, type ScannerSettingsSource } from './scanner-settings';

export interface InboxMessage {
  /** The authenticated machine: never taken from the payload. */
  machineId: string;
  kind: InboxKind;
  /** The topic it was published on (an event keeps its own). */
  topic: string;
  payload: Buffer | string;
  /** The runtime clock's time of receipt. */
  receivedAt: Date;
  /** How it reached the runtime: a broker (default) or a node's input (a serial scanner). */
  channel?: InboxChannel;
}

export type InboxChannel = 'mqtt' | 'serial';

type ReceiptBody =
  | { kind: 'scan'; machineId: string; outcome: 'stored'; scan: StoredScan }
  | {
      kind: 'scan';
      machineId: string;
      outcome: 'duplicate';
      duplicate: 'msg_id' | 'double_send';
      /** The code of the repeat, when known without the database. */
      code?: string;
    }
  | { kind: 'scan'; machineId: string; outcome: 'rejected'; rejected: RejectedScan }
  | { kind: 'event'; machineId: string; outcome: 'stored'; event: StoredEvent }
  | { kind: 'status'; machineId: string; outcome: 'stored'; status: Record<string, unknown> };

/** What became of a message once its flush committed. */
export type InboxReceipt = ReceiptBody & { channel: InboxChannel };

/** Committed receipts, in commit order; a listener must not throw (it is told after COMMIT). */
export type InboxListener = (receipts: readonly InboxReceipt[]) => void;

/** Messages the database did not take (none of them acknowledged), with the error. */
export type RefusalListener = (err: Error, messages: readonly InboxMessage[]) => void;

export interface InboxWriterOptions {
  /** false: every message in a transaction of its own, one after another (for comparison). */
  groupCommit?: boolean;
  /** Most messages per flush (default 500). */
  maxBatch?: number;
  /**
   * Most flushes in flight at once, each of other machines' messages (default 1). More than one
   * makes flushes smaller: on a machine whose cores are busy that cost more CPU a scan than the
   * wait it saved (docs/benchmarks.md, scan ingest, wave 4), so the runtime keeps one.
   */
  maxInFlight?: number;
  /**
   * Least time from one flush's start to the next's (ms, default 0: each flush as soon as a slot is
   * free). A message arriving after a quiet spell this long is still flushed at once; its PUBACK
   * waits at most this much more otherwise.
   */
  minFlushSpacingMs?: number;
  /** A monotonic clock in ms for the spacing (performance.now by default): process time, not the plant's. */
  monotonicNow?: () => number;
  /** Without a msg_id, the same code from the same machine within this window is one scan sent twice (ms, default 2000). */
  repeatWindowMs?: number;
  /** Per-scanner settings (default operations, double-send window); the registry's by default. */
  scannerSettings?: ScannerSettingsSource;
}

export interface InboxWriterStats {
  /** Flushes started (each one transaction). */
  flushes: number;
  /** Flushes that failed (their callers were rejected, or stored one at a time after a data error). */
  failedFlushes: number;
  /** Messages handed to a flush. */
  messages: number;
  /** Largest flush. */
  largestBatch: number;
  /** Messages the database refused on their own, kept raw with the reason. */
  quarantined: number;
}

type Prepared =
  | { kind: 'scan'; row: ScanToStore }
  | { kind: 'rejected'; row: RejectedScanToStore }
  | { kind: 'event'; row: EventToStore }
  | { kind: 'status'; row: StatusToStore };

interface FlushPlan {
  receipts: Array<ReceiptBody | undefined>;
  withId: Array<{ index: number; row: ScanToStore }>;
  withoutId: Array<{ index: number; row: ScanToStore; windowMs: number }>;
  rejected: Array<{ index: number; row: RejectedScanToStore }>;
  events: Array<{ index: number; row: EventToStore }>;
  statuses: StatusToStore[];
}

interface Pending {
  message: InboxMessage;
  prepared: Prepared;
  resolve: (receipt: InboxReceipt) => void;
  reject: (err: unknown) => void;
}

function withNote(reason: string, note: string | undefined): string {
  return note ? `${reason} (${note})` : reason;
}

/** Reads a message into what its table takes; what can never be typed data is kept raw with the reason. */
function prepare(message: InboxMessage): Prepared {
  const { machineId, receivedAt, payload } = message;
  switch (message.kind) {
    case 'scan': {
      const read = readIncomingScan(payload);
      if (read.ok) return { kind: 'scan', row: { machineId, scan: read.scan, receivedAt } };
      const raw = rawExcerpt(payload);
      return {
        kind: 'rejected',
        row: { machineId, payload: raw.text, reason: withNote(read.reason, raw.note), receivedAt },
      };
    }
    case 'event': {
      const read = readMachineEvent(payload);
      if (read.ok)
        return { kind: 'event', row: { machineId, topic: message.topic, payload: read.value, receivedAt } };
      const raw = rawExcerpt(payload, Number.MAX_SAFE_INTEGER);
      return {
        kind: 'event',
        row: {
          machineId,
          topic: message.topic,
          raw: raw.text,
          reason: withNote(read.reason, raw.note),
          receivedAt,
        },
      };
    }
    case 'status':
      return { kind: 'status', row: { machineId, status: readMachineStatus(payload), receivedAt } };
  }
}

/** The same message kept as the database refused it: raw, with the database's reason. */
function quarantine(pending: Pending, err: Error): Prepared {
  const { machineId, receivedAt, payload, topic } = pending.message;
  const raw = rawExcerpt(payload, pending.message.kind === 'event' ? Number.MAX_SAFE_INTEGER : 4096);
  const reason = withNote(`the database refused it: ${err.message}`, raw.note);
  switch (pending.prepared.kind) {
    case 'scan':
    case 'rejected':
      return { kind: 'rejected', row: { machineId, payload: raw.text, reason, receivedAt } };
    case 'event':
      return { kind: 'event', row: { machineId, topic, raw: raw.text, reason, receivedAt } };
    case 'status':
      return {
        kind: 'status',
        row: { machineId, status: { state: 'unknown', raw: raw.text.slice(0, 200) }, receivedAt },
      };
  }
}

/** A failure caused by what one message holds (SQLSTATE class 22 data exception, 23 integrity). */
function isDataError(err: unknown): err is Error {
  const code = (err as { code?: unknown }).code;
  return err instanceof Error && typeof code === 'string' && /^2[23]/.test(code) && !isConnectionError(err);
}

/** A scan that names no operation, from a scanner with default operations, stands for those. */
function withScannerDefaults(row: ScanToStore, settings: ScannerSettings | undefined): ScanToStore {
  const { operations, defaulted } = operationsWithDefaults(row.scan.operations, settings);
  if (!defaulted) return row;
  return {
    ...row,
    scan: { ...row.scan, operations },
    metadata: { ...row.metadata, operations_from: 'scanner settings' },
  };
}

/** Machine and msg_id: neither can hold a NUL (machine ids are checked, a msg_id with one is rejected). */
function scanKey(row: ScanToStore): string {
  return `${row.machineId}\u0000${row.scan.msg_id ?? ''}`;
}

export class InboxWriter {
  readonly stats: InboxWriterStats = {
    flushes: 0,
    failedFlushes: 0,
    messages: 0,
    largestBatch: 0,
    quarantined: 0,
  };
  private readonly maxBatch: number;
  private repeatWindowMs: number;
  private readonly scanners: ScannerSettingsSource;
  private readonly listeners = new Set<InboxListener>();
  private readonly refusalListeners = new Set<RefusalListener>();
  private readonly maxInFlight: number;
  private queue: Pending[] = [];
  private inFlight = 0;
  private startScheduled = false;
  /** Most flushes that were in flight at once. */
  private mostInFlightSeen = 0;
  /** Machines with messages in a flush in flight: their next messages wait for it to settle. */
  private readonly busyMachines = new Set<string>();
  private readonly minFlushSpacingMs: number;
  private readonly monotonicNow: () => number;
  private lastFlushStart = -Infinity;
  /** The timer that starts the next flush once the spacing has passed. */
  private spacingTimer?: NodeJS.Timeout;

  constructor(
    private readonly pool: Pool,
    options: InboxWriterOptions = {},
  ) {
    this.maxBatch = options.groupCommit === false ? 1 : Math.max(1, options.maxBatch ?? 500);
    this.maxInFlight = options.groupCommit === false ? 1 : Math.max(1, options.maxInFlight ?? 1);
    this.minFlushSpacingMs = options.groupCommit === false ? 0 : Math.max(0, options.minFlushSpacingMs ?? 0);
    this.monotonicNow = options.monotonicNow ?? (() => performance.now());
    this.repeatWindowMs = options.repeatWindowMs ?? 2000;
    this.scanners = options.scannerSettings ?? new ScannerSettingsCache(pool);
  }

  /** Messages waiting for the next flush. */
  get queued(): number {
    return this.queue.length;
  }

  /** Most flushes that have been in flight at once. */
  get mostInFlight(): number {
    return this.mostInFlightSeen;
  }

  /** The repeat window for scans without a msg_id (the scan ingest node's setting). */
  setRepeatWindow(ms: number): void {
    this.repeatWindowMs = Math.max(0, ms);
  }

  /** Tells `listener` what every flush committed; returns the call that stops it. */
  onCommitted(listener: InboxListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells `listener` of messages the database did not take; returns the call that stops it. */
  onRefused(listener: RefusalListener): () => void {
    this.refusalListeners.add(listener);
    return () => this.refusalListeners.delete(listener);
  }

  /**
   * Stores one message in the next flush and settles after that flush's COMMIT: resolved with what
   * became of it (stored, a repeat, kept as rejected), rejected when the database did not take it.
   * Queued at once, so messages keep the order they were written in.
   */
  write(message: InboxMessage): Promise<InboxReceipt> {
    return new Promise<InboxReceipt>((resolve, reject) => {
      let prepared: Prepared;
      try {
        prepared = prepare(message);
      } catch (err) {
        reject(err);
        return;
      }
      this.queue.push({ message, prepared, resolve, reject });
      if (this.spacingTimer && this.queue.length >= this.maxBatch) {
        clearTimeout(this.spacingTimer);
        this.spacingTimer = undefined;
        this.startFlushes();
      } else if (this.inFlight === 0) this.startFlushes();
      else if (!this.startScheduled && this.inFlight < this.maxInFlight) {
        // Another flush beside the one in flight starts once this turn of the event loop has
        // read what the sockets hold, so the publishes that arrived together share it.
        this.startScheduled = true;
        setImmediate(() => {
          this.startScheduled = false;
          this.startFlushes();
        });
      }
    });
  }

  /**
   * Starts flushes while a slot is free and the queue holds messages of machines not in flight;
   * `spacingServed`: the spacing timer fired, so the first flush starts whatever the clock says.
   */
  private startFlushes(spacingServed = false): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      if (this.spacingTimer) return;
      const wait = this.lastFlushStart + this.minFlushSpacingMs - this.monotonicNow();
      if (!spacingServed && wait > 0 && this.queue.length < this.maxBatch) {
        // Messages that arrive meanwhile join this flush; a full batch need not wait (write()).
        this.spacingTimer = setTimeout(() => {
          this.spacingTimer = undefined;
          this.startFlushes(true);
        }, wait);
        return;
      }
      spacingServed = false;
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      const machines = new Set(batch.map((p) => p.message.machineId));
      for (const machineId of machines) this.busyMachines.add(machineId);
      this.inFlight += 1;
      this.lastFlushStart = this.monotonicNow();
      this.mostInFlightSeen = Math.max(this.mostInFlightSeen, this.inFlight);
      void this.flush(batch, () => {
        this.inFlight -= 1;
        for (const machineId of machines) this.busyMachines.delete(machineId);
        this.startFlushes();
      });
    }
  }

  /**
   * The next flush: up to maxBatch queued messages, in arrival order, of machines with nothing in
   * flight. A machine cut off by maxBatch is in flight from then on (the caller marks every machine
   * of the batch), so the rest of its messages wait behind the part taken, as do those of machines
   * already in flight.
   */
  private takeBatch(): Pending[] {
    if (this.busyMachines.size === 0 && this.queue.length <= this.maxBatch) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    const batch: Pending[] = [];
    const left: Pending[] = [];
    for (const pending of this.queue) {
      if (batch.length < this.maxBatch && !this.busyMachines.has(pending.message.machineId))
        batch.push(pending);
      else left.push(pending);
    }
    this.queue = left;
    return batch;
  }

  /**
   * Stores one flush, settles its callers and tells the listeners, then calls `release` in the
   * same step: a caller resumed by its receipt finds the slot and its machine free again.
   */
  private async flush(batch: Pending[], release: () => void): Promise<void> {
    this.stats.flushes += 1;
    this.stats.messages += batch.length;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, batch.length);
    try {
      this.settle(batch, await this.store(batch));
    } catch (err) {
      this.stats.failedFlushes += 1;
      if (isDataError(err)) await this.oneByOne(batch);
      else this.refuse(batch, err);
    } finally {
      release();
    }
  }

  /** After a data error: each message in a transaction of its own; one the database refuses is kept raw. */
  private async oneByOne(batch: Pending[]): Promise<void> {
    for (const pending of batch) {
      try {
        this.settle([pending], await this.store([pending]));
      } catch (err) {
        if (!isDataError(err)) {
          this.refuse([pending], err);
          continue;
        }
        const kept: Pending = { ...pending, prepared: quarantine(pending, err) };
        try {
          const receipts = await this.store([kept]);
          this.stats.quarantined += 1;
          this.settle([pending], receipts);
        } catch (again) {
          this.refuse([pending], again);
        }
      }
    }
  }

  private refuse(batch: Pending[], err: unknown): void {
    for (const p of batch) p.reject(err);
    const error = err instanceof Error ? err : new Error(String(err));
    for (const listener of this.refusalListeners) {
      try {
        listener(
          error,
          batch.map((p) => p.message),
        );
      } catch {
        // As for committed receipts: a listener cannot change what happened.
      }
    }
  }

  private settle(batch: Pending[], bodies: ReceiptBody[]): void {
    const receipts = bodies.map((body, i): InboxReceipt => ({
      ...body,
      channel: batch[i].message.channel ?? 'mqtt',
    }));
    batch.forEach((p, i) => p.resolve(receipts[i]));
    for (const listener of this.listeners) {
      try {
        listener(receipts);
      } catch {
        // A listener is a flow's node; the messages are committed and acknowledged whatever it does.
      }
    }
  }

  /**
   * One flush in one transaction, the receipts in batch order: one statement for all of it, or,
   * when it holds scans without a msg_id, their repeat check first (it needs a per-machine lock).
   */
  private async store(batch: Pending[]): Promise<ReceiptBody[]> {
    const plan = this.plan(batch, await this.scannerSettingsFor(batch));
    if (plan.withoutId.length === 0) return this.writePlan(this.pool, plan);
    return withTransaction(this.pool, async (client) => {
      const stored = await insertScansWithoutMsgId(
        client,
        plan.withoutId.map((w) => w.row),
        plan.withoutId.map((w) => w.windowMs),
      );
      plan.withoutId.forEach((w, i) => {
        const scan = stored.get(i);
        plan.receipts[w.index] = scan
          ? { kind: 'scan', machineId: w.row.machineId, outcome: 'stored', scan }
          : {
              kind: 'scan',
              machineId: w.row.machineId,
              outcome: 'duplicate',
              duplicate: 'double_send',
              code: w.row.scan.code_text,
            };
      });
      return this.writePlan(client, plan);
    });
  }

  /** The scanner settings in force for a flush's scans (none read for a flush without scans). */
  private async scannerSettingsFor(batch: Pending[]): Promise<ReadonlyMap<string, ScannerSettings>> {
    let latest: Date | undefined;
    for (const p of batch) {
      if (p.prepared.kind !== 'scan') continue;
      if (!latest || p.message.receivedAt > latest) latest = p.message.receivedAt;
    }
    return latest ? this.scanners.at(latest) : new Map();
  }

  /** What goes to which table, and the receipts known without the database. */
  private plan(batch: Pending[], scanners: ReadonlyMap<string, ScannerSettings>): FlushPlan {
    const receipts: Array<ReceiptBody | undefined> = new Array(batch.length);

    // Scans with a msg_id: the first copy of a (machine, msg_id) is the one stored; later copies
    // are repeats without asking the database.
    const withId: Array<{ index: number; row: ScanToStore }> = [];
    const firstOfKey = new Map<string, number>();
    // Scans without one: a copy of a scan kept earlier in this flush is a repeat by the same rule
    // the database applies to earlier flushes.
    const withoutId: Array<{ index: number; row: ScanToStore; windowMs: number }> = [];
    const keptAt = new Map<string, Date[]>();
    const rejected: Array<{ index: number; row: RejectedScanToStore }> = [];
    const events: Array<{ index: number; row: EventToStore }> = [];
    const statuses = new Map<string, StatusToStore>();

    batch.forEach(({ prepared, message }, index) => {
      const machineId = message.machineId;
      switch (prepared.kind) {
        case 'scan': {
          const settings = scanners.get(machineId);
          const row = withScannerDefaults(prepared.row, settings);
          if (row.scan.msg_id) {
            const key = scanKey(row);
            if (firstOfKey.has(key)) {
              receipts[index] = { kind: 'scan', machineId, outcome: 'duplicate', duplicate: 'msg_id' };
            } else {
              firstOfKey.set(key, index);
              withId.push({ index, row });
            }
            return;
          }
          // The same code with other operations (kiss_cut after coating) is another scan.
          const key = JSON.stringify([row.machineId, row.scan.code_text, row.scan.operations]);
          const windowMs = settings?.doubleSendWindowMs ?? this.repeatWindowMs;
          const earlier = keptAt.get(key) ?? [];
          if (earlier.some((at) => isDoubleSend(at, row.receivedAt, windowMs))) {
            receipts[index] = {
              kind: 'scan',
              machineId,
              outcome: 'duplicate',
              duplicate: 'double_send',
              code: row.scan.code_text,
            };
            return;
          }
          keptAt.set(key, [...earlier, row.receivedAt]);
          withoutId.push({ index, row, windowMs });
          return;
        }
        case 'rejected':
          rejected.push({ index, row: prepared.row });
          return;
        case 'event':
          events.push({ index, row: prepared.row });
          return;
        case 'status':
          // The latest status wins; every message of the batch is acknowledged with it.
          statuses.set(machineId, prepared.row);
          receipts[index] = { kind: 'status', machineId, outcome: 'stored', status: prepared.row.status };
          return;
      }
    });

    // By machine, and in arrival order within a machine: a scanner's scans keep its order, and two
    // runtimes storing one machine's overlapping scans lock them in the same order.
    withId.sort((a, b) =>
      a.row.machineId < b.row.machineId ? -1 : a.row.machineId > b.row.machineId ? 1 : a.index - b.index,
    );
    return { receipts, withId, withoutId, rejected, events, statuses: [...statuses.values()] };
  }

  /** The flush's one statement (scans with msg_id, rejected scans, events, statuses). */
  private async writePlan(db: Queryable, plan: FlushPlan): Promise<ReceiptBody[]> {
    const { receipts } = plan;
    const stored = await storeMessages(db, {
      scans: plan.withId.map((w) => w.row),
      rejected: plan.rejected.map((r) => r.row),
      events: plan.events.map((e) => e.row),
      statuses: plan.statuses,
    });
    plan.withId.forEach((w, i) => {
      const scan = stored.scans.get(i);
      receipts[w.index] = scan
        ? { kind: 'scan', machineId: w.row.machineId, outcome: 'stored', scan }
        : { kind: 'scan', machineId: w.row.machineId, outcome: 'duplicate', duplicate: 'msg_id' };
    });
    plan.rejected.forEach((r, i) => {
      receipts[r.index] = {
        kind: 'scan',
        machineId: r.row.machineId,
        outcome: 'rejected',
        rejected: stored.rejected[i],
      };
    });
    plan.events.forEach((e, i) => {
      receipts[e.index] = {
        kind: 'event',
        machineId: e.row.machineId,
        outcome: 'stored',
        event: stored.events[i],
      };
    });
    return receipts as ReceiptBody[];
  }
}
