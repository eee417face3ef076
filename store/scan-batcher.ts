// Group commit for scans that carry a msg_id: scans arriving while a flush is in flight queue,
// and the next flush stores up to `maxBatch` of them with one transaction and one set-based
// INSERT. Each caller's promise settles only after that transaction: resolved with its own row
// (or as a duplicate) after COMMIT, rejected when the flush fails, so an MQTT scan is
// acknowledged only once it is committed. Nothing waits on a timer: a lone scan is flushed at
// once, batches form only while the database is busy. Scans without msg_id do not come here
// (the double-send window needs insertScan's per-machine lock).
import type { Pool } from 'pg';
import type { IncomingScan } from '../core/job-status';
import { withTransaction } from './db';
import type { InsertScanResult } from './job-status';

export interface ScanBatcherOptions {
  /** Most scans per flush (default 500). */
  maxBatch?: number;
}

export interface ScanBatcherStats {
  /** Flushes started (each one transaction). */
  flushes: number;
  /** Flushes that failed (their callers were rejected). */
  failedFlushes: number;
  /** Scans handed to a flush. */
  scans: number;
  /** Largest batch flushed. */
  largestBatch: number;
}

interface Pending {
  machineId: string;
  scan: IncomingScan & { msg_id: string };
  now: Date;
  metadata?: Record<string, unknown>;
  resolve: (result: InsertScanResult) => void;
  reject: (err: unknown) => void;
}

const INSERT_BATCH = `INSERT INTO jobmanager.scanned_codes
    (code_text, scanned_at, machine_id, user_id, operations, metadata, msg_id, received_at)
  SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[],
                       $7::text[], $8::timestamptz[])
  ON CONFLICT (machine_id, msg_id) WHERE msg_id IS NOT NULL DO NOTHING
  RETURNING scan_id, machine_id, msg_id, scanned_at`;

function keyOf(machineId: string, msgId: string): string {
  return JSON.stringify([machineId, msgId]);
}

export class ScanBatcher {
  readonly stats: ScanBatcherStats = { flushes: 0, failedFlushes: 0, scans: 0, largestBatch: 0 };
  private readonly maxBatch: number;
  private queue: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly pool: Pool,
    options: ScanBatcherOptions = {},
  ) {
    this.maxBatch = Math.max(1, options.maxBatch ?? 500);
  }

  /** Scans waiting for the next flush. */
  get queued(): number {
    return this.queue.length;
  }

  /** Stores one scan with a msg_id in the next flush; settles after that flush's transaction. */
  insert(
    machineId: string,
    scan: IncomingScan,
    options: { now: Date; metadata?: Record<string, unknown> },
  ): Promise<InsertScanResult> {
    const msgId = scan.msg_id;
    if (!msgId) return Promise.reject(new Error('ScanBatcher takes only scans with a msg_id'));
    return new Promise<InsertScanResult>((resolve, reject) => {
      this.queue.push({
        machineId,
        scan: { ...scan, msg_id: msgId },
        now: options.now,
        metadata: options.metadata,
        resolve,
        reject,
      });
      if (!this.flushing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        this.stats.flushes += 1;
        this.stats.scans += batch.length;
        this.stats.largestBatch = Math.max(this.stats.largestBatch, batch.length);
        let results: InsertScanResult[];
        try {
          results = await this.flush(batch);
        } catch (err) {
          this.stats.failedFlushes += 1;
          for (const p of batch) p.reject(err);
          continue;
        }
        batch.forEach((p, i) => p.resolve(results[i]));
      }
    } finally {
      this.flushing = false;
    }
  }

  /** One transaction, one INSERT for the batch; the results in batch order. */
  private async flush(batch: Pending[]): Promise<InsertScanResult[]> {
    // The first copy of a (machine, msg_id) in the batch is the one inserted; later copies are
    // duplicates without asking the database. Rows go in key order, so two runtimes flushing
    // overlapping keys into one database wait for each other instead of deadlocking.
    const first = new Map<string, Pending>();
    for (const p of batch) {
      const key = keyOf(p.machineId, p.scan.msg_id);
      if (!first.has(key)) first.set(key, p);
    }
    const rows = [...first.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
    const inserted = await withTransaction(this.pool, async (client) => {
      const result = await client.query<{
        scan_id: string;
        machine_id: string;
        msg_id: string;
        scanned_at: Date;
      }>(INSERT_BATCH, [
        rows.map((p) => p.scan.code_text),
        rows.map((p) => p.scan.scanned_at ?? p.now),
        rows.map((p) => p.machineId),
        rows.map((p) => p.scan.user_id ?? null),
        rows.map((p) => JSON.stringify(p.scan.operations)),
        rows.map((p) => (p.metadata ? JSON.stringify(p.metadata) : null)),
        rows.map((p) => p.scan.msg_id),
        rows.map((p) => p.now),
      ]);
      return result.rows;
    });
    const byKey = new Map(inserted.map((r) => [keyOf(r.machine_id, r.msg_id), r]));
    return batch.map((p): InsertScanResult => {
      const key = keyOf(p.machineId, p.scan.msg_id);
      const row = byKey.get(key);
      if (!row || first.get(key) !== p) return { stored: false, duplicate: 'msg_id' };
      return {
        stored: true,
        scan: {
          scan_id: Number(row.scan_id),
          machine_id: p.machineId,
          code_text: p.scan.code_text,
          operations: p.scan.operations,
          scanned_at: row.scanned_at,
          user_id: p.scan.user_id ?? null,
          msg_id: p.scan.msg_id,
        },
      };
    });
  }
}

const batchers = new WeakMap<Pool, ScanBatcher>();

/** The pool's batcher (one per pool, so one flush in flight per pool). */
export function scanBatcherFor(pool: Pool): ScanBatcher {
  let batcher = batchers.get(pool);
  if (!batcher) {
    batcher = new ScanBatcher(pool);
    batchers.set(pool, batcher);
  }
  return batcher;
}

/** FLOORFLOW_SCAN_GROUP_COMMIT=off stores every scan in its own transaction (the path before group commit). */
export function groupCommitEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return !/^(off|0|false|no)$/i.test(env.FLOORFLOW_SCAN_GROUP_COMMIT ?? '');
}
