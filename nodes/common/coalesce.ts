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
      running = (async () => {
        do {
          again = false;
          await work();
        } while (again && !stopped());
      })().finally(() => {
        running = undefined;
      });
      return running;
    },
    async idle() {
      await running;
    },
  };
}
