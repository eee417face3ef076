// The floor's alert rules ("queue_backup", "high_failure_rate", "machine_offline") as pure
// functions: which conditions hold for a set of readings at an instant, and how that differs
// from the alerts already open. Reading the database and publishing are the callers' job.

export type AlertRuleName = 'queue_depth' | 'qa_pass_rate' | 'machine_silent';
export type AlertSeverity = 'warning' | 'critical';

export interface AlertRules {
  /** queue_backup: a domain's queue holds more than this many jobs. Default 50. */
  queueDepthAbove: number;
  /** high_failure_rate: QA pass rate (percent) over the window is below this. Default 80. */
  qaPassRateBelow: number;
  /** Fewer QA results than this in the window say nothing about the rate yet. */
  qaMinResults: number;
  /** The window the QA pass rate is computed over, in hours. */
  qaWindowHours: number;
  /** machine_offline: no connection and no message from a machine for longer than this. Default 5 min. */
  machineSilentMinutes: number;
}

export const DEFAULT_ALERT_RULES: Readonly<AlertRules> = Object.freeze({
  queueDepthAbove: 50,
  qaPassRateBelow: 80,
  qaMinResults: 1,
  qaWindowHours: 24,
  machineSilentMinutes: 5,
});

/** What the rules look at, read at one instant. */
export interface AlertReadings {
  /** Jobs waiting per domain (embossing, processing, engraving). */
  queueDepths: Array<{ domain: string; depth: number }>;
  /** QA results in the rules' window. */
  qa: { total: number; passed: number };
  /**
   * Registered machines. A connected machine is heard from (the broker drops a connection
   * whose keepalive lapses), so silence is counted from when it was last seen, or from its
   * registration if it never was.
   */
  machines: Array<{ machineId: string; online: boolean; lastSeenAt: Date | null; registeredAt: Date }>;
}

export interface AlertCondition {
  /** Names the condition: one open alert per key. */
  key: string;
  rule: AlertRuleName;
  severity: AlertSeverity;
  message: string;
  details: Record<string, unknown>;
}

/** Percent of passed results, one decimal; null without results. */
export function passRate(qa: { total: number; passed: number }): number | null {
  return qa.total === 0 ? null : Math.round((qa.passed / qa.total) * 1000) / 10;
}

function minutesAgo(from: Date, now: Date): number {
  return Math.floor((now.getTime() - from.getTime()) / 60000);
}

/** Every condition that holds now, in a stable order (rule, then key). */
export function evaluateAlerts(rules: AlertRules, readings: AlertReadings, now: Date): AlertCondition[] {
  const conditions: AlertCondition[] = [];
  for (const { domain, depth } of readings.queueDepths) {
    if (depth > rules.queueDepthAbove) {
      conditions.push({
        key: `queue_depth:${domain}`,
        rule: 'queue_depth',
        severity: 'warning',
        message: `${domain} queue holds ${depth} jobs (more than ${rules.queueDepthAbove})`,
        details: { domain, depth, threshold: rules.queueDepthAbove },
      });
    }
  }
  const rate = passRate(readings.qa);
  if (rate !== null && readings.qa.total >= rules.qaMinResults && rate < rules.qaPassRateBelow) {
    conditions.push({
      key: 'qa_pass_rate',
      rule: 'qa_pass_rate',
      severity: 'warning',
      message: `QA pass rate is ${rate} % (below ${rules.qaPassRateBelow} %) over the last ${rules.qaWindowHours} h`,
      details: {
        rate,
        total: readings.qa.total,
        passed: readings.qa.passed,
        threshold: rules.qaPassRateBelow,
      },
    });
  }
  const silentMs = rules.machineSilentMinutes * 60000;
  for (const m of readings.machines) {
    if (m.online) continue;
    const since = m.lastSeenAt ?? m.registeredAt;
    if (now.getTime() - since.getTime() > silentMs) {
      conditions.push({
        key: `machine_silent:${m.machineId}`,
        rule: 'machine_silent',
        severity: 'critical',
        message: `machine ${m.machineId} silent for ${minutesAgo(since, now)} min`,
        details: { machine_id: m.machineId, last_seen_at: m.lastSeenAt?.toISOString() ?? null },
      });
    }
  }
  const order: AlertRuleName[] = ['queue_depth', 'qa_pass_rate', 'machine_silent'];
  return conditions.sort(
    (a, b) => order.indexOf(a.rule) - order.indexOf(b.rule) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
}

/** Which alerts begin (a condition with no open alert) and which end (an open alert whose condition is gone). */
export function alertChanges(
  openKeys: Iterable<string>,
  conditions: AlertCondition[],
): { began: AlertCondition[]; ended: string[] } {
  const open = new Set(openKeys);
  const holding = new Set(conditions.map((c) => c.key));
  return {
    began: conditions.filter((c) => !open.has(c.key)),
    ended: [...open].filter((k) => !holding.has(k)).sort(),
  };
}
