// The Workpanel in SQL: live and past products with what operators reported finished,
// a product's details (stages, moves, finished-product records), and an operator's record of
// finished products (trackopz.operator_product_updates) on a machine of trackopz.machines.
// State changes (move to past, reactivate) go through the lifecycle store, not here.
import type { Pool } from 'pg';
import { FloorflowError } from '../core/errors';
import { type Queryable, withTransaction } from './db';
import { type ProductLifecycle, isProductId, productLifecycle, productTransitions } from './products';

/** The latest job of every product (its state), as in store/products. */
const LATEST_JOBS = `SELECT DISTINCT ON (j.product_id) j.product_id, j.id, j.state, j.created_at
  FROM trackopz.jobs j ORDER BY j.product_id, j.created_at DESC, j.id DESC`;

export interface WorkpanelProduct {
  id: string;
  name: string;
  description: string | null;
  job_id: string;
  state: 'ON' | 'OFF';
  /** When the product entered its state (its latest job's created_at). */
  since: string;
  /** Finished products operators reported for the product's current job. */
  finished: number;
  /** The reason of the move that made it past (past products only). */
  reason: string | null;
}

export interface WorkpanelMachine {
  id: string;
  name: string;
  status: string;
}

export interface FinishedRecord {
  id: string;
  product_id: string;
  product: string;
  job_id: string | null;
  machine_id: string | null;
  machine: string | null;
  operator_id: string | null;
  quantity: number | null;
  notes: string | null;
  created_at: string;
}

export interface WorkpanelBoard {
  live: WorkpanelProduct[];
  /** The most recently moved past products (at most `pastLimit`). */
  past: WorkpanelProduct[];
  pastTotal: number;
  machines: WorkpanelMachine[];
  /** The latest finished-product records, newest first. */
  updates: FinishedRecord[];
}

const UPDATE_COLUMNS = `u.id::text AS id, u.product_id::text AS product_id, p.name AS product, u.job_id::text AS job_id,
  u.machine_id, m.name AS machine, u.operator_id, u.quantity, u.notes, u.created_at`;

interface UpdateRow extends Omit<FinishedRecord, 'created_at'> {
  created_at: Date;
}

function updateView(r: UpdateRow): FinishedRecord {
  return { ...r, created_at: r.created_at.toISOString() };
}

export async function workpanelBoard(db: Queryable, pastLimit = 50): Promise<WorkpanelBoard> {
  const products = await db.query<{
    id: string;
    name: string;
    description: string | null;
    job_id: string;
    state: 'ON' | 'OFF';
    since: Date;
    finished: number;
    reason: string | null;
    past_rank: number;
  }>(
    `SELECT p.id::text AS id, p.name, p.description, l.id::text AS job_id, l.state, l.created_at AS since,
            COALESCE((SELECT sum(u.quantity) FROM trackopz.operator_product_updates u WHERE u.job_id = l.id), 0)::int AS finished,
            CASE WHEN l.state = 'OFF' THEN
              (SELECT t.reason FROM trackopz.product_transitions t WHERE t.job_id = l.id ORDER BY t.created_at DESC, t.id DESC LIMIT 1)
            END AS reason,
            (row_number() OVER (PARTITION BY l.state ORDER BY l.created_at DESC, l.id DESC))::int AS past_rank
     FROM (${LATEST_JOBS}) l JOIN trackopz.products p ON p.id = l.product_id
     ORDER BY l.state DESC, p.name, p.id`,
  );
  const view = (r: (typeof products.rows)[number]): WorkpanelProduct => ({
    id: r.id,
    name: r.name,
    description: r.description,
    job_id: r.job_id,
    state: r.state,
    since: r.since.toISOString(),
    finished: r.finished,
    reason: r.reason,
  });
  const past = products.rows.filter((r) => r.state === 'OFF');
  const machines = await db.query<WorkpanelMachine>(
    `SELECT id, COALESCE(name, id) AS name, status FROM trackopz.machines ORDER BY id`,
  );
  const updates = await db.query<UpdateRow>(
    `SELECT ${UPDATE_COLUMNS}
     FROM trackopz.operator_product_updates u JOIN trackopz.products p ON p.id = u.product_id
     LEFT JOIN trackopz.machines m ON m.id = u.machine_id
     ORDER BY u.created_at DESC, u.id DESC LIMIT 15`,
  );
  return {
    live: products.rows.filter((r) => r.state === 'ON').map(view),
    past: past
      .filter((r) => r.past_rank <= pastLimit)
      .sort((a, b) => a.past_rank - b.past_rank)
      .map(view),
    pastTotal: past.length,
    machines: machines.rows,
    updates: updates.rows.map(updateView),
  };
}

export interface ProductDetails {
  lifecycle: ProductLifecycle;
  transitions: NonNullable<Awaited<ReturnType<typeof productTransitions>>>['transitions'];
  updates: FinishedRecord[];
  finishedTotal: number;
}

/** What the Workpanel's product details show; undefined for an unknown product. */
export async function productDetails(db: Queryable, productId: string): Promise<ProductDetails | undefined> {
  const lifecycle = await productLifecycle(db, productId);
  if (!lifecycle) return undefined;
  const history = await productTransitions(db, productId);
  const updates = await db.query<UpdateRow>(
    `SELECT ${UPDATE_COLUMNS}
     FROM trackopz.operator_product_updates u JOIN trackopz.products p ON p.id = u.product_id
     LEFT JOIN trackopz.machines m ON m.id = u.machine_id
     WHERE u.product_id = $1 ORDER BY u.created_at DESC, u.id DESC LIMIT 50`,
    [productId],
  );
  const total = await db.query<{ total: number }>(
    `SELECT COALESCE(sum(quantity), 0)::int AS total FROM trackopz.operator_product_updates WHERE product_id = $1`,
    [productId],
  );
  return {
    lifecycle,
    transitions: (history?.transitions ?? []).slice(0, 50),
    updates: updates.rows.map(updateView),
    finishedTotal: total.rows[0].total,
  };
}

export interface FinishedInput {
  productId: string;
  machineId: string;
  quantity: number;
  notes?: string;
  /** Who reported it: the login (see core/access actorOf), never a name from the page. */
  operatorId: string;
  flowVersion?: string;
  now: Date;
}

/**
 * Records finished products of a live product, on its current job. The product's row is locked
 * for the check, so a record cannot slip in after a concurrent move to past: a past product is
 * refused (FF_CONFLICT: reactivate it first), as is a machine trackopz.machines does not know.
 */
export async function recordFinished(pool: Pool, input: FinishedInput): Promise<FinishedRecord> {
  if (!isProductId(input.productId))
    throw new FloorflowError('FF_NOT_FOUND', `product ${input.productId} not found`);
  return withTransaction(pool, async (c) => {
    // NO KEY UPDATE, as the lifecycle store takes it: a transition of this product waits for us.
    const product = await c.query<{ name: string }>(
      `SELECT name FROM trackopz.products WHERE id = $1 FOR NO KEY UPDATE`,
      [input.productId],
    );
    if (!product.rows[0]) throw new FloorflowError('FF_NOT_FOUND', `product ${input.productId} not found`);
    const latest = await c.query<{ id: string; state: string }>(
      `SELECT id::text AS id, state FROM trackopz.jobs WHERE product_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1`,
      [input.productId],
    );
    const job = latest.rows[0];
    if (!job || job.state !== 'ON') {
      throw new FloorflowError(
        'FF_CONFLICT',
        `${product.rows[0].name} is not live: reactivate it before recording finished products`,
      );
    }
    const machine = await c.query('SELECT 1 FROM trackopz.machines WHERE id = $1', [input.machineId]);
    if (machine.rows.length === 0)
      throw new FloorflowError('FF_NOT_FOUND', `machine ${input.machineId} is not known`);
    const inserted = await c.query<{ id: string }>(
      `INSERT INTO trackopz.operator_product_updates (product_id, job_id, machine_id, operator_id, quantity, notes, flow_version, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id::text AS id`,
      [
        input.productId,
        job.id,
        input.machineId,
        input.operatorId,
        input.quantity,
        input.notes ?? null,
        input.flowVersion ?? null,
        input.now,
      ],
    );
    const row = await c.query<UpdateRow>(
      `SELECT ${UPDATE_COLUMNS}
       FROM trackopz.operator_product_updates u JOIN trackopz.products p ON p.id = u.product_id
       LEFT JOIN trackopz.machines m ON m.id = u.machine_id WHERE u.id = $1`,
      [inserted.rows[0].id],
    );
    return updateView(row.rows[0]);
  });
}
