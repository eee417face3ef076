import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ENGRAVING_ORDER_SCHEMA,
  MAX_QA_ATTEMPTS,
  machineErrorOutcome,
  parseMachineEvent,
  priorityOf,
  qaOutcome,
  textProblem,
} from '../../core/engraving';
import { FloorflowError } from '../../core/errors';
import {
  PROCESSING_STAGES,
  queueStatusOf,
  retryAfterFailure,
  selectContent,
  simulateUsbWrite,
  stageAfter,
  stageIsDone,
  validateOrder,
  verifyWrite,
  writerFaultFor,
  checkWriterFaults,
} from '../../core/processing';
import { validate } from '../../core/schema';

const order = (details: Record<string, unknown> = {}, status = 'confirmed') => ({
  id: '1',
  order_number: 'ORD-1',
  status,
  details,
});

describe('processing rules', () => {
  it('a stage is skipped exactly when the last completed stage is it or a later one', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(null, ...PROCESSING_STAGES),
        fc.constantFrom(...PROCESSING_STAGES),
        (completed, stage) => {
          const expected =
            completed !== null && PROCESSING_STAGES.indexOf(completed) >= PROCESSING_STAGES.indexOf(stage);
          assert.equal(stageIsDone(completed, stage), expected);
        },
      ),
    );
  });

  it('the stage after the last completed one is the one that runs next, and none follows verification', () => {
    assert.equal(stageAfter(null), 'validation');
    assert.equal(stageAfter('content_selection'), 'usb_writing');
    assert.equal(stageAfter('verification'), undefined);
  });

  it('failed attempts retry after 5 s, 15 s, 60 s and the fourth failure fails, whatever the error code', () => {
    const error = new FloorflowError('FF_INPUT_INVALID', 'bad order');
    const decisions = [1, 2, 3, 4].map((attempt) => retryAfterFailure(attempt, error));
    assert.deepEqual(
      decisions.map((d) => (d.action === 'retry' ? d.delayMs : d.action)),
      [5000, 15000, 60000, 'dead-letter'],
    );
  });

  it('an order must be confirmed and its content a list to be processed', () => {
    assert.equal(validateOrder(order()), undefined);
    assert.match(validateOrder(order({}, 'pending')) ?? '', /not confirmed/);
    assert.match(validateOrder(order({ content: 'x' })) ?? '', /must be a list/);
  });

  it('content selection takes names and sized files, and an order without content gets one summary file', () => {
    assert.deepEqual(selectContent(order()).files, [{ name: 'ORD-1.txt', bytes: 1024 }]);
    const selection = selectContent(order({ content: ['a.mp4', { name: 'b.pdf', bytes: 10 }, 7] }));
    assert.deepEqual(selection.files, [
      { name: 'a.mp4', bytes: 1024 },
      { name: 'b.pdf', bytes: 10 },
    ]);
    assert.equal(selection.totalBytes, 1034);
  });

  it('verification accepts the simulated write of the selection and rejects a short or different one', () => {
    const selection = selectContent(order({ content: ['a', 'b'] }));
    const written = simulateUsbWrite(selection, 'usb-0');
    assert.equal(verifyWrite(selection, written), undefined);
    assert.match(verifyWrite(selection, { ...written, bytesWritten: 1 }) ?? '', /wrote 1 of 2048 bytes/);
    assert.match(verifyWrite(selection, { ...written, checksum: 'x' }) ?? '', /checksum mismatch/);
    assert.equal(verifyWrite(selection, undefined), 'nothing was written');
  });

  it("the simulated writer's fault profile fails only the orders it names, and only their first attempts", () => {
    const faults = [
      { orders: '^ORD-1$', fault: 'fail' as const, attempts: 2 },
      { orders: '^ORD-H', fault: 'hang' as const },
    ];
    assert.equal(writerFaultFor(faults, 'ORD-1', 2), 'fail');
    assert.equal(writerFaultFor(faults, 'ORD-1', 3), undefined);
    assert.equal(writerFaultFor(faults, 'ORD-10', 1), undefined);
    assert.equal(writerFaultFor(faults, 'ORD-HANG', 7), 'hang');
    assert.equal(writerFaultFor([], 'ORD-1', 1), undefined);
  });

  it('a fault profile with an order pattern that is no regular expression is refused', () => {
    assert.match(
      checkWriterFaults([{ orders: '(', fault: 'fail' }]) ?? '',
      /fault 1: orders is not a regular expression/,
    );
    assert.equal(checkWriterFaults([{ orders: '^ORD-', fault: 'hang' }]), undefined);
  });

  it('an order asking for a simulated failure in its details is validated like any other', () => {
    assert.equal(validateOrder(order({ simulate: { fail_stage: 'validation' } })), undefined);
  });

  it('the queue status counts jobs by status, with active jobs the ones processing', () => {
    const status = queueStatusOf(
      {
        byStatus: [
          { status: 'completed', count: 4 },
          { status: 'processing', count: 2 },
          { status: 'retry', count: 1 },
        ],
        avgDurationMinutes: 4.5,
      },
      3,
    );
    assert.deepEqual(status, {
      total: 7,
      pending: 0,
      processing: 2,
      completed: 4,
      failed: 0,
      retry: 1,
      activeJobs: 2,
      maxConcurrent: 3,
      dbStats: {
        total: 7,
        by_status: [
          { status: 'completed', count: 4 },
          { status: 'processing', count: 2 },
          { status: 'retry', count: 1 },
        ],
        avg_duration_minutes: 4.5,
      },
    });
  });
});

describe('engraving rules', () => {
  it('rush jobs get priority 1 and others 5', () => {
    assert.equal(priorityOf(true), 1);
    assert.equal(priorityOf(false), 5);
  });

  it('a text fits when it has at most the item’s lines, and the reason names both counts otherwise', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string(), { maxLength: 10 }),
        fc.integer({ min: 1, max: 8 }),
        (text, maxLines) => {
          const problem = textProblem(text, maxLines);
          if (text.length <= maxLines) assert.equal(problem, undefined);
          else
            assert.equal(
              problem,
              `text has ${text.length} lines; the item's engraving area holds at most ${maxLines}`,
            );
        },
      ),
    );
  });

  it('QA: a pass completes, failures re-engrave until the third, which escalates', () => {
    assert.equal(qaOutcome(1, true), 'complete');
    assert.equal(qaOutcome(1, false), 'reengrave');
    assert.equal(qaOutcome(MAX_QA_ATTEMPTS - 1, false), 'reengrave');
    assert.equal(qaOutcome(MAX_QA_ATTEMPTS, false), 'escalate');
  });

  it('machine errors reassign the job until the third, which escalates', () => {
    assert.deepEqual([1, 2, 3].map(machineErrorOutcome), ['reassign', 'reassign', 'escalate']);
  });

  it('machine events are read from JSON text or objects, with numeric or digit-string job ids, and anything else is not an event', () => {
    assert.deepEqual(parseMachineEvent('{"job_id": "12", "status": "completed"}'), {
      job_id: 12,
      status: 'completed',
    });
    assert.deepEqual(parseMachineEvent({ job_id: 3, status: 'failed', response: { error: 'x' } }), {
      job_id: 3,
      status: 'failed',
      response: { error: 'x' },
    });
    assert.equal(parseMachineEvent('not json'), undefined);
    assert.equal(parseMachineEvent({ job_id: 3, status: 'exploded' }), undefined);
    assert.equal(parseMachineEvent({ job_id: -1, status: 'completed' }), undefined);
  });

  it('the order schema requires customer, item and due date, and fills text and rush', () => {
    const ok = validate<Record<string, unknown>>(ENGRAVING_ORDER_SCHEMA, {
      customer_id: 'c',
      item_id: 'i',
      due_date: '2026-01-20',
    });
    assert.equal(ok.ok, true);
    assert.deepEqual(ok.value?.text, []);
    assert.equal(ok.value?.rush, false);
    const bad = validate(ENGRAVING_ORDER_SCHEMA, { item_id: 'i', due_date: 'soon', colour: 'red' });
    assert.equal(bad.ok, false);
    assert.match(bad.error ?? '', /customer_id is required/);
    assert.match(bad.error ?? '', /colour is not allowed/);
  });
});
