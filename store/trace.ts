// Provenance: everything the domain tables recorded about one entity (a job, imposition,
// plate, product, order or engraving job), as one time-ordered list of events, each with
// the deployed flow version that wrote it where the table keeps one. It answers "why is this
// job marked coated?" by showing the scan or press record, the status update it caused and
// the flow version that decided it.
import type { Queryable } from './db';

export const TRACE_KINDS = ['job', 'imposition', 'plate', 'product', 'order', 'engraving-job'] as const;
export type TraceKind = (typeof TRACE_KINDS)[number];

export interface TraceEvent {
  /** ISO-8601 time of the event. */
  at: string;
  /** The table the event comes from. */
  source: string;
  /** What happened: scan, press_record, status_update, transition, machine_message, ... */
  type: string;
  detail: Record<string, unknown>;
  /** The deployed flow version that wrote the row; null where the row has none. */
  flow_version: string | null;
}

/** Job, imposition ids are the plant's text ids; the rest are bigint keys. */
const TEXT_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;
const NUMERIC_ID = /^[1-9]\d{0,17}$/;

export function isTraceKind(kind: string): kind is TraceKind {
  return (TRACE_KINDS as readonly string[]).includes(kind);
}

/** The id as the queries take it, or why it cannot be one. */
export function parseTraceId(kind: TraceKind, raw: string): { id: string } | { error: string } {
  if (kind === 'job' || kind === 'imposition') {
    return TEXT_ID.test(raw)
      ? { id: raw }
      : { error: `${kind} id must be 1 to 200 letters, digits, _ . : or -` };
  }
  return NUMERIC_ID.test(raw) ? { id: raw } : { error: `${kind} id must be a positive whole number` };
}

/**
 * One source of events. Each query selects at, seq (the row id, for a stable order within
 * a table), type, detail and flow_version, for the entity id in $1.
 */
interface Part {
  source: string;
  /** Tables the query reads; a part whose tables a database lacks (an older schema) is skipped. */
  tables: string[];
  sql: string;
}

const statusUpdate = (where: string): Part => ({
  source: 'jobmanager.job_status_updates',
  tables: ['jobmanager.job_status_updates'],
  sql: `SELECT u.created_at AS at, u.update_id AS seq, 'status_update' AS type,
          jsonb_build_object('update_id', u.update_id, 'job_id', u.job_id, 'operation', u.operation_type, 'status', u.status,
                             'source_type', u.source_type, 'source_id', u.source_id, 'notes', u.notes) AS detail,
          u.flow_version
        FROM jobmanager.job_status_updates u WHERE ${where}`,
});

const pressRecord = (where: string): Part => ({
  source: 'jobmanager."print OS"',
  tables: ['jobmanager."print OS"', 'jobmanager.job_status_updates'],
  sql: `SELECT coalesce(p.job_complete_time, p.created_at) AS at, p.id AS seq, 'press_record' AS type,
          jsonb_build_object('print_os_id', p.id, 'imposition', p.name, 'status', p.status, 'marker', p.marker,
                             'job_name', p.job_name, 'item_id', p.item_id, 'copies', p.copies) AS detail,
          NULL::text AS flow_version
        FROM jobmanager."print OS" p WHERE ${where}`,
});

const transitions = (lifecycle: string, entityIds: string): Part => ({
  source: 'floorflow.lifecycle_transitions',
  tables: ['floorflow.lifecycle_transitions'],
  sql: `SELECT t.created_at AS at, t.id AS seq, 'transition' AS type,
          jsonb_build_object('lifecycle', t.lifecycle, 'entity_id', t.entity_id, 'from', t.from_state, 'to', t.to_state,
                             'action', t.action, 'reason', t.reason, 'actor', t.actor, 'via', t.source) AS detail,
          t.flow_version
        FROM floorflow.lifecycle_transitions t
        WHERE t.lifecycle = '${lifecycle}' AND t.entity_id IN (${entityIds})`,
});

// The status updates of a job name their source records: scans and press rows.
const JOB_SOURCES = (type: 'scanner' | 'print_os') =>
  `SELECT source_id FROM jobmanager.job_status_updates WHERE job_id = $1 AND source_type = '${type}'`;

const PARTS: Record<TraceKind, Part[]> = {
  job: [
    {
      source: 'jobmanager.jobs',
      tables: ['jobmanager.jobs'],
      sql: `SELECT created_at AS at, 0 AS seq, 'job_created' AS type,
              jsonb_build_object('version_tag', version_tag, 'operations', operations) AS detail, NULL::text AS flow_version
            FROM jobmanager.jobs WHERE job_id = $1`,
    },
    {
      source: 'jobmanager.scanned_codes',
      tables: ['jobmanager.scanned_codes', 'jobmanager.job_status_updates'],
      // A job is scanned as "<job_id>_<version_tag>" (or by its runlist, found through the updates).
      sql: `SELECT s.scanned_at AS at, s.scan_id AS seq, 'scan' AS type,
              jsonb_build_object('scan_id', s.scan_id, 'code', s.code_text, 'machine_id', s.machine_id, 'user_id', s.user_id,
                                 'operations', s.operations, 'msg_id', s.msg_id, 'received_at', s.received_at) AS detail,
              NULL::text AS flow_version
            FROM jobmanager.scanned_codes s
            WHERE s.code_text = $1 OR left(s.code_text, length($1) + 1) = $1 || '_' OR s.scan_id IN (${JOB_SOURCES('scanner')})`,
    },
    {
      source: 'jobmanager.rejected_scans',
      tables: ['jobmanager.rejected_scans'],
      // The dead letters of scan ingest: a scan naming the job that was not stored as a scan.
      sql: `SELECT r.received_at AS at, r.id AS seq, 'scan_rejected' AS type,
              jsonb_build_object('machine_id', r.machine_id, 'payload', left(r.payload, 500), 'reason', r.reason) AS detail,
              NULL::text AS flow_version
            FROM jobmanager.rejected_scans r WHERE strpos(r.payload, $1) > 0`,
    },
    pressRecord(`p.id IN (${JOB_SOURCES('print_os')})`),
    statusUpdate('u.job_id = $1'),
    {
      source: 'logs.job_operations',
      tables: ['logs.job_operations'],
      sql: `SELECT o.completed_at AS at, 0 AS seq, 'operation_' || coalesce(o.status, 'completed') AS type,
              jsonb_build_object('job_operation_id', o.job_operation_id, 'operation_id', o.operation_id, 'version_tag', o.version_tag,
                                 'completed_by', o.completed_by, 'source_id', o.source_id, 'notes', o.notes) AS detail,
              o.flow_version
            FROM logs.job_operations o WHERE o.job_id = $1 AND o.completed_at IS NOT NULL`,
    },
    {
      source: 'jobmanager.processed_source_records',
      tables: ['jobmanager.processed_source_records', 'jobmanager.job_status_updates'],
      sql: `SELECT r.processed_at AS at, r.source_id AS seq, 'source_' || r.outcome AS type,
              jsonb_build_object('source_type', r.source_type, 'source_id', r.source_id, 'reason', r.reason,
                                 'jobs_updated', r.jobs_updated) AS detail,
              r.flow_version
            FROM jobmanager.processed_source_records r
            WHERE (r.source_type, r.source_id) IN (
              SELECT source_type, source_id FROM jobmanager.job_status_updates WHERE job_id = $1 AND source_id IS NOT NULL)`,
    },
  ],
  imposition: [
    pressRecord('p.name = $1'),
    statusUpdate(
      `u.source_type = 'print_os' AND u.source_id IN (SELECT id FROM jobmanager."print OS" WHERE name = $1)`,
    ),
    {
      source: 'logs.imposition_operations',
      tables: ['logs.imposition_operations'],
      sql: `SELECT o.completed_at AS at, 0 AS seq, 'operation_' || coalesce(o.status, 'completed') AS type,
              jsonb_build_object('imposition_operation_id', o.imposition_operation_id, 'operation_id', o.operation_id,
                                 'completed_by', o.completed_by, 'source_id', o.source_id, 'notes', o.notes) AS detail,
              o.flow_version
            FROM logs.imposition_operations o WHERE o.imposition_id = $1 AND o.completed_at IS NOT NULL`,
    },
    {
      source: 'logs.imposition_file_mapping',
      tables: ['logs.imposition_file_mapping'],
      sql: `SELECT created_at AS at, 0 AS seq, 'file_mapped' AS type, jsonb_build_object('file_id', file_id) AS detail,
              NULL::text AS flow_version
            FROM logs.imposition_file_mapping WHERE imposition_id = $1`,
    },
    {
      source: 'logs.production_planner_paths',
      tables: ['logs.production_planner_paths'],
      sql: `SELECT created_at AS at, 0 AS seq, 'planned_in_runlist' AS type, jsonb_build_object('runlist_id', runlist_id) AS detail,
              NULL::text AS flow_version
            FROM logs.production_planner_paths WHERE imposition_id = $1`,
    },
  ],
  plate: [
    {
      source: 'embossing.plates',
      tables: ['embossing.plates'],
      sql: `SELECT created_at AS at, id AS seq, 'plate_created' AS type,
              jsonb_build_object('plate_number', plate_number, 'batch_code', batch_code, 'status_now', status,
                                 'unavailable_reason', unavailable_reason) AS detail,
              NULL::text AS flow_version
            FROM embossing.plates WHERE id = $1::bigint`,
    },
    {
      source: 'embossing.embossing_job_plates',
      tables: ['embossing.embossing_job_plates'],
      sql: `SELECT created_at AS at, job_id AS seq, 'assigned_to_embossing_job' AS type,
              jsonb_build_object('embossing_job_id', job_id, 'previous_status', previous_status) AS detail, NULL::text AS flow_version
            FROM embossing.embossing_job_plates WHERE plate_id = $1::bigint
            UNION ALL
            SELECT released_at, job_id, 'released_from_embossing_job', jsonb_build_object('embossing_job_id', job_id), NULL
            FROM embossing.embossing_job_plates WHERE plate_id = $1::bigint AND released_at IS NOT NULL`,
    },
    {
      source: 'embossing.embossing_jobs',
      tables: ['embossing.embossing_jobs', 'embossing.embossing_job_plates'],
      sql: `WITH j AS (SELECT * FROM embossing.embossing_jobs
                       WHERE id IN (SELECT job_id FROM embossing.embossing_job_plates WHERE plate_id = $1::bigint))
            SELECT created_at AS at, id AS seq, 'embossing_job_created' AS type,
              jsonb_build_object('embossing_job_id', id, 'machine_id', machine_id, 'created_by', created_by) AS detail,
              NULL::text AS flow_version FROM j
            UNION ALL
            SELECT sent_at, id, 'embossing_job_sent', jsonb_build_object('embossing_job_id', id, 'machine_id', machine_id, 'attempts', attempts), NULL
            FROM j WHERE sent_at IS NOT NULL
            UNION ALL
            SELECT completed_at, id, 'embossing_job_' || status,
              jsonb_build_object('embossing_job_id', id, 'attempts', attempts, 'last_error', last_error, 'machine_response', machine_response), NULL
            FROM j WHERE completed_at IS NOT NULL`,
    },
    {
      source: 'embossing.machine_messages',
      tables: ['embossing.machine_messages', 'embossing.embossing_job_plates'],
      sql: `SELECT m.created_at AS at, m.id AS seq, 'machine_message' AS type,
              jsonb_build_object('direction', m.direction, 'machine_id', m.machine_id, 'embossing_job_id', m.job_id,
                                 'channel', m.channel, 'topic', m.topic, 'payload', m.payload, 'result', m.result) AS detail,
              m.flow_version
            FROM embossing.machine_messages m
            WHERE m.job_id IN (SELECT job_id FROM embossing.embossing_job_plates WHERE plate_id = $1::bigint)`,
    },
    transitions('embossing-plate', '$1'),
    transitions(
      'embossing-job',
      'SELECT job_id::text FROM embossing.embossing_job_plates WHERE plate_id = $1::bigint',
    ),
  ],
  product: [
    {
      source: 'trackopz.products',
      tables: ['trackopz.products'],
      sql: `SELECT created_at AS at, id AS seq, 'product_created' AS type, jsonb_build_object('name', name) AS detail,
              NULL::text AS flow_version
            FROM trackopz.products WHERE id = $1::bigint`,
    },
    {
      source: 'trackopz.jobs',
      tables: ['trackopz.jobs'],
      sql: `SELECT created_at AS at, id AS seq, 'job_state' AS type, jsonb_build_object('trackopz_job_id', id, 'state', state) AS detail,
              NULL::text AS flow_version
            FROM trackopz.jobs WHERE product_id = $1::bigint`,
    },
    {
      source: 'trackopz.product_transitions',
      tables: ['trackopz.product_transitions'],
      sql: `SELECT created_at AS at, id AS seq, 'transition' AS type,
              jsonb_build_object('trackopz_job_id', job_id, 'from', from_state, 'to', to_state, 'action', action,
                                 'reason', reason, 'actor', actor, 'via', source) AS detail,
              flow_version
            FROM trackopz.product_transitions WHERE product_id = $1::bigint`,
    },
    {
      source: 'trackopz.operator_product_updates',
      tables: ['trackopz.operator_product_updates'],
      sql: `SELECT created_at AS at, id AS seq, 'operator_update' AS type,
              jsonb_build_object('trackopz_job_id', job_id, 'machine_id', machine_id, 'operator_id', operator_id,
                                 'quantity', quantity, 'notes', notes) AS detail,
              flow_version
            FROM trackopz.operator_product_updates WHERE product_id = $1::bigint`,
    },
    transitions('trackopz-product', '$1'),
  ],
  order: [
    {
      source: 'processing.orders',
      tables: ['processing.orders'],
      sql: `SELECT created_at AS at, id AS seq, 'order_created' AS type,
              jsonb_build_object('order_number', order_number, 'status_now', status) AS detail, NULL::text AS flow_version
            FROM processing.orders WHERE id = $1::bigint
            UNION ALL
            SELECT confirmed_at, id, 'order_confirmed', jsonb_build_object('order_number', order_number), NULL
            FROM processing.orders WHERE id = $1::bigint AND confirmed_at IS NOT NULL`,
    },
    {
      source: 'processing.processing_jobs',
      tables: ['processing.processing_jobs'],
      sql: `WITH j AS (SELECT * FROM processing.processing_jobs WHERE order_id = $1::bigint)
            SELECT created_at AS at, id AS seq, 'processing_job_created' AS type,
              jsonb_build_object('processing_job_id', id) AS detail, NULL::text AS flow_version FROM j
            UNION ALL
            SELECT started_at, id, 'processing_started', jsonb_build_object('processing_job_id', id), NULL
            FROM j WHERE started_at IS NOT NULL
            UNION ALL
            SELECT completed_at, id, 'processing_' || status,
              jsonb_build_object('processing_job_id', id, 'attempts', attempts, 'fail_reason', fail_reason), NULL
            FROM j WHERE completed_at IS NOT NULL`,
    },
    {
      source: 'processing.processing_job_logs',
      tables: ['processing.processing_job_logs', 'processing.processing_jobs'],
      sql: `SELECT l.created_at AS at, l.id AS seq, 'log_' || l.level AS type,
              jsonb_build_object('processing_job_id', l.job_id, 'category', l.category, 'stage', l.stage, 'message', l.message,
                                 'error_code', l.error_code, 'details', l.details) AS detail,
              l.flow_version
            FROM processing.processing_job_logs l
            WHERE l.job_id IN (SELECT id FROM processing.processing_jobs WHERE order_id = $1::bigint)`,
    },
    transitions('processing-order', '$1'),
    transitions(
      'processing-job',
      'SELECT id::text FROM processing.processing_jobs WHERE order_id = $1::bigint',
    ),
  ],
  'engraving-job': [
    {
      source: 'engraving.engraving_jobs',
      tables: ['engraving.engraving_jobs'],
      sql: `SELECT created_at AS at, id AS seq, 'engraving_job_created' AS type,
              jsonb_build_object('customer_id', customer_id, 'item_id', item_id, 'rush', rush, 'due_date', due_date,
                                 'requires_design', requires_design, 'status_now', status, 'created_by', created_by) AS detail,
              NULL::text AS flow_version
            FROM engraving.engraving_jobs WHERE id = $1::bigint
            UNION ALL
            SELECT sent_at, id, 'sent_to_engraver', jsonb_build_object('machine_id', machine_id), NULL
            FROM engraving.engraving_jobs WHERE id = $1::bigint AND sent_at IS NOT NULL
            UNION ALL
            SELECT completed_at, id, 'engraving_completed', jsonb_build_object('qa_attempts', qa_attempts), NULL
            FROM engraving.engraving_jobs WHERE id = $1::bigint AND completed_at IS NOT NULL`,
    },
    {
      source: 'engraving.designs',
      tables: ['engraving.designs'],
      sql: `SELECT created_at AS at, id AS seq, 'design_created' AS type,
              jsonb_build_object('design_id', id, 'preview_url', preview_url) AS detail, NULL::text AS flow_version
            FROM engraving.designs WHERE job_id = $1::bigint
            UNION ALL
            SELECT decided_at, id, 'design_' || status,
              jsonb_build_object('design_id', id, 'feedback', feedback, 'decided_by', decided_by), NULL
            FROM engraving.designs WHERE job_id = $1::bigint AND decided_at IS NOT NULL`,
    },
    {
      source: 'engraving.qa_results',
      tables: ['engraving.qa_results'],
      sql: `SELECT created_at AS at, id AS seq, 'qa_result' AS type,
              jsonb_build_object('attempt', attempt, 'passed', passed, 'inspector', inspector, 'notes', notes) AS detail,
              flow_version
            FROM engraving.qa_results WHERE job_id = $1::bigint`,
    },
    {
      source: 'engraving.job_events',
      tables: ['engraving.job_events'],
      sql: `SELECT created_at AS at, id AS seq, 'status_change' AS type,
              jsonb_build_object('from', from_status, 'to', to_status, 'reason', reason, 'machine_id', machine_id,
                                 'actor', actor, 'details', details) AS detail,
              flow_version
            FROM engraving.job_events WHERE job_id = $1::bigint`,
    },
    transitions('engraving-job', '$1'),
  ],
};

interface Row {
  at: Date;
  seq: string | number;
  type: string;
  detail: Record<string, unknown>;
  flow_version: string | null;
}

/** Which of the tables exist in this database. */
async function presentTables(db: Queryable, tables: string[]): Promise<Set<string>> {
  const result = await db.query<{ name: string }>(
    'SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NOT NULL',
    [tables],
  );
  return new Set(result.rows.map((r) => r.name));
}

/**
 * Everything recorded about one entity, oldest first. Events at the same instant keep the
 * order of the parts above (source record, then what it caused), then their row order.
 */
export async function traceEntity(db: Queryable, kind: TraceKind, id: string): Promise<TraceEvent[]> {
  const parts = PARTS[kind];
  const present = await presentTables(db, [...new Set(parts.flatMap((p) => p.tables))]);
  const results = await Promise.all(
    parts.map(async (part, rank) => {
      if (!part.tables.every((t) => present.has(t))) return [];
      const result = await db.query<Row>(part.sql, [id]);
      return result.rows.map((row) => ({ row, rank, source: part.source }));
    }),
  );
  return results
    .flat()
    .sort(
      (a, b) =>
        a.row.at.getTime() - b.row.at.getTime() || a.rank - b.rank || Number(a.row.seq) - Number(b.row.seq),
    )
    .map(({ row, source }) => ({
      at: row.at.toISOString(),
      source,
      type: row.type,
      detail: withoutNulls(row.detail),
      flow_version: row.flow_version,
    }));
}

function withoutNulls(detail: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(detail).filter(([, v]) => v !== null));
}
