// The engraving QA station in SQL: the engraved items waiting for a quality check, the latest QA
// results with their defect notes, and the jobs that went to a manager or need a person. The
// decisions themselves (pass, fail and re-engrave, fail and escalate) are recordQa in
// store/engraving, so the page and the HTTP route follow one rule.
import type { Pool } from 'pg';
import { MAX_QA_ATTEMPTS } from '../core/engraving';

export interface QaItem {
  id: string;
  customer_id: string;
  item_id: string;
  item: string;
  text: string[];
  artwork_url: string | null;
  machine_id: string | null;
  rush: boolean;
  due_date: string;
  /** QA attempts before this one. */
  qa_attempts: number;
  /** Failures left before a failure escalates on its own. */
  reengraves_left: number;
  engraved_at: string;
}

export interface QaResultRow {
  id: string;
  job_id: string;
  item: string;
  attempt: number;
  passed: boolean;
  inspector: string | null;
  notes: string | null;
  created_at: string;
}

export interface QaAttentionRow {
  id: string;
  item: string;
  customer_id: string;
  status: 'escalated' | 'needs_attention';
  reason: string | null;
  machine_id: string | null;
  at: string;
}

export interface QaBoard {
  awaiting: QaItem[];
  results: QaResultRow[];
  attention: QaAttentionRow[];
  /** Passed attempts over all attempts today (UTC), 0–100; null before the first. */
  pass_rate_today: number | null;
}

const iso = (d: Date): string => d.toISOString();

export async function qaBoard(pool: Pool, now: Date): Promise<QaBoard> {
  const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const awaiting = await pool.query<{
    id: string;
    customer_id: string;
    item_id: string;
    item: string;
    text: string[];
    artwork_url: string | null;
    machine_id: string | null;
    rush: boolean;
    due_date: Date;
    qa_attempts: number;
    updated_at: Date;
  }>(
    `SELECT j.id::text AS id, j.customer_id, j.item_id, i.name AS item, j.text, j.artwork_url, j.machine_id, j.rush,
            j.due_date, j.qa_attempts, j.updated_at
     FROM engraving.engraving_jobs j JOIN engraving.items i ON i.id = j.item_id
     WHERE j.status = 'qa' ORDER BY j.priority, j.due_date, j.updated_at, j.id LIMIT 100`,
  );
  const results = await pool.query<{
    id: string;
    job_id: string;
    item: string;
    attempt: number;
    passed: boolean;
    inspector: string | null;
    notes: string | null;
    created_at: Date;
  }>(
    `SELECT q.id::text AS id, q.job_id::text AS job_id, i.name AS item, q.attempt, q.passed, q.inspector, q.notes, q.created_at
     FROM engraving.qa_results q JOIN engraving.engraving_jobs j ON j.id = q.job_id JOIN engraving.items i ON i.id = j.item_id
     ORDER BY q.created_at DESC, q.id DESC LIMIT 20`,
  );
  const attention = await pool.query<{
    id: string;
    item: string;
    customer_id: string;
    status: 'escalated' | 'needs_attention';
    reason: string | null;
    machine_id: string | null;
    updated_at: Date;
  }>(
    `SELECT j.id::text AS id, i.name AS item, j.customer_id, j.status,
            coalesce(j.attention_reason, j.escalation_reason) AS reason, j.machine_id, j.updated_at
     FROM engraving.engraving_jobs j JOIN engraving.items i ON i.id = j.item_id
     WHERE j.status IN ('escalated', 'needs_attention') ORDER BY j.updated_at DESC, j.id DESC LIMIT 20`,
  );
  const rate = await pool.query<{ total: number; passed: number }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE passed)::int AS passed
     FROM engraving.qa_results WHERE created_at >= $1`,
    [dayStart],
  );
  const { total, passed } = rate.rows[0];
  return {
    awaiting: awaiting.rows.map((r) => ({
      id: r.id,
      customer_id: r.customer_id,
      item_id: r.item_id,
      item: r.item,
      text: r.text,
      artwork_url: r.artwork_url,
      machine_id: r.machine_id,
      rush: r.rush,
      due_date: iso(r.due_date),
      qa_attempts: r.qa_attempts,
      reengraves_left: Math.max(0, MAX_QA_ATTEMPTS - 1 - r.qa_attempts),
      engraved_at: iso(r.updated_at),
    })),
    results: results.rows.map((r) => ({ ...r, created_at: iso(r.created_at) })),
    attention: attention.rows.map(({ updated_at, ...r }) => ({ ...r, at: iso(updated_at) })),
    pass_rate_today: total === 0 ? null : Math.round((passed / total) * 1000) / 10,
  };
}
