// Writes imported plant data, one transaction per row, matched on each kind's natural key: a
// row already there as written changes nothing, an edited row updates its record, a row the
// database cannot take is reported with its field and reason while the other rows go in.
import type { Pool, PoolClient } from 'pg';
import {
  type EngravingItemRecord,
  type ImportKind,
  type ImportRecords,
  type ImportRow,
  type ImportRowError,
  type JobRecord,
  type OrderRecord,
  type PlateRecord,
  type ProductRecord,
} from '../core/import';
import { shippedModel } from '../core/lifecycle-models';
import { FloorflowError } from '../core/errors';
import { readState, transition } from './lifecycle';
import { withTransaction } from './db';

export type RowOutcome = 'created' | 'updated' | 'unchanged';

export interface ImportContext {
  /** Who imports (audit rows of product states), e.g. `user:erik` or `token:api`. */
  actor: string;
  /** The caller's clock. */
  at: Date;
}

export interface ImportReport {
  kind: ImportKind;
  /** Rows in the file, good and bad. */
  total: number;
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
  errors: ImportRowError[];
}

/** A row the database refuses for a reason the importer can name; its transaction rolls back. */
class RowRejected extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(reason);
  }
}

type Importer<K extends ImportKind> = (
  client: PoolClient,
  record: ImportRecords[K],
  ctx: ImportContext,
) => Promise<RowOutcome>;

async function importPlate(client: PoolClient, plate: PlateRecord, ctx: ImportContext): Promise<RowOutcome> {
  const key = JSON.stringify([plate.batch_code, plate.plate_number, plate.position]);
  const found = await client.query<{ id: string; status: string; job_id: string | null }>(
    `SELECT p.id::text AS id, p.status,
            (SELECT h.job_id::text FROM embossing.embossing_job_plates h
              WHERE h.plate_id = p.id AND h.released_at IS NULL LIMIT 1) AS job_id
       FROM embossing.plates p WHERE p.import_key = $1 FOR UPDATE`,
    [key],
  );
  if (found.rows.length === 0) {
    await client.query(
      `INSERT INTO embossing.plates (plate_number, batch_code, plate_position, status, unavailable_reason,
                                     import_key, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
      [
        plate.plate_number,
        plate.batch_code,
        plate.position,
        plate.status ?? 'in_production',
        plate.unavailable_reason ?? null,
        key,
        ctx.at,
      ],
    );
    return 'created';
  }
  const current = found.rows[0];
  // A plate an embossing job holds is the job's: its status changes with the job's events.
  if (plate.status !== undefined && plate.status !== current.status && current.job_id !== null)
    throw new RowRejected(
      'status',
      `plate is held by embossing job ${current.job_id}; its status changes with that job`,
    );
  const updated = await client.query(
    `UPDATE embossing.plates
        SET status = COALESCE($2, status),
            unavailable_reason = CASE WHEN $3 THEN $4 ELSE unavailable_reason END,
            updated_at = $5
      WHERE id = $1
        AND (status IS DISTINCT FROM COALESCE($2, status)
             OR ($3 AND unavailable_reason IS DISTINCT FROM $4))`,
    [
      current.id,
      plate.status ?? null,
      plate.unavailable_reason !== undefined,
      plate.unavailable_reason ?? null,
      ctx.at,
    ],
  );
  return updated.rowCount ? 'updated' : 'unchanged';
}

const PRODUCT_MODEL = shippedModel('trackopz-product')!;

async function importProduct(
  client: PoolClient,
  product: ProductRecord,
  ctx: ImportContext,
): Promise<RowOutcome> {
  const found = await client.query<{ id: string }>(
    `SELECT id::text AS id FROM trackopz.products WHERE product_code = $1 FOR UPDATE`,
    [product.product_code],
  );
  let outcome: RowOutcome = 'unchanged';
  let id: string;
  if (found.rows.length === 0) {
    const created = await client.query<{ id: string }>(
      `INSERT INTO trackopz.products (product_code, name, description, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $4) RETURNING id::text AS id`,
      [product.product_code, product.name, product.description ?? null, ctx.at],
    );
    id = created.rows[0].id;
    outcome = 'created';
  } else {
    id = found.rows[0].id;
    const updated = await client.query(
      `UPDATE trackopz.products
          SET name = $2, description = CASE WHEN $3 THEN $4 ELSE description END, updated_at = $5
        WHERE id = $1 AND (name IS DISTINCT FROM $2 OR ($3 AND description IS DISTINCT FROM $4))`,
      [id, product.name, product.description !== undefined, product.description ?? null, ctx.at],
    );
    if (updated.rowCount) outcome = 'updated';
  }
  // The state is the product's latest job: a new product gets its first (live unless the
  // file says past); an existing one changes only when the file names another state.
  const reading = await readState(client, PRODUCT_MODEL, id);
  const current = reading.found ? reading.state : null;
  const wanted = product.state ?? (current === null ? 'ON' : current);
  if (wanted !== current) {
    // The lifecycle relay announces the change once this row's transaction commits.
    try {
      await transition(client, PRODUCT_MODEL, {
        entityId: id,
        action: 'update_state',
        targetState: wanted,
        reason: 'import',
        actor: ctx.actor,
        source: 'import',
        at: ctx.at,
      });
    } catch (err) {
      if (err instanceof FloorflowError) throw new RowRejected('state', err.message);
      throw err;
    }
    if (outcome === 'unchanged') outcome = 'updated';
  }
  return outcome;
}

async function importEngravingItem(
  client: PoolClient,
  item: EngravingItemRecord,
  ctx: ImportContext,
): Promise<RowOutcome> {
  const area = item.engraving_area === undefined ? null : JSON.stringify(item.engraving_area);
  const inserted = await client.query(
    `INSERT INTO engraving.items (id, name, stock_available, max_lines, engraving_area, created_at, updated_at)
     VALUES ($1, $2, $3, $4, COALESCE($5::jsonb, '{}'::jsonb), $6, $6)
     ON CONFLICT (id) DO NOTHING`,
    [item.id, item.name, item.stock_available, item.max_lines, area, ctx.at],
  );
  if (inserted.rowCount) return 'created';
  const updated = await client.query(
    `UPDATE engraving.items
        SET name = $2, stock_available = $3, max_lines = $4,
            engraving_area = COALESCE($5::jsonb, engraving_area), updated_at = $6
      WHERE id = $1
        AND (name IS DISTINCT FROM $2 OR stock_available IS DISTINCT FROM $3 OR max_lines IS DISTINCT FROM $4
             OR engraving_area IS DISTINCT FROM COALESCE($5::jsonb, engraving_area))`,
    [item.id, item.name, item.stock_available, item.max_lines, area, ctx.at],
  );
  return updated.rowCount ? 'updated' : 'unchanged';
}

async function importOrder(client: PoolClient, order: OrderRecord, ctx: ImportContext): Promise<RowOutcome> {
  const details = order.details === undefined ? null : JSON.stringify(order.details);
  const found = await client.query<{ id: string; status: string; same: boolean }>(
    `SELECT id::text AS id, status, (details = COALESCE($2::jsonb, details)) AS same
       FROM processing.orders WHERE order_number = $1 FOR UPDATE`,
    [order.order_number, details],
  );
  if (found.rows.length === 0) {
    await client.query(
      `INSERT INTO processing.orders (order_number, status, details, created_at, updated_at)
       VALUES ($1, $2, COALESCE($3::jsonb, '{}'::jsonb), $4, $4)`,
      [order.order_number, order.status ?? 'pending', details, ctx.at],
    );
    return 'created';
  }
  const current = found.rows[0];
  const statusChanges = order.status !== undefined && order.status !== current.status;
  if (!statusChanges && current.same) return 'unchanged';
  // A confirmed order is being processed from the details it was confirmed with.
  if (current.status === 'confirmed')
    throw new RowRejected(
      statusChanges ? 'status' : 'details',
      `order ${order.order_number} is confirmed; it can no longer be changed by an import`,
    );
  await client.query(
    `UPDATE processing.orders SET status = COALESCE($2, status), details = COALESCE($3::jsonb, details), updated_at = $4
      WHERE id = $1`,
    [current.id, order.status ?? null, details, ctx.at],
  );
  return 'updated';
}

/**
 * A job with its planned operations (logs.job_operations), its files on their impositions
 * (logs.imposition_file_mapping, whose trigger fills jobmanager.job_files), the impositions'
 * planned operations and the runlists holding them. Mappings are only ever added: a file or
 * operation missing from a later file stays, because print and scan records may refer to it.
 */
async function importJob(client: PoolClient, job: JobRecord, ctx: ImportContext): Promise<RowOutcome> {
  const catalog = await client.query<{ operation_name: string; operation_id: string }>(
    `SELECT operation_name, operation_id FROM logs.operation_catalog WHERE operation_name = ANY($1::text[])`,
    [job.operations],
  );
  const idOf = new Map(catalog.rows.map((r) => [r.operation_name, r.operation_id]));
  const unknown = job.operations.filter((name) => !idOf.has(name));
  if (unknown.length > 0) {
    const known = await client.query<{ operation_name: string }>(
      `SELECT operation_name FROM logs.operation_catalog ORDER BY operation_name`,
    );
    throw new RowRejected(
      'operations',
      `no operation named ${unknown.map((u) => `"${u}"`).join(', ')}; the plant's operations are ${known.rows
        .map((r) => r.operation_name)
        .join(', ')}`,
    );
  }
  const operationIds = job.operations.map((name) => idOf.get(name)!);
  // Planned operations start as not done; flags the floor has set already are kept.
  const planned = JSON.stringify(Object.fromEntries(job.operations.map((name) => [name, false])));
  let changed = false;
  const inserted = await client.query(
    `INSERT INTO jobmanager.jobs (job_id, version_tag, operations, created_at, updated_at)
     VALUES ($1, $2, $3::jsonb, $4, $4) ON CONFLICT (job_id) DO NOTHING`,
    [job.job_id, job.version_tag ?? null, planned, ctx.at],
  );
  const created = Boolean(inserted.rowCount);
  if (!created) {
    const updated = await client.query(
      `UPDATE jobmanager.jobs
          SET version_tag = COALESCE($2, version_tag), operations = $3::jsonb || operations, updated_at = $4
        WHERE job_id = $1
          AND (version_tag IS DISTINCT FROM COALESCE($2, version_tag) OR NOT operations ?& $5::text[])`,
      [job.job_id, job.version_tag ?? null, planned, ctx.at, job.operations],
    );
    changed ||= Boolean(updated.rowCount);
  }
  const version = await client.query<{ version_tag: string | null }>(
    `SELECT version_tag FROM jobmanager.jobs WHERE job_id = $1`,
    [job.job_id],
  );
  const versionTag = version.rows[0].version_tag;
  const opKey = (prefix: string, operationId: string) => `${prefix}:${operationId}`;
  const jobPrefix = versionTag === null ? job.job_id : `${job.job_id}:${versionTag}`;
  const ops = await client.query(
    `INSERT INTO logs.job_operations (job_operation_id, job_id, version_tag, operation_id, sequence_order, created_at, updated_at)
     SELECT k, $2, $3, op, ord, $4, $4 FROM unnest($1::text[], $5::text[]) WITH ORDINALITY AS u(k, op, ord)
     ON CONFLICT (job_operation_id) DO UPDATE SET sequence_order = EXCLUDED.sequence_order, updated_at = EXCLUDED.updated_at
       WHERE logs.job_operations.sequence_order IS DISTINCT FROM EXCLUDED.sequence_order`,
    [operationIds.map((op) => opKey(jobPrefix, op)), job.job_id, versionTag, ctx.at, operationIds],
  );
  changed ||= Boolean(ops.rowCount);
  if (job.files.length > 0) {
    const files = await client.query(
      `INSERT INTO logs.imposition_file_mapping (imposition_id, file_id, created_at)
       SELECT i, f, $3 FROM unnest($1::text[], $2::text[]) AS u(i, f) ON CONFLICT DO NOTHING`,
      [job.files.map((f) => f.imposition_id), job.files.map((f) => f.file_id), ctx.at],
    );
    changed ||= Boolean(files.rowCount);
    const impositions = [...new Set(job.files.map((f) => f.imposition_id))];
    const pairs = impositions.flatMap((imposition) =>
      operationIds.map((op, i) => ({ imposition, op, order: i + 1 })),
    );
    if (pairs.length > 0) {
      const impositionOps = await client.query(
        `INSERT INTO logs.imposition_operations (imposition_operation_id, imposition_id, operation_id, sequence_order, created_at, updated_at)
         SELECT i || ':' || op, i, op, ord, $4, $4 FROM unnest($1::text[], $2::text[], $3::int[]) AS u(i, op, ord)
         ON CONFLICT DO NOTHING`,
        [pairs.map((p) => p.imposition), pairs.map((p) => p.op), pairs.map((p) => p.order), ctx.at],
      );
      changed ||= Boolean(impositionOps.rowCount);
    }
    const runlisted = job.files.filter((f) => f.runlist_id !== undefined);
    if (runlisted.length > 0) {
      const paths = await client.query(
        `INSERT INTO logs.production_planner_paths (runlist_id, imposition_id, created_at)
         SELECT r, i, $3 FROM unnest($1::text[], $2::text[]) AS u(r, i) ON CONFLICT DO NOTHING`,
        [runlisted.map((f) => f.runlist_id), runlisted.map((f) => f.imposition_id), ctx.at],
      );
      changed ||= Boolean(paths.rowCount);
    }
  }
  if (created) return 'created';
  return changed ? 'updated' : 'unchanged';
}

const IMPORTERS: { [K in ImportKind]: Importer<K> } = {
  plates: importPlate,
  jobs: importJob,
  products: importProduct,
  'engraving-items': importEngravingItem,
  orders: importOrder,
};

/** Check violations and the like that a row can cause: reported for the row, not thrown. */
function databaseReason(err: unknown): string | undefined {
  const code = (err as { code?: string }).code ?? '';
  if (/^(22|23)/.test(code)) return `the database refused it: ${(err as Error).message}`;
  return undefined;
}

/**
 * Imports the rows that passed core/import's checks. `errors` are the rows the file's reading
 * already refused; they count as failed. A row refused by the database joins them; a lost
 * connection fails the whole call (the rows before it are in, and a repeat is harmless).
 */
export async function importRows<K extends ImportKind>(
  pool: Pool,
  kind: K,
  rows: Array<ImportRow<K>>,
  errors: ImportRowError[],
  ctx: ImportContext,
): Promise<ImportReport> {
  const importer = IMPORTERS[kind] as Importer<K>;
  const report: ImportReport = {
    kind,
    total: rows.length + new Set(errors.map((e) => e.row)).size,
    created: 0,
    updated: 0,
    unchanged: 0,
    failed: 0,
    errors: [...errors],
  };
  for (const row of rows) {
    const where = { row: row.row, ...(row.line === undefined ? {} : { line: row.line }) };
    // Two imports creating the same record at once: the loser's insert hits the key and the
    // row is tried once more, when it finds the winner's record.
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await withTransaction(pool, (client) => importer(client, row.record, ctx));
        report[outcome]++;
        break;
      } catch (err) {
        if ((err as { code?: string }).code === '23505' && attempt === 1) continue;
        if (err instanceof RowRejected) {
          report.errors.push({ ...where, field: err.field, reason: err.reason });
        } else {
          const reason = databaseReason(err);
          if (!reason) throw err;
          report.errors.push({ ...where, field: '', reason });
        }
        break;
      }
    }
  }
  report.errors.sort((a, b) => a.row - b.row);
  report.failed = new Set(report.errors.map((e) => e.row)).size;
  return report;
}
