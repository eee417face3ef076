// One evaluation of the alert rules: read, compare with the open alerts, record what began
// and ended (floorflow.alerts), and announce each change on MQTT <prefix>/alerts and on the
// event bus. The database row is written first: an alert is announced only once recorded,
// and a runtime that restarts resumes from the open rows instead of announcing them again.
import type { Pool } from 'pg';
import { type AlertRules, alertChanges, evaluateAlerts } from '../../core/alerts';
import { type AlertRecord, alertReadings, beginAlert, endAlert, openAlerts } from '../../store/alerts';
import type { FloorflowServices } from '../common/services';

export interface AlertEvent {
  event: 'began' | 'ended';
  key: string;
  rule: string;
  severity: string;
  message: string;
  details: Record<string, unknown>;
  began_at: string;
  ended_at: string | null;
}

export function alertEventOf(event: AlertEvent['event'], record: AlertRecord): AlertEvent {
  return {
    event,
    key: record.alert_key,
    rule: record.rule,
    severity: record.severity,
    message: record.message,
    details: record.details,
    began_at: record.began_at.toISOString(),
    ended_at: record.ended_at ? record.ended_at.toISOString() : null,
  };
}

export function alertsTopic(topicPrefix: string): string {
  return `${topicPrefix}/alerts`;
}

export async function checkAlerts(
  pool: Pool,
  rules: AlertRules,
  now: Date,
  services: FloorflowServices | undefined,
  warn: (message: string) => void,
): Promise<AlertEvent[]> {
  const readings = await alertReadings(pool, now, rules.qaWindowHours);
  const conditions = evaluateAlerts(rules, readings, now);
  const open = await openAlerts(pool);
  const changes = alertChanges(
    open.map((a) => a.alert_key),
    conditions,
  );
  const events: AlertEvent[] = [];
  for (const condition of changes.began) {
    const record = await beginAlert(pool, condition, now);
    if (record) events.push(alertEventOf('began', record));
  }
  for (const key of changes.ended) {
    const record = await endAlert(pool, key, now);
    if (record) events.push(alertEventOf('ended', record));
  }
  for (const event of events) {
    services?.events.emit('alert', event);
    if (services?.broker) {
      const topic = alertsTopic(services.topicPrefix);
      await services.broker.publish(topic, JSON.stringify(event), { qos: 1 }).catch((err: unknown) => {
        warn(`alert not published on ${topic}: ${err instanceof Error ? err.message : String(err)}`);
      });
    }
  }
  return events;
}
