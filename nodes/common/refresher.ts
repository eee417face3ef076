// Overlapping triggers of one piece of work (a board read, an alert check) cost one run in
// flight plus at most one after it, however many arrive.

/** Runs `work` on request; requests while it runs are folded into one more run after it. */
export class Refresher {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly work: () => Promise<void>) {}

  request(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.work();
        } while (this.again && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** No more runs; resolves when the one in flight is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running?.catch(() => undefined);
  }
}
