// Batching for nodes that take one message per record but apply records a batch at a time (the
// job mapper): items that arrive while a batch is in flight wait, and the next batch takes all of
// them (up to maxBatch). A lone item is applied at once; batches form while the database is busy,
// and, with `minSpacingMs`, while items keep coming: a batch starts no sooner than that long after
// the previous one started, so a steady trickle is applied a few at a time instead of one by one.
// Each add() settles when its own batch has, so the node calls done() per message after its batch
// committed, and Catch, Complete and status work per message.

export type BatchOutcome<R> = { ok: true; value: R } | { ok: false; error: Error };

export interface BatchItem<T, R> {
  item: T;
  outcome: BatchOutcome<R>;
}

export interface BatchOptions<T, R> {
  maxBatch: number;
  /**
   * Least time from one batch's start to the next's (ms, default 0). An item arriving after a quiet
   * spell of at least this long still starts its batch at once; one arriving sooner waits for the
   * rest of the spacing, with whatever else arrives meanwhile (a full batch goes at once).
   */
  minSpacingMs?: number;
  /** A monotonic clock in ms (performance.now by default): spacing is process time, not the plant's. */
  now?: () => number;
  /** Applies a batch; returns an outcome per item, in order (it should not throw). */
  apply(items: T[]): Promise<Array<BatchOutcome<R>>>;
  /** Told after each batch settled, e.g. to update the node status. */
  settled?(items: Array<BatchItem<T, R>>): void;
}

export interface Batches<T, R> {
  add(item: T): Promise<BatchOutcome<R>>;
  /** Items waiting for the next batch. */
  readonly waiting: number;
  /** Resolves when nothing is waiting or in flight. */
  idle(): Promise<void>;
}

export function coalescedBatches<T, R>(options: BatchOptions<T, R>): Batches<T, R> {
  const spacing = Math.max(0, options.minSpacingMs ?? 0);
  const now = options.now ?? (() => performance.now());
  let queue: Array<{ item: T; resolve: (outcome: BatchOutcome<R>) => void }> = [];
  let running: Promise<void> = Promise.resolve();
  // Cleared in the same synchronous step that finds the queue empty, so an item added right after
  // always starts a new drain.
  let draining = false;
  let lastStart = -Infinity;
  // The spacing's wait, while the drain sleeps: a full batch ends it early.
  let wake: (() => void) | undefined;

  const spaced = async (): Promise<void> => {
    const wait = lastStart + spacing - now();
    if (wait <= 0 || queue.length >= options.maxBatch) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve();
      }, wait);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });
  };

  const drain = async (): Promise<void> => {
    try {
      while (queue.length > 0) {
        if (spacing > 0) await spaced();
        lastStart = now();
        const batch = queue.slice(0, options.maxBatch);
        queue = queue.slice(batch.length);
        let outcomes: Array<BatchOutcome<R>>;
        try {
          outcomes = await options.apply(batch.map((b) => b.item));
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err));
          outcomes = batch.map(() => ({ ok: false, error }));
        }
        const settled = batch.map((b, i) => ({
          item: b.item,
          outcome: outcomes[i] ?? { ok: false as const, error: new Error('no outcome for this record') },
        }));
        try {
          options.settled?.(settled);
        } catch {
          // A status update must not keep messages from being done.
        }
        batch.forEach((b, i) => b.resolve(settled[i].outcome));
      }
    } finally {
      draining = false;
    }
  };

  return {
    add(item) {
      return new Promise((resolve) => {
        queue.push({ item, resolve });
        if (!draining) {
          draining = true;
          running = drain();
        } else if (wake && queue.length >= options.maxBatch) wake();
      });
    },
    get waiting() {
      return queue.length;
    },
    async idle() {
      while (draining) await running;
    },
  };
}
