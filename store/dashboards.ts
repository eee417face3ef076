// What the floor displays show, read from PostgreSQL each time a page opens or changes (the
// dashboards keep nothing in memory that a restart could lose), and the numbers behind the
// /metrics gauges. Reads only: every change goes through its domain's store module. Where a
// domain module already has the read (embossing jobs, selectable plates, poller status, queue
// counts) it is used; the rest is here. Times leave as ISO strings: the boards travel to the
// browser as JSON.
import type { Pool } from 'pg';
import { passRate } from '../core/alerts';
import { recentScanNotices, type ScanNotice } from './scan-notices';
import type { Queryable } from './db';
import { listJobs, selectablePlates } from './embossing';
import { sourceStatus } from './job-status';
import { queueCounts } from './processing';
import { dispatchableProducts } from './products';
import { statusCounts } from './engraving';
import { openAlerts } from './alerts';

export const DASHBOARD_PAGES = [
  'machines',
  'embossing',
  'job-status',
  'dispatch',
  'processing',
  'workpanel',
  'qa',
] as const;
export type DashboardPage = (typeof DASHBOARD_PAGES)[number];

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

export interface OpenAlertView {
  key: string;
  rule: string;
  severity: string;
  message: string;
  began_at: string;
}

// ---------------------------------------------------------------------------------------
// Machines
// ---------------------------------------------------------------------------------------

export interface MachineView {
  machine_id: string;
  kind: string;
  online: boolean;
  online_since: string | null;
  last_seen_at: string | null;
  /** The retained status's state ("idle", "busy", ...), "offline" when not connected. */
  state: string;
  /** The last status message as the machine sent it. */
  last_status: Record<string, unknown> | null;
  last_status_at: string | null;
  /** Set when the machine is offline: its values are only as fresh as this. */
  stale_since: string | null;
}

export async function machinesBoard(db: Queryable): Promise<{ machines: MachineView[] }> {
  const result = await db.query<{
    machine_id: string;
    kind: string;
    online: boolean;
    online_since: Date | null;
    last_seen_at: Date | null;
    last_status: Record<string, unknown> | null;
    last_status_at: Date | null;
    created_at: Date;
  }>(
    `SELECT machine_id, kind, online, online_since, last_seen_at, last_status, last_status_at, created_at
     FROM floorflow.machines ORDER BY online, machine_id`,
  );
  return {
    machines: result.rows.map((m) => {
      const reported = typeof m.last_status?.state === 'string' ? m.last_status.state : null;
      return {
        machine_id: m.machine_id,
        kind: m.kind,
        online: m.online,
        online_since: iso(m.online_since),
        last_seen_at: iso(m.last_seen_at),
        state: m.online ? (reported ?? 'online') : 'offline',
        last_status: m.last_status,
        last_status_at: iso(m.last_status_at),
        stale_since: m.online ? null : iso(m.last_seen_at ?? m.last_status_at ?? m.created_at),
      };
    }),
  };
}

// ---------------------------------------------------------------------------------------
// Embossing
// ---------------------------------------------------------------------------------------

export interface EmbossingBoard {
  jobs: Array<{
    id: string;
    plates: string;
    batch_codes: string;
    created_at: string;
    machine_id: string;
    status: string;
    attempts: number;
    last_error: string | null;
  }>;
  plates: Array<{ id: string; plate_number: string; batch_code: string | null; status: string }>;
  embossers: Array<{ machine_id: string; online: boolean }>;
}

export async function embossingBoard(db: Queryable): Promise<EmbossingBoard> {
  const jobs = await listJobs(db, { limit: 100 });
  const plates = await selectablePlates(db);
  const embossers = await db.query<{ machine_id: string; online: boolean }>(
    `SELECT machine_id, online FROM floorflow.machines WHERE kind = 'embosser' ORDER BY machine_id`,
  );
  const distinct = (values: Array<string | null>) => [...new Set(values.filter((v): v is string => !!v))];
  return {
    jobs: jobs.map((j) => ({
      id: j.id,
      plates: j.plates.map((p) => p.plate_number).join(', '),
      batch_codes: distinct(j.plates.map((p) => p.batch_code)).join(', '),
      created_at: j.created_at.toISOString(),
      machine_id: j.machine_id,
      status: j.status,
      attempts: j.attempts,
      last_error: j.last_error,
    })),
    plates: plates.map((p) => ({
      id: p.id,
      plate_number: p.plate_number,
      batch_code: p.batch_code,
      status: p.status,
    })),
    embossers: embossers.rows,
  };
}

// ---------------------------------------------------------------------------------------
// Job status
// ---------------------------------------------------------------------------------------

export const JOB_OPERATIONS = ['print', 'coating', 'kiss_cut', 'backscore', 'slitter'] as const;
export type OperationCell = 'completed' | 'partial' | 'aborted' | null;

export interface JobStatusBoard {
  operations: readonly string[];
  jobs: Array<{
    job_id: string;
    version_tag: string | null;
    updated_at: string;
    cells: Record<string, OperationCell>;
  }>;
  updates: Array<{
    update_id: string;
    job_id: string;
    operation_type: string;
    status: string;
    source_type: string;
    source_id: string | null;
    flow_version: string | null;
    notes: string | null;
    created_at: string;
  }>;
  pollers: Array<{
    source: string;
    last_marker: number;
    max_marker: number;
    lag: number;
    last_processed_at: string | null;
  }>;
  /** The latest scans that changed no job: rejected, skipped or ignored as sent twice, with the reason. */
  scan_notices: ScanNotice[];
}

export async function jobStatusBoard(pool: Pool, limit = 30): Promise<JobStatusBoard> {
  const jobs = await pool.query<{
    job_id: string;
    version_tag: string | null;
    updated_at: Date;
    operations: Record<string, unknown>;
    latest: Record<string, string> | null;
  }>(
    `SELECT j.job_id, j.version_tag, j.updated_at, j.operations,
            (SELECT jsonb_object_agg(operation_type, status) FROM (
               SELECT DISTINCT ON (operation_type) operation_type, status
               FROM jobmanager.job_status_updates u WHERE u.job_id = j.job_id
               ORDER BY operation_type, update_id DESC) last) AS latest
     FROM jobmanager.jobs j ORDER BY j.updated_at DESC, j.job_id LIMIT $1`,
    [limit],
  );
  const updates = await pool.query<{
    update_id: string;
    job_id: string;
    operation_type: string;
    status: string;
    source_type: string;
    source_id: string | null;
    flow_version: string | null;
    notes: string | null;
    created_at: Date;
  }>(
    `SELECT update_id::text AS update_id, job_id, operation_type, status, source_type, source_id::text AS source_id,
            flow_version, notes, created_at
     FROM jobmanager.job_status_updates ORDER BY update_id DESC LIMIT 15`,
  );
  const markers = await pool.query<{ marker_type: string; last_processed_at: Date | null }>(
    `SELECT marker_type, last_processed_at FROM jobmanager.processing_markers`,
  );
  const processedAt = new Map(markers.rows.map((m) => [m.marker_type, m.last_processed_at]));
  const pollers = [];
  for (const [source, markerType] of [
    ['print_os', 'print_os'],
    ['scanner', 'scanned_codes'],
  ] as const) {
    const status = await sourceStatus(pool, source);
    pollers.push({ ...status, last_processed_at: iso(processedAt.get(markerType)) });
  }
  return {
    operations: JOB_OPERATIONS,
    jobs: jobs.rows.map((j) => {
      const cells: Record<string, OperationCell> = {};
      for (const op of JOB_OPERATIONS) {
        const latest = j.latest?.[op];
        cells[op] =
          latest === 'completed' || latest === 'partial' || latest === 'aborted'
            ? latest
            : j.operations[op] === true
              ? 'completed'
              : null;
      }
      return { job_id: j.job_id, version_tag: j.version_tag, updated_at: j.updated_at.toISOString(), cells };
    }),
    updates: updates.rows.map((u) => ({ ...u, created_at: u.created_at.toISOString() })),
    pollers,
    scan_notices: await recentScanNotices(pool, 10),
  };
}

// ---------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------

export interface DispatchBoard {
  live: Array<{ id: string; name: string; job_id: string; since: string }>;
  transitions: Array<{
    product_id: string;
    name: string;
    from_state: string | null;
    to_state: string;
    action: string;
    reason: string | null;
    source: string | null;
    created_at: string;
  }>;
}

export async function dispatchBoard(db: Queryable): Promise<DispatchBoard> {
  const live = await dispatchableProducts(db);
  const transitions = await db.query<{
    product_id: string;
    name: string;
    from_state: string | null;
    to_state: string;
    action: string;
    reason: string | null;
    source: string | null;
    created_at: Date;
  }>(
    `SELECT t.product_id::text AS product_id, p.name, t.from_state, t.to_state, t.action, t.reason, t.source, t.created_at
     FROM trackopz.product_transitions t JOIN trackopz.products p ON p.id = t.product_id
     ORDER BY t.created_at DESC, t.id DESC LIMIT 10`,
  );
  return {
    live: live.map((p) => ({ id: p.productId, name: p.name, job_id: p.jobId, since: p.since })),
    transitions: transitions.rows.map((t) => ({ ...t, created_at: t.created_at.toISOString() })),
  };
}

// ---------------------------------------------------------------------------------------
// Processing and engraving
// ---------------------------------------------------------------------------------------

export interface ProcessingBoard {
  processingCounts: Record<string, number>;
  engravingCounts: Record<string, number>;
  active: Array<{
    id: string;
    order_number: string;
    stage: string | null;
    progress: number;
    attempts: number;
  }>;
  failures: Array<{
    domain: string;
    id: string;
    label: string;
    status: string;
    reason: string | null;
    at: string;
  }>;
  designs: Array<{
    job_id: string;
    customer_id: string;
    item: string;
    text: string[];
    preview_url: string | null;
    created_at: string;
  }>;
  qa: { total: number; passed: number; rate: number | null; window_hours: number };
}

export async function processingBoard(pool: Pool, now: Date, qaWindowHours = 24): Promise<ProcessingBoard> {
  const processing = await queueCounts(pool);
  const engraving = await statusCounts(pool);
  const active = await pool.query<{
    id: string;
    order_number: string;
    stage: string | null;
    progress: number;
    attempts: number;
  }>(
    `SELECT j.id::text AS id, o.order_number, j.stage, j.progress, j.attempts
     FROM processing.processing_jobs j JOIN processing.orders o ON o.id = j.order_id
     WHERE j.status = 'processing' ORDER BY j.started_at NULLS LAST, j.id LIMIT 20`,
  );
  const failures = await pool.query<{
    domain: string;
    id: string;
    label: string;
    status: string;
    reason: string | null;
    at: Date;
  }>(
    `(SELECT 'processing' AS domain, j.id::text AS id, o.order_number AS label, j.status, j.fail_reason AS reason, j.updated_at AS at
      FROM processing.processing_jobs j JOIN processing.orders o ON o.id = j.order_id
      WHERE j.status IN ('failed', 'retry'))
     UNION ALL
     (SELECT 'engraving', id::text, customer_id || ' / ' || item_id, status,
             COALESCE(attention_reason, block_reason, escalation_reason, 'escalated after QA'), updated_at
      FROM engraving.engraving_jobs WHERE status IN ('blocked', 'escalated', 'needs_attention'))
     ORDER BY at DESC LIMIT 10`,
  );
  const designs = await pool.query<{
    job_id: string;
    customer_id: string;
    item: string;
    text: string[];
    preview_url: string | null;
    created_at: Date;
  }>(
    `SELECT j.id::text AS job_id, j.customer_id, i.name AS item, j.text, d.preview_url, d.created_at
     FROM engraving.designs d JOIN engraving.engraving_jobs j ON j.id = d.job_id JOIN engraving.items i ON i.id = j.item_id
     WHERE d.status = 'pending_approval' AND j.status = 'pending_approval' ORDER BY d.created_at, d.id LIMIT 20`,
  );
  const qa = await qaResults(pool, now, qaWindowHours);
  return {
    processingCounts: Object.fromEntries(processing.byStatus.map((s) => [s.status, s.count])),
    engravingCounts: engraving,
    active: active.rows,
    failures: failures.rows.map((f) => ({ ...f, at: f.at.toISOString() })),
    designs: designs.rows.map((d) => ({ ...d, created_at: d.created_at.toISOString() })),
    qa: { ...qa, rate: passRate(qa), window_hours: qaWindowHours },
  };
}

async function qaResults(
  pool: Pool,
  now: Date,
  windowHours: number,
): Promise<{ total: number; passed: number }> {
  const result = await pool.query<{ total: number; passed: number }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE passed)::int AS passed
     FROM engraving.qa_results WHERE created_at > $1`,
    [new Date(now.getTime() - windowHours * 3600000)],
  );
  return result.rows[0];
}

// ---------------------------------------------------------------------------------------
// Every page: the alerts open now
// ---------------------------------------------------------------------------------------

export async function openAlertViews(db: Queryable): Promise<OpenAlertView[]> {
  return (await openAlerts(db)).map((a) => ({
    key: a.alert_key,
    rule: a.rule,
    severity: a.severity,
    message: a.message,
    began_at: a.began_at.toISOString(),
  }));
}

// ---------------------------------------------------------------------------------------
// Metrics (engraving's monitoring figures)
// ---------------------------------------------------------------------------------------

export const METRIC_DOMAINS = ['embossing', 'processing', 'engraving'] as const;
export type MetricDomain = (typeof METRIC_DOMAINS)[number];

export interface FloorMetrics {
  byDomain: Record<
    MetricDomain,
    { queued: number; processing: number; completedToday: number; retrying: number; deadLetters: number }
  >;
  /** Seconds from created to completed of each job completed today, per domain. */
  completionSeconds: Array<{ domain: MetricDomain; seconds: number }>;
  /** Retries the floorflow-retry-backoff nodes hold. */
  pendingRetries: number;
  qa: { total: number; passed: number };
  pollers: Array<{ source: string; lag: number }>;
  machines: { registered: number; online: number };
  alertsOpen: Array<{ rule: string; count: number }>;
}

/** "Today" is the UTC day of `now`, as in the engraving store's metrics. */
export async function floorMetrics(pool: Pool, now: Date, qaWindowHours = 24): Promise<FloorMetrics> {
  const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const counts = await pool.query<{
    domain: MetricDomain;
    queued: number;
    processing: number;
    completed_today: number;
    retrying: number;
    dead_letters: number;
  }>(
    `SELECT 'embossing' AS domain,
            count(*) FILTER (WHERE status = 'queued')::int AS queued,
            count(*) FILTER (WHERE status IN ('sent', 'accepted', 'in_progress'))::int AS processing,
            count(*) FILTER (WHERE status = 'completed' AND completed_at >= $1)::int AS completed_today,
            count(*) FILTER (WHERE status = 'queued' AND attempts > 0)::int AS retrying,
            count(*) FILTER (WHERE status = 'failed')::int AS dead_letters
     FROM embossing.embossing_jobs
     UNION ALL
     SELECT 'processing',
            count(*) FILTER (WHERE status IN ('pending', 'retry'))::int,
            count(*) FILTER (WHERE status = 'processing')::int,
            count(*) FILTER (WHERE status = 'completed' AND completed_at >= $1)::int,
            count(*) FILTER (WHERE status = 'retry')::int,
            count(*) FILTER (WHERE status = 'failed')::int
     FROM processing.processing_jobs
     UNION ALL
     SELECT 'engraving',
            count(*) FILTER (WHERE status = 'queued')::int,
            count(*) FILTER (WHERE status IN ('designing', 'pending_approval', 'engraving', 'qa'))::int,
            count(*) FILTER (WHERE status = 'complete' AND completed_at >= $1)::int,
            count(*) FILTER (WHERE status IN ('queued', 'engraving') AND qa_attempts > 0)::int,
            count(*) FILTER (WHERE status IN ('escalated', 'needs_attention'))::int
     FROM engraving.engraving_jobs`,
    [dayStart],
  );
  const durations = await pool.query<{ domain: MetricDomain; seconds: number }>(
    `SELECT 'embossing' AS domain, extract(epoch FROM completed_at - created_at)::float8 AS seconds
     FROM embossing.embossing_jobs WHERE status = 'completed' AND completed_at >= $1
     UNION ALL
     SELECT 'processing', extract(epoch FROM completed_at - created_at)::float8
     FROM processing.processing_jobs WHERE status = 'completed' AND completed_at >= $1
     UNION ALL
     SELECT 'engraving', extract(epoch FROM completed_at - created_at)::float8
     FROM engraving.engraving_jobs WHERE status = 'complete' AND completed_at >= $1`,
    [dayStart],
  );
  const rest = await pool.query<{ pending_retries: number; registered: number; online: number }>(
    `SELECT (SELECT count(*)::int FROM floorflow.pending_retries) AS pending_retries,
            (SELECT count(*)::int FROM floorflow.machines) AS registered,
            (SELECT count(*) FILTER (WHERE online)::int FROM floorflow.machines) AS online`,
  );
  const alerts = await pool.query<{ rule: string; count: number }>(
    `SELECT rule, count(*)::int AS count FROM floorflow.alerts WHERE ended_at IS NULL GROUP BY rule ORDER BY rule`,
  );
  const byDomain = {} as FloorMetrics['byDomain'];
  for (const r of counts.rows) {
    byDomain[r.domain] = {
      queued: r.queued,
      processing: r.processing,
      completedToday: r.completed_today,
      retrying: r.retrying,
      deadLetters: r.dead_letters,
    };
  }
  const pollers = [];
  for (const source of ['print_os', 'scanner'] as const) {
    const status = await sourceStatus(pool, source);
    pollers.push({ source, lag: status.lag });
  }
  return {
    byDomain,
    completionSeconds: durations.rows.map((d) => ({ domain: d.domain, seconds: Math.max(0, d.seconds) })),
    pendingRetries: rest.rows[0].pending_retries,
    qa: await qaResults(pool, now, qaWindowHours),
    pollers,
    machines: { registered: rest.rows[0].registered, online: rest.rows[0].online },
    alertsOpen: alerts.rows,
  };
}
