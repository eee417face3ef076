// How often one source (an address, a machine) may cause something costly, such as a log row
// for a refused message: a fixed window per source, in a map of bounded size, so a flood of
// new sources cannot grow it either. Time comes from the caller.

export interface SourceWindow {
  /** Whether this event may go ahead. */
  allowed: boolean;
  /** Events of this source refused since the last allowed one (reported with the next allowed one). */
  suppressed: number;
}

interface Entry {
  windowStart: number;
  count: number;
  suppressed: number;
}

export class SourceLimiter {
  private readonly entries = new Map<string, Entry>();

  /**
   * @param perWindow events a source may cause per window
   * @param windowMs window length
   * @param maxSources sources remembered; past that the oldest is forgotten (and may go ahead again)
   */
  constructor(
    private readonly perWindow: number,
    private readonly windowMs: number,
    private readonly maxSources = 1000,
  ) {}

  take(source: string, nowMs: number): SourceWindow {
    let entry = this.entries.get(source);
    if (!entry || nowMs - entry.windowStart >= this.windowMs) {
      const suppressed = entry?.suppressed ?? 0;
      entry = { windowStart: nowMs, count: 0, suppressed };
      this.entries.delete(source);
      this.entries.set(source, entry);
      if (this.entries.size > this.maxSources) this.entries.delete(this.entries.keys().next().value!);
    }
    if (entry.count >= this.perWindow) {
      entry.suppressed += 1;
      return { allowed: false, suppressed: entry.suppressed };
    }
    entry.count += 1;
    const suppressed = entry.suppressed;
    entry.suppressed = 0;
    return { allowed: true, suppressed };
  }
}
