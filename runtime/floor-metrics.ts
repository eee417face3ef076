// The floor's gauges on /metrics. They reflect the database, not this process's memory, so
// each scrape computes them from store/dashboards (one read shared by every metric of the
// scrape and cached for a few seconds): they are right at once after a restart and agree
// between two runtimes on one database.
import type { Pool } from 'pg';
import { Gauge, Histogram } from 'prom-client';
import { FloorMetrics, METRIC_DOMAINS, floorMetrics } from '../store/dashboards';
import { passRate } from '../core/alerts';
import { registry } from './metrics';
import type { Clock } from '../nodes/common/services';

export interface FloorMetricsSource {
  pool: Pool;
  clock: Clock;
  /** How long one database read serves scrapes (default 5000 ms). */
  cacheMs?: number;
  /** Window of the QA pass rate (default 24 h, as the alert rule). */
  qaWindowHours?: number;
}

/** Completion times from a minute to a working day. */
const COMPLETION_BUCKETS = [60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400];

let source: FloorMetricsSource | undefined;
let cached: { at: number; reading: Promise<FloorMetrics> } | undefined;

async function reading(): Promise<FloorMetrics | undefined> {
  if (!source) return undefined;
  const now = source.clock.now();
  if (!cached || now.getTime() - cached.at >= (source.cacheMs ?? 5000) || now.getTime() < cached.at) {
    const pending = floorMetrics(source.pool, now, source.qaWindowHours ?? 24);
    cached = { at: now.getTime(), reading: pending };
    // A failed read is not cached: the next scrape tries again.
    pending.catch(() => {
      if (cached?.reading === pending) cached = undefined;
    });
  }
  try {
    return await cached.reading;
  } catch {
    return undefined;
  }
}

type Setter = (metric: Gauge<string>, r: FloorMetrics) => void;

function dbGauge(name: string, help: string, labelNames: string[], set: Setter): void {
  if (registry.getSingleMetric(name)) return;
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      const r = await reading();
      // Without a reading (no database yet, or it is down) the gauge reports nothing rather than stale numbers.
      this.reset();
      if (r) set(this, r);
    },
  });
}

function perDomain(pick: (d: FloorMetrics['byDomain'][(typeof METRIC_DOMAINS)[number]]) => number): Setter {
  return (metric, r) => {
    for (const domain of METRIC_DOMAINS) metric.set({ domain }, pick(r.byDomain[domain]));
  };
}

/** Registers the gauges (once per process) and points them at this database and clock. */
export function registerFloorMetrics(next: FloorMetricsSource): void {
  source = next;
  cached = undefined;
  dbGauge(
    'floorflow_jobs_in_queue',
    'Jobs waiting to be worked, per domain',
    ['domain'],
    perDomain((d) => d.queued),
  );
  dbGauge(
    'floorflow_jobs_processing',
    'Jobs being worked (at a machine or in a stage), per domain',
    ['domain'],
    perDomain((d) => d.processing),
  );
  dbGauge(
    'floorflow_jobs_completed_today',
    'Jobs completed since 00:00 UTC, per domain',
    ['domain'],
    perDomain((d) => d.completedToday),
  );
  dbGauge(
    'floorflow_job_retries_waiting',
    'Jobs that failed an attempt and wait to be tried again, per domain (domain "flows": retry-backoff nodes)',
    ['domain'],
    (metric, r) => {
      perDomain((d) => d.retrying)(metric, r);
      metric.set({ domain: 'flows' }, r.pendingRetries);
    },
  );
  dbGauge(
    'floorflow_dead_letters',
    'Jobs that gave up after their retries (embossing failed, processing failed, engraving escalated), per domain',
    ['domain'],
    perDomain((d) => d.deadLetters),
  );
  dbGauge(
    'floorflow_qa_pass_rate',
    'Percent of engraving QA results passed over the last 24 h (NaN without results)',
    [],
    (metric, r) => metric.set(passRate(r.qa) ?? Number.NaN),
  );
  dbGauge(
    'floorflow_qa_results',
    'Engraving QA results over the last 24 h, by result',
    ['result'],
    (metric, r) => {
      metric.set({ result: 'passed' }, r.qa.passed);
      metric.set({ result: 'failed' }, r.qa.total - r.qa.passed);
    },
  );
  dbGauge(
    'floorflow_poller_lag',
    'Job-status source records not processed yet: newest marker minus processed marker',
    ['source'],
    (metric, r) => {
      for (const p of r.pollers) metric.set({ source: p.source }, p.lag);
    },
  );
  dbGauge('floorflow_machines_online', 'Registered machines connected now', [], (metric, r) =>
    metric.set(r.machines.online),
  );
  dbGauge('floorflow_machines_registered', 'Registered machines', [], (metric, r) =>
    metric.set(r.machines.registered),
  );
  dbGauge('floorflow_alerts_open', 'Alerts open now, per rule', ['rule'], (metric, r) => {
    for (const a of r.alertsOpen) metric.set({ rule: a.rule }, a.count);
  });
  if (!registry.getSingleMetric('floorflow_job_completion_seconds')) {
    new Histogram({
      name: 'floorflow_job_completion_seconds',
      help: 'Seconds from created to completed of the jobs completed since 00:00 UTC, per domain',
      labelNames: ['domain'],
      buckets: COMPLETION_BUCKETS,
      registers: [registry],
      async collect() {
        const r = await reading();
        this.reset();
        if (r) for (const c of r.completionSeconds) this.observe({ domain: c.domain }, c.seconds);
      },
    });
  }
}

/** Stops reading the database (the runtime's pool is closing). */
export function unregisterFloorMetricsSource(): void {
  source = undefined;
  cached = undefined;
}
