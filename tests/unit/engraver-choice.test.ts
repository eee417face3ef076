// Which engraver takes a job and how long it engraves (core/engraver-choice), and the plain
// words a job that needs a person carries (core/engraving).
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DEFAULT_ENGRAVER_SETTINGS,
  type EngraverCandidate,
  type JobToPlace,
  chooseEngraver,
  engraverSettingsOf,
  estimateEngraveSeconds,
} from '../../core/engraver-choice';
import { machineFailureReason, workAllowanceMs } from '../../core/engraving';

const job = (fields: Partial<JobToPlace> = {}): JobToPlace => ({
  lines: 2,
  hasArtwork: false,
  requires: [],
  ...fields,
});

const engraver = (
  machineId: string,
  settings: Record<string, unknown> = {},
  busyForSeconds = 0,
): EngraverCandidate => ({
  machineId,
  settings: engraverSettingsOf(settings),
  queueLength: busyForSeconds > 0 ? 1 : 0,
  busyForSeconds,
});

describe('engraver choice', () => {
  it('reads an engraver registered without settings as one that does plain jobs at the default speed', () => {
    assert.deepEqual(engraverSettingsOf({}), DEFAULT_ENGRAVER_SETTINGS);
    assert.deepEqual(engraverSettingsOf(null), DEFAULT_ENGRAVER_SETTINGS);
    assert.deepEqual(
      engraverSettingsOf({ capabilities: ['rotary', 3], seconds_per_line: -1, cancel_command: true }),
      { ...DEFAULT_ENGRAVER_SETTINGS, capabilities: ['rotary'], cancelCommand: true },
    );
  });

  it('estimates setup, each line (at least one) and the artwork', () => {
    const s = engraverSettingsOf({ setup_seconds: 30, seconds_per_line: 60, artwork_seconds: 200 });
    assert.equal(estimateEngraveSeconds({ lines: 3, hasArtwork: false }, s), 210);
    assert.equal(estimateEngraveSeconds({ lines: 0, hasArtwork: true }, s), 290);
  });

  it('only an engraver with every capability the item needs can take it', () => {
    const choice = chooseEngraver(job({ requires: ['rotary'] }), [
      engraver('flatbed-1', { seconds_per_line: 10 }),
      engraver('rotary-1', { capabilities: ['rotary', 'laser'] }),
    ]);
    assert.equal(choice?.machineId, 'rotary-1');
    assert.equal(
      chooseEngraver(job({ requires: ['deep'] }), [engraver('rotary-1', { capabilities: ['rotary'] })]),
      undefined,
    );
  });

  it('the engraver that finishes soonest wins: a fast busy one over a slow free one, a free one over a busy equal one', () => {
    const slowFree = engraver('slow', { seconds_per_line: 600 });
    const fastBusy = engraver('fast', { seconds_per_line: 30 }, 120);
    assert.equal(chooseEngraver(job(), [slowFree, fastBusy])?.machineId, 'fast');
    assert.equal(chooseEngraver(job(), [engraver('b'), engraver('a', {}, 10)])?.machineId, 'b');
    assert.equal(chooseEngraver(job(), [engraver('b'), engraver('a')])?.machineId, 'a', 'ties go by id');
  });

  it('avoids the engraver that last failed the job unless it is the only one that can take it', () => {
    assert.equal(
      chooseEngraver(job({ lastFailedMachine: 'a' }), [engraver('a'), engraver('b', {}, 900)])?.machineId,
      'b',
    );
    assert.equal(chooseEngraver(job({ lastFailedMachine: 'a' }), [engraver('a')])?.machineId, 'a');
  });

  it('property: the choice is capable, and no capable engraver (other than a just-failed one) finishes sooner', () => {
    const candidate = fc.record({
      machineId: fc.constantFrom('e1', 'e2', 'e3', 'e4', 'e5'),
      caps: fc.subarray(['rotary', 'laser', 'deep']),
      perLine: fc.integer({ min: 0, max: 600 }),
      busy: fc.integer({ min: 0, max: 3600 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(candidate, { selector: (c) => c.machineId, maxLength: 5 }),
        fc.subarray(['rotary', 'laser']),
        fc.integer({ min: 0, max: 10 }),
        fc.option(fc.constantFrom('e1', 'e2')),
        (raw, requires, lines, lastFailed) => {
          const candidates = raw.map((c) =>
            engraver(c.machineId, { capabilities: c.caps, seconds_per_line: c.perLine }, c.busy),
          );
          const j = job({ requires, lines, lastFailedMachine: lastFailed });
          const choice = chooseEngraver(j, candidates);
          const capable = candidates.filter((c) =>
            requires.every((r) => c.settings.capabilities.includes(r)),
          );
          if (capable.length === 0) return choice === undefined;
          if (!choice) return false;
          const chosen = candidates.find((c) => c.machineId === choice.machineId)!;
          if (!capable.includes(chosen)) return false;
          const rivals = capable.filter((c) => c.machineId !== lastFailed);
          if (rivals.length > 0 && chosen.machineId === lastFailed) return false;
          return (rivals.length > 0 ? rivals : capable).every(
            (c) => c.busyForSeconds + estimateEngraveSeconds(j, c.settings) >= choice.finishInSeconds,
          );
        },
      ),
    );
  });
});

describe('engraving deadlines and reasons', () => {
  it('an engraver may stay silent twice the estimate, and never less than 15 minutes', () => {
    assert.equal(workAllowanceMs(null), 15 * 60 * 1000);
    assert.equal(workAllowanceMs(300), 15 * 60 * 1000);
    assert.equal(workAllowanceMs(1200), 40 * 60 * 1000);
  });

  it('a machine failure reads as the machine said it, never as JSON', () => {
    assert.equal(
      machineFailureReason('engraver-1', { error: 'die misaligned', attempt: 4 }),
      'engraver-1 reported a failure: die misaligned; check the engraver and the item, then retry or cancel the job',
    );
    assert.match(machineFailureReason('engraver-1', { code: 7 }), /reported a failure: no reason given;/);
  });
});
