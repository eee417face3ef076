// One run at a time of a periodic job (a queue poll, a monitor round): a run asked for while
// one is going happens once right after it, with the time then. A burst of clock ticks or
// pokes (a ManualClock advancing an hour, ten requests at once) is neither lost nor run in
// parallel.
export interface Coalesced {
  /** Starts a run, or asks for one more after the current run; resolves when that is done. */
  run(): Promise<void>;
  /** Resolves when no run is going. */
  idle(): Promise<void>;
}

export function coalesced(work: () => Promise<void>, stopped: () => boolean = () => false): Coalesced {
  let running: Promise<void> | undefined;
  let again = false;
  return {
    run() {
      if (stopped()) return Promise.resolve();
      if (running) {
        again = true;
        return running;
      }
      // The run is forgotten in the same step that finds nothing more asked for: forgotten in a
      // later step (a .finally), a run asked for in between joined the finished run and was lost.
      let finished = false;
      const current = (async () => {
        try {
          do {
            again = false;
            await work();
          } while (again && !stopped());
        } finally {
          finished = true;
          running = undefined;
        }
      })();
      // Work that throws at once has finished before this line: nothing is left running.
      if (!finished) running = current;
      return current;
    },
    async idle() {
      await running;
    },
  };
}
