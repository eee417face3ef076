// A small plant for the dashboard tests: machines online and offline, selectable plates and an
// embossing job, jobs with operations from the press and the scanners, live and past products,
// processing jobs in every state, and engraving jobs with designs waiting and QA results.
// Written with plain SQL: these are the rows the domain flows would have left behind.
import type { Pool } from 'pg';

export interface SeededFloor {
  embosser: string;
  offlineMachine: string;
  plates: Array<{ id: string; plate_number: string }>;
  liveProducts: Array<{ id: string; name: string }>;
  designJobs: string[];
}

/** Inserts the fixture rows; `now` anchors every time so pages and metrics are predictable. */
export async function seedFloor(pool: Pool, now: Date): Promise<SeededFloor> {
  const ago = (minutes: number) => new Date(now.getTime() - minutes * 60000);
  const machine = async (
    id: string,
    kind: string,
    online: boolean,
    lastSeenMinutesAgo: number,
    status: Record<string, unknown>,
  ) =>
    pool.query(
      `INSERT INTO floorflow.machines (machine_id, kind, secret_hash, secret_sealed, online, online_since, last_seen_at,
                                       last_status, last_status_at, created_at)
       VALUES ($1, $2, 'sha256$x$x', 'x', $3, $4, $5, $6, $5, $7)`,
      [id, kind, online, online ? ago(90) : null, ago(lastSeenMinutesAgo), status, ago(600)],
    );
  await machine('embosser-1', 'embosser', true, 0, { state: 'idle' });
  await machine('press-4', 'press', false, 42, { state: 'busy', job: '4604_5889' });
  await machine('scanner-2', 'scanner', true, 1, { state: 'busy' });

  const plates = await pool.query<{ id: string; plate_number: string }>(
    `INSERT INTO embossing.plates (plate_number, batch_code, status) VALUES
       ('AB-1001', 'B-7', 'ready_for_embossing'), ('AB-1002', 'B-7', 'ready_for_embossing'),
       ('CD-2001', 'B-8', 'in_production'), ('CD-2002', 'B-8', 'in_production'),
       ('EF-3001', 'B-9', 'embossed')
     RETURNING id::text AS id, plate_number`,
  );
  await pool.query(
    `INSERT INTO embossing.embossing_jobs (machine_id, status, attempts, last_error, created_at, updated_at)
     VALUES ('embosser-1', 'failed', 3, 'machine did not answer', $1, $1)`,
    [ago(30)],
  );

  await pool.query(
    `INSERT INTO jobmanager.jobs (job_id, version_tag, operations, updated_at) VALUES
       ('4604_5889', 'v1', '{"print": true, "coating": true}', $1),
       ('4604_5890', 'v1', '{"print": false}', $2),
       ('4611_0001', 'v2', '{}', $3)`,
    [ago(5), ago(8), ago(20)],
  );
  await pool.query(
    `INSERT INTO jobmanager.job_status_updates (job_id, operation_type, status, source_type, source_id, notes, flow_version, created_at)
     VALUES ('4604_5889', 'print', 'completed', 'print_os', 11, NULL, '1.0.3', $1),
            ('4604_5889', 'coating', 'completed', 'scanner', 201, NULL, '1.0.3', $2),
            ('4604_5890', 'print', 'partial', 'print_os', 12, '2 of 3 files printed', '1.0.3', $3),
            ('4604_5890', 'kiss_cut', 'aborted', 'scanner', 202, NULL, '1.0.3', $3)`,
    [ago(9), ago(6), ago(8)],
  );
  await pool.query(
    `INSERT INTO jobmanager."print OS" (name, status, marker) VALUES ('IMP-1', 'PRINTED', 11), ('IMP-2', 'PRINTED', 12), ('IMP-3', 'PRINTED', 13)`,
  );
  await pool.query(
    `UPDATE jobmanager.processing_markers SET last_processed_id = 12, last_processed_at = $1 WHERE marker_type = 'print_os'`,
    [ago(2)],
  );

  const products = await pool.query<{ id: string; name: string }>(
    `INSERT INTO trackopz.products (name) VALUES ('Trophy cup 30 cm'), ('Plaque walnut'), ('Medal set 12'), ('Shield oak')
     RETURNING id::text AS id, name`,
  );
  for (const [i, p] of products.rows.entries()) {
    await pool.query(`INSERT INTO trackopz.jobs (product_id, state, created_at) VALUES ($1, $2, $3)`, [
      p.id,
      i === 3 ? 'OFF' : 'ON',
      ago(60 - i),
    ]);
  }

  const orders = await pool.query<{ id: string }>(
    `INSERT INTO processing.orders (order_number, status) VALUES ('ORD-501', 'confirmed'), ('ORD-502', 'confirmed'),
       ('ORD-503', 'confirmed'), ('ORD-504', 'confirmed') RETURNING id::text AS id`,
  );
  const [o1, o2, o3, o4] = orders.rows.map((o) => o.id);
  await pool.query(
    `INSERT INTO processing.processing_jobs (order_id, status, stage, progress, attempts, fail_reason, started_at, completed_at, created_at)
     VALUES ($1, 'processing', 'usb_writing', 60, 1, NULL, $5, NULL, $6),
            ($2, 'failed', 'verification', 90, 4, 'USB verification failed: checksum mismatch', $5, NULL, $6),
            ($3, 'pending', NULL, 0, 0, NULL, NULL, NULL, $6),
            ($4, 'completed', 'verification', 100, 1, NULL, $5, $7, $6)`,
    [o1, o2, o3, o4, ago(12), ago(15), ago(3)],
  );

  await pool.query(
    `INSERT INTO engraving.items (id, name, stock_available, max_lines) VALUES ('cup-30', 'Trophy cup 30 cm', 10, 3)`,
  );
  const jobs = await pool.query<{ id: string }>(
    `INSERT INTO engraving.engraving_jobs (customer_id, item_id, text, requires_design, due_date, status, created_at, completed_at)
     VALUES ('C-77', 'cup-30', '["Club champion", "2026"]', true, $1, 'pending_approval', $2, NULL),
            ('C-78', 'cup-30', '["Best in show"]', true, $1, 'pending_approval', $2, NULL),
            ('C-79', 'cup-30', '["Thank you"]', false, $1, 'complete', $2, $3)
     RETURNING id::text AS id`,
    [new Date(now.getTime() + 86400000), ago(50), ago(4)],
  );
  const [e1, e2, e3] = jobs.rows.map((j) => j.id);
  await pool.query(
    `INSERT INTO engraving.designs (job_id, preview_url, status) VALUES ($1, 'https://example.invalid/p1.png', 'pending_approval'),
       ($2, 'https://example.invalid/p2.png', 'pending_approval')`,
    [e1, e2],
  );
  await pool.query(
    `INSERT INTO engraving.qa_results (job_id, attempt, passed, created_at) VALUES ($1, 1, false, $2), ($1, 2, true, $2)`,
    [e3, ago(10)],
  );

  return {
    embosser: 'embosser-1',
    offlineMachine: 'press-4',
    plates: plates.rows.filter((p) => !p.plate_number.startsWith('EF')),
    liveProducts: products.rows.slice(0, 3),
    designJobs: [e1, e2],
  };
}
