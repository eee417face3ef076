// The engraving customer-notification outbox (engraving.notifications): rows are written with
// the change they announce (store/engraving); this relays the unsent ones to a sender. Rows are
// claimed with SKIP LOCKED, so two runtimes never send one twice at the same time; a row whose
// sender failed stays unsent with the error and is tried again, up to MAX_SEND_ATTEMPTS.
import type { Pool } from 'pg';
import { withTransaction } from './db';

export const MAX_SEND_ATTEMPTS = 10;

export interface CustomerNotification {
  id: string;
  job_id: string;
  customer_id: string;
  event: string;
  payload: Record<string, unknown>;
  created_at: Date;
}

/** Delivers one notification; throws when it could not (the row is tried again later). */
export interface NotificationSender {
  /** Recorded as sent_by. */
  name: string;
  send(notification: CustomerNotification): Promise<void>;
}

export async function relayNotifications(
  pool: Pool,
  sender: NotificationSender,
  options: { now: Date; limit?: number },
): Promise<{ sent: string[]; failed: Array<{ id: string; error: string }> }> {
  return withTransaction(pool, async (c) => {
    const due = await c.query<CustomerNotification>(
      `SELECT id::text AS id, job_id::text AS job_id, customer_id, event, payload, created_at
       FROM engraving.notifications WHERE sent_at IS NULL AND attempts < $1
       ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [MAX_SEND_ATTEMPTS, options.limit ?? 20],
    );
    const sent: string[] = [];
    const failed: Array<{ id: string; error: string }> = [];
    for (const n of due.rows) {
      try {
        await sender.send(n);
        await c.query(
          `UPDATE engraving.notifications SET sent_at = $2, sent_by = $3, attempts = attempts + 1, last_error = NULL WHERE id = $1`,
          [n.id, options.now, sender.name],
        );
        sent.push(n.id);
      } catch (err) {
        const error = (err instanceof Error ? err.message : String(err)).slice(0, 500);
        await c.query(
          `UPDATE engraving.notifications SET attempts = attempts + 1, last_error = $2 WHERE id = $1`,
          [n.id, error],
        );
        failed.push({ id: n.id, error });
      }
    }
    return { sent, failed };
  });
}

export async function notificationsOf(
  pool: Pool,
  jobId: string,
): Promise<
  Array<{ event: string; payload: Record<string, unknown>; sent_at: Date | null; sent_by: string | null }>
> {
  const rows = await pool.query<{
    event: string;
    payload: Record<string, unknown>;
    sent_at: Date | null;
    sent_by: string | null;
  }>(`SELECT event, payload, sent_at, sent_by FROM engraving.notifications WHERE job_id = $1 ORDER BY id`, [
    jobId,
  ]);
  return rows.rows;
}
