// The product reads over trackopz: dispatchable (live) products, a product's lifecycle and
// transition history, and the dashboard status. A product's state is its latest job's state
// (by created_at, then id); a product without jobs has none and is not dispatchable.
import type { Queryable } from './db';

export interface DispatchableProduct {
  productId: string;
  name: string;
  description: string | null;
  jobId: string;
  state: 'ON';
  /** When the product became live: the latest job's created_at. */
  since: string;
}

/** The latest job of every product, as a subquery. */
const LATEST_JOBS = `SELECT DISTINCT ON (j.product_id) j.product_id, j.id, j.state, j.created_at
  FROM trackopz.jobs j ORDER BY j.product_id, j.created_at DESC, j.id DESC`;

export async function dispatchableProducts(db: Queryable): Promise<DispatchableProduct[]> {
  const result = await db.query<{
    id: string;
    name: string;
    description: string | null;
    job_id: string;
    since: Date;
  }>(
    `SELECT p.id::text AS id, p.name, p.description, l.id::text AS job_id, l.created_at AS since
     FROM (${LATEST_JOBS}) l JOIN trackopz.products p ON p.id = l.product_id
     WHERE l.state = 'ON' ORDER BY p.name, p.id`,
  );
  return result.rows.map((r) => ({
    productId: r.id,
    name: r.name,
    description: r.description,
    jobId: r.job_id,
    state: 'ON',
    since: r.since.toISOString(),
  }));
}

export interface ProductTransitionRecord {
  id: string;
  jobId: string | null;
  fromState: string | null;
  toState: string;
  action: string;
  reason: string | null;
  actor: string | null;
  source: string | null;
  flowVersion: string | null;
  at: string;
}

export interface LifecycleStage {
  jobId: string;
  state: string;
  startedAt: string;
  /** When the next job replaced this one; null for the current stage. */
  endedAt: string | null;
}

export interface ProductLifecycle {
  productId: string;
  name: string;
  description: string | null;
  currentState: string | null;
  isDispatchable: boolean;
  currentJobId: string | null;
  createdAt: string;
  /** When the product last changed state (its latest job's created_at). */
  stateSince: string | null;
  timestamps: { createdAt: string; firstLiveAt: string | null; lastMovedToPastAt: string | null };
  stages: LifecycleStage[];
}

interface ProductRow {
  id: string;
  name: string;
  description: string | null;
  created_at: Date;
}

async function productRow(db: Queryable, productId: string): Promise<ProductRow | undefined> {
  const result = await db.query<ProductRow>(
    'SELECT id::text AS id, name, description, created_at FROM trackopz.products WHERE id = $1',
    [productId],
  );
  return result.rows[0];
}

/** Whether a product id has the shape of trackopz.products.id (bigint). */
export function isProductId(value: string): boolean {
  return /^[0-9]{1,18}$/.test(value);
}

/** The product's stages (one per job, oldest first), current state and timestamps; undefined if unknown. */
export async function productLifecycle(
  db: Queryable,
  productId: string,
): Promise<ProductLifecycle | undefined> {
  if (!isProductId(productId)) return undefined;
  const product = await productRow(db, productId);
  if (!product) return undefined;
  const jobs = await db.query<{ id: string; state: string; created_at: Date }>(
    `SELECT id::text AS id, state, created_at FROM trackopz.jobs WHERE product_id = $1 ORDER BY created_at, id`,
    [productId],
  );
  const stages: LifecycleStage[] = jobs.rows.map((job, i) => ({
    jobId: job.id,
    state: job.state,
    startedAt: job.created_at.toISOString(),
    endedAt: jobs.rows[i + 1]?.created_at.toISOString() ?? null,
  }));
  const current = stages.at(-1);
  const firstLive = stages.find((s) => s.state === 'ON');
  const lastPast = stages.filter((s) => s.state === 'OFF').at(-1);
  return {
    productId: product.id,
    name: product.name,
    description: product.description,
    currentState: current?.state ?? null,
    isDispatchable: current?.state === 'ON',
    currentJobId: current?.jobId ?? null,
    createdAt: product.created_at.toISOString(),
    stateSince: current?.startedAt ?? null,
    timestamps: {
      createdAt: product.created_at.toISOString(),
      firstLiveAt: firstLive?.startedAt ?? null,
      lastMovedToPastAt: lastPast?.startedAt ?? null,
    },
    stages,
  };
}

/** The product's transitions, newest first; undefined if the product is unknown. */
export async function productTransitions(
  db: Queryable,
  productId: string,
): Promise<{ productId: string; name: string; transitions: ProductTransitionRecord[] } | undefined> {
  if (!isProductId(productId)) return undefined;
  const product = await productRow(db, productId);
  if (!product) return undefined;
  const result = await db.query<{
    id: string;
    job_id: string | null;
    from_state: string | null;
    to_state: string;
    action: string;
    reason: string | null;
    actor: string | null;
    source: string | null;
    flow_version: string | null;
    created_at: Date;
  }>(
    `SELECT id::text AS id, job_id::text AS job_id, from_state, to_state, action, reason, actor, source,
            flow_version, created_at
     FROM trackopz.product_transitions WHERE product_id = $1 ORDER BY created_at DESC, id DESC`,
    [productId],
  );
  return {
    productId: product.id,
    name: product.name,
    transitions: result.rows.map((r) => ({
      id: r.id,
      jobId: r.job_id,
      fromState: r.from_state,
      toState: r.to_state,
      action: r.action,
      reason: r.reason,
      actor: r.actor,
      source: r.source,
      flowVersion: r.flow_version,
      at: r.created_at.toISOString(),
    })),
  };
}

/** Whether the job exists and belongs to the product (else the route answers "job not found"). */
export async function jobBelongsTo(db: Queryable, productId: string, jobId: string): Promise<boolean> {
  if (!isProductId(productId) || !isProductId(jobId)) return false;
  const result = await db.query('SELECT 1 FROM trackopz.jobs WHERE id = $1 AND product_id = $2', [
    jobId,
    productId,
  ]);
  return (result.rowCount ?? 0) > 0;
}

export interface MachineStatus {
  machineId: string;
  kind: string;
  online: boolean;
  /** The state of the machine's last retained status message (online, idle, busy, error, offline). */
  state: string;
  lastStatusAt: string | null;
  lastSeenAt: string | null;
}

export interface DashboardStatus {
  products: { live: number; past: number; withoutState: number; total: number };
  machines: MachineStatus[];
  machineSummary: { total: number; online: number; offline: number; byState: Record<string, number> };
  statistics: {
    /** Since `since` (the last 24 hours of the caller's clock). */
    since: string;
    transitions: number;
    movedToPast: number;
    reactivated: number;
    finishedQuantity: number;
    lastTransitionAt: string | null;
  };
}

export async function dashboardStatus(db: Queryable, now: Date): Promise<DashboardStatus> {
  const since = new Date(now.getTime() - 24 * 3600 * 1000);
  const counts = await db.query<{ live: number; past: number; without_state: number; total: number }>(
    `SELECT count(*) FILTER (WHERE l.state = 'ON')::int AS live,
            count(*) FILTER (WHERE l.state = 'OFF')::int AS past,
            count(*) FILTER (WHERE l.state IS NULL)::int AS without_state,
            count(*)::int AS total
     FROM trackopz.products p LEFT JOIN (${LATEST_JOBS}) l ON l.product_id = p.id`,
  );
  // Machine presence and status are kept by the broker in floorflow.machines; a machine that
  // is not connected is offline whatever its last status said.
  const machines = await db.query<{
    machine_id: string;
    kind: string;
    online: boolean;
    state: string | null;
    last_status_at: Date | null;
    last_seen_at: Date | null;
  }>(
    `SELECT machine_id, kind, online, last_status->>'state' AS state, last_status_at, last_seen_at
     FROM floorflow.machines ORDER BY machine_id`,
  );
  const stats = await db.query<{
    transitions: number;
    moved_to_past: number;
    reactivated: number;
    last_at: Date | null;
  }>(
    `SELECT count(*) FILTER (WHERE created_at > $1)::int AS transitions,
            count(*) FILTER (WHERE created_at > $1 AND action = 'move_to_past')::int AS moved_to_past,
            count(*) FILTER (WHERE created_at > $1 AND action = 'reactivate')::int AS reactivated,
            max(created_at) AS last_at
     FROM trackopz.product_transitions`,
    [since],
  );
  const finished = await db.query<{ quantity: number }>(
    `SELECT COALESCE(sum(quantity), 0)::int AS quantity FROM trackopz.operator_product_updates WHERE created_at > $1`,
    [since],
  );
  const machineStatuses: MachineStatus[] = machines.rows.map((m) => ({
    machineId: m.machine_id,
    kind: m.kind,
    online: m.online,
    state: m.online ? (m.state ?? 'online') : 'offline',
    lastStatusAt: m.last_status_at?.toISOString() ?? null,
    lastSeenAt: m.last_seen_at?.toISOString() ?? null,
  }));
  const byState: Record<string, number> = {};
  for (const m of machineStatuses) byState[m.state] = (byState[m.state] ?? 0) + 1;
  const c = counts.rows[0];
  const s = stats.rows[0];
  return {
    products: { live: c.live, past: c.past, withoutState: c.without_state, total: c.total },
    machines: machineStatuses,
    machineSummary: {
      total: machineStatuses.length,
      online: machineStatuses.filter((m) => m.online).length,
      offline: machineStatuses.filter((m) => !m.online).length,
      byState,
    },
    statistics: {
      since: since.toISOString(),
      transitions: s.transitions,
      movedToPast: s.moved_to_past,
      reactivated: s.reactivated,
      finishedQuantity: finished.rows[0].quantity,
      lastTransitionAt: s.last_at?.toISOString() ?? null,
    },
  };
}
