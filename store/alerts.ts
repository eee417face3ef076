// Alerts (floorflow.alerts, migration 050): the readings the rules of core/alerts look at,
// and the record of each alert from when it began to when it ended.
import type { Pool } from 'pg';
import type { AlertCondition, AlertReadings } from '../core/alerts';
import type { Queryable } from './db';

export interface AlertRecord {
  id: string;
  alert_key: string;
  rule: string;
  severity: string;
  message: string;
  details: Record<string, unknown>;
  began_at: Date;
  ended_at: Date | null;
}

const COLUMNS = 'id::text AS id, alert_key, rule, severity, message, details, began_at, ended_at';

export async function openAlerts(db: Queryable): Promise<AlertRecord[]> {
  const result = await db.query<AlertRecord>(
    `SELECT ${COLUMNS} FROM floorflow.alerts WHERE ended_at IS NULL ORDER BY began_at, id`,
  );
  return result.rows;
}

export async function recentAlerts(db: Queryable, limit = 50): Promise<AlertRecord[]> {
  const result = await db.query<AlertRecord>(
    `SELECT ${COLUMNS} FROM floorflow.alerts ORDER BY began_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  return result.rows;
}

/** Opens an alert; undefined when one with this key is open already (nothing changes). */
export async function beginAlert(
  db: Queryable,
  condition: AlertCondition,
  at: Date,
): Promise<AlertRecord | undefined> {
  const result = await db.query<AlertRecord>(
    `INSERT INTO floorflow.alerts (alert_key, rule, severity, message, details, began_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (alert_key) WHERE ended_at IS NULL DO NOTHING
     RETURNING ${COLUMNS}`,
    [condition.key, condition.rule, condition.severity, condition.message, condition.details, at],
  );
  return result.rows[0];
}

/** Ends the open alert with this key; undefined when none is open. */
export async function endAlert(db: Queryable, key: string, at: Date): Promise<AlertRecord | undefined> {
  const result = await db.query<AlertRecord>(
    `UPDATE floorflow.alerts SET ended_at = GREATEST($2, began_at)
     WHERE alert_key = $1 AND ended_at IS NULL RETURNING ${COLUMNS}`,
    [key, at],
  );
  return result.rows[0];
}

/** What the rules look at: queue depths per domain, QA results in the window, machine presence. */
export async function alertReadings(pool: Pool, now: Date, qaWindowHours: number): Promise<AlertReadings> {
  const queues = await pool.query<{ embossing: number; processing: number; engraving: number }>(
    `SELECT (SELECT count(*)::int FROM embossing.embossing_jobs WHERE status = 'queued') AS embossing,
            (SELECT count(*)::int FROM processing.processing_jobs WHERE status IN ('pending', 'retry')) AS processing,
            (SELECT count(*)::int FROM engraving.engraving_jobs WHERE status = 'queued') AS engraving`,
  );
  const qa = await pool.query<{ total: number; passed: number }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE passed)::int AS passed
     FROM engraving.qa_results WHERE created_at > $1`,
    [new Date(now.getTime() - qaWindowHours * 3600000)],
  );
  const machines = await pool.query<{
    machine_id: string;
    online: boolean;
    last_seen_at: Date | null;
    created_at: Date;
  }>(`SELECT machine_id, online, last_seen_at, created_at FROM floorflow.machines ORDER BY machine_id`);
  const q = queues.rows[0];
  return {
    queueDepths: [
      { domain: 'embossing', depth: q.embossing },
      { domain: 'processing', depth: q.processing },
      { domain: 'engraving', depth: q.engraving },
    ],
    qa: qa.rows[0],
    machines: machines.rows.map((m) => ({
      machineId: m.machine_id,
      online: m.online,
      lastSeenAt: m.last_seen_at,
      registeredAt: m.created_at,
    })),
  };
}
