import assert from 'node:assert/strict';
import {
  DEFAULT_ALERT_RULES,
  AlertReadings,
  alertChanges,
  evaluateAlerts,
  passRate,
} from '../../core/alerts';
import { parseDashboardAction } from '../../core/dashboard-actions';
import { FloorflowError } from '../../core/errors';

const now = new Date('2026-01-05T08:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60000);

function readings(overrides: Partial<AlertReadings> = {}): AlertReadings {
  return {
    queueDepths: [
      { domain: 'embossing', depth: 0 },
      { domain: 'processing', depth: 0 },
      { domain: 'engraving', depth: 0 },
    ],
    qa: { total: 0, passed: 0 },
    machines: [],
    ...overrides,
  };
}

describe('alert rules (core/alerts)', () => {
  it('a quiet floor raises no alert', () => {
    assert.deepEqual(evaluateAlerts(DEFAULT_ALERT_RULES, readings(), now), []);
  });

  it('a queue of 51 jobs raises queue_depth for its domain; exactly 50 does not (the default: depth > 50)', () => {
    const at50 = readings({ queueDepths: [{ domain: 'embossing', depth: 50 }] });
    assert.deepEqual(evaluateAlerts(DEFAULT_ALERT_RULES, at50, now), []);
    const at51 = readings({
      queueDepths: [
        { domain: 'embossing', depth: 51 },
        { domain: 'engraving', depth: 3 },
      ],
    });
    const [alert, ...rest] = evaluateAlerts(DEFAULT_ALERT_RULES, at51, now);
    assert.equal(rest.length, 0);
    assert.equal(alert.key, 'queue_depth:embossing');
    assert.equal(alert.rule, 'queue_depth');
    assert.match(alert.message, /embossing queue holds 51 jobs/);
  });

  it('a QA pass rate below 80 % raises qa_pass_rate; 80 % itself and no results at all do not', () => {
    assert.deepEqual(evaluateAlerts(DEFAULT_ALERT_RULES, readings({ qa: { total: 5, passed: 4 } }), now), []);
    assert.deepEqual(evaluateAlerts(DEFAULT_ALERT_RULES, readings({ qa: { total: 0, passed: 0 } }), now), []);
    const low = evaluateAlerts(DEFAULT_ALERT_RULES, readings({ qa: { total: 4, passed: 3 } }), now);
    assert.deepEqual(
      low.map((a) => [a.key, a.details.rate]),
      [['qa_pass_rate', 75]],
    );
  });

  it('too few QA results say nothing about the rate when qaMinResults asks for more', () => {
    const rules = { ...DEFAULT_ALERT_RULES, qaMinResults: 10 };
    assert.deepEqual(evaluateAlerts(rules, readings({ qa: { total: 3, passed: 0 } }), now), []);
  });

  it('a machine offline for more than 5 minutes is silent; one offline for 5 minutes or connected is not', () => {
    const machines = [
      { machineId: 'press-4', online: false, lastSeenAt: minutesAgo(6), registeredAt: minutesAgo(600) },
      { machineId: 'press-5', online: false, lastSeenAt: minutesAgo(5), registeredAt: minutesAgo(600) },
      { machineId: 'scanner-1', online: true, lastSeenAt: minutesAgo(60), registeredAt: minutesAgo(600) },
      { machineId: 'embosser-9', online: false, lastSeenAt: null, registeredAt: minutesAgo(30) },
    ];
    const alerts = evaluateAlerts(DEFAULT_ALERT_RULES, readings({ machines }), now);
    assert.deepEqual(
      alerts.map((a) => a.key),
      ['machine_silent:embosser-9', 'machine_silent:press-4'],
    );
    assert.match(alerts[1].message, /press-4 silent for 6 min/);
  });

  it('an alert begins when its condition appears and ends when it is gone, and an open one is not begun again', () => {
    const conditions = evaluateAlerts(
      DEFAULT_ALERT_RULES,
      readings({ queueDepths: [{ domain: 'processing', depth: 60 }], qa: { total: 10, passed: 1 } }),
      now,
    );
    const first = alertChanges([], conditions);
    assert.deepEqual(
      first.began.map((c) => c.key),
      ['queue_depth:processing', 'qa_pass_rate'],
    );
    assert.deepEqual(first.ended, []);
    const again = alertChanges(['queue_depth:processing', 'qa_pass_rate'], conditions);
    assert.deepEqual(again, { began: [], ended: [] });
    const cleared = alertChanges(['queue_depth:processing', 'qa_pass_rate'], conditions.slice(1));
    assert.deepEqual(cleared, { began: [], ended: ['queue_depth:processing'] });
  });

  it('passRate is a percentage with one decimal, null without results', () => {
    assert.equal(passRate({ total: 3, passed: 2 }), 66.7);
    assert.equal(passRate({ total: 0, passed: 0 }), null);
  });
});

describe('dashboard actions (core/dashboard-actions)', () => {
  it('reads "Send to Embosser" with its plates and machine', () => {
    assert.deepEqual(parseDashboardAction('emboss', { plate_ids: ['4', 5], machine_id: 'embosser-1' }), {
      action: 'emboss',
      plateIds: ['4', '5'],
      machineId: 'embosser-1',
    });
  });

  it('refuses an emboss without plates, a move to past without reason and an unknown action, with FF_INPUT_INVALID', () => {
    for (const [topic, payload] of [
      ['emboss', { plate_ids: [], machine_id: 'embosser-1' }],
      ['move_to_past', { product_id: '3' }],
      ['approve_design', { job_id: 'x' }],
      ['delete_everything', {}],
    ] as const) {
      assert.throws(
        () => parseDashboardAction(topic, payload),
        (err: unknown) => err instanceof FloorflowError && err.code === 'FF_INPUT_INVALID',
      );
    }
  });
});
