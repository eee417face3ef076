// The product API's monitoring figures: response times of the API routes over a recent window, as
// percentiles per route. Pure: the caller passes the times (a monotonic clock in the runtime,
// a counter in tests), and memory is bounded per route and in the number of routes.

export interface RouteTimes {
  /** "<METHOD> <route template>", e.g. "GET /api/products/lifecycle". */
  route: string;
  count: number;
  /** Answers with status 500 or above. */
  errors: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

/** The value at or below which `p` percent of the sorted values lie (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

interface Sample {
  atMs: number;
  ms: number;
  status: number;
}

export interface ResponseWindowOptions {
  /** How far back the figures reach. */
  windowMs: number;
  /** Most samples kept per route (the oldest go first): a burst cannot grow memory. */
  maxSamplesPerRoute: number;
  /** Most routes tracked; the route labels are templates, so a plant has a few dozen. */
  maxRoutes: number;
}

export const DEFAULT_RESPONSE_WINDOW: ResponseWindowOptions = {
  windowMs: 5 * 60 * 1000,
  maxSamplesPerRoute: 2000,
  maxRoutes: 200,
};

export class ResponseWindow {
  private readonly routes = new Map<string, Sample[]>();

  constructor(readonly options: ResponseWindowOptions = DEFAULT_RESPONSE_WINDOW) {}

  record(route: string, ms: number, status: number, atMs: number): void {
    let samples = this.routes.get(route);
    if (!samples) {
      if (this.routes.size >= this.options.maxRoutes) return;
      samples = [];
      this.routes.set(route, samples);
    }
    samples.push({ atMs, ms, status });
    if (samples.length > this.options.maxSamplesPerRoute)
      samples.splice(0, samples.length - this.options.maxSamplesPerRoute);
  }

  /** Per route answered within the window ending at `nowMs`, busiest first; drops what is older. */
  summary(nowMs: number): RouteTimes[] {
    const since = nowMs - this.options.windowMs;
    const out: RouteTimes[] = [];
    for (const [route, samples] of this.routes) {
      const first = samples.findIndex((s) => s.atMs > since);
      if (first < 0) {
        this.routes.delete(route);
        continue;
      }
      if (first > 0) samples.splice(0, first);
      const times = samples.map((s) => s.ms).sort((a, b) => a - b);
      const round = (v: number) => Math.round(v * 10) / 10;
      out.push({
        route,
        count: samples.length,
        errors: samples.filter((s) => s.status >= 500).length,
        p50Ms: round(percentile(times, 50)),
        p95Ms: round(percentile(times, 95)),
        maxMs: round(times[times.length - 1]),
      });
    }
    return out.sort((a, b) => b.count - a.count || a.route.localeCompare(b.route));
  }
}
