import assert from 'node:assert/strict';
import fc from 'fast-check';
import { authorityFor, claimWins, resolveClaims, type OperationClaim } from '../../core/claims';

describe('claim precedence (core/claims)', () => {
  const at = (h: number) => new Date(Date.UTC(2026, 0, 5, h));
  const claim = (source_type: OperationClaim['source_type'], h: number): OperationClaim => ({
    value: true,
    source_type,
    source_id: h,
    effective_at: at(h),
  });

  it('Print OS is the authority for print, the scanner for every other operation', () => {
    assert.equal(authorityFor('print'), 'print_os');
    assert.equal(authorityFor('coating'), 'scanner');
  });
  it('an authoritative claim beats a later one from another source', () => {
    assert.equal(claimWins('print', claim('print_os', 8), claim('scanner', 9)), false);
    assert.equal(claimWins('print', claim('scanner', 9), claim('print_os', 8)), true);
    assert.equal(claimWins('coating', claim('scanner', 8), claim('print_os', 9)), false);
  });
  it('between claims of the same standing the later time wins', () => {
    assert.equal(claimWins('coating', claim('scanner', 9), claim('scanner', 8)), false);
    assert.equal(claimWins('coating', claim('scanner', 8), claim('scanner', 9)), true);
  });
  it('the winner does not depend on the order claims arrive in (property)', () => {
    const arb = fc.uniqueArray(
      fc.record({
        source: fc.constantFrom<'print_os' | 'scanner'>('print_os', 'scanner'),
        h: fc.integer({ min: 0, max: 23 }),
      }),
      {
        minLength: 1,
        maxLength: 8,
        selector: (c) => c.h,
      },
    );
    fc.assert(
      fc.property(arb, fc.constantFrom('print', 'coating'), (claims, op) => {
        const winner = (list: typeof claims) => {
          let current: OperationClaim | undefined;
          for (const c of list) {
            const incoming = claim(c.source, c.h);
            if (claimWins(op, current, incoming)) current = incoming;
          }
          return current;
        };
        assert.deepEqual(winner(claims), winner([...claims].reverse()));
      }),
    );
  });

  it('a sequence is judged one claim at a time, each against the claim its predecessors left', () => {
    const { steps, final } = resolveClaims('coating', claim('scanner', 9), [
      claim('scanner', 8),
      claim('scanner', 10),
      claim('scanner', 10),
      claim('print_os', 23),
    ]);
    assert.deepEqual(
      steps.map((s) => [s.applies, s.against?.source_id]),
      [
        [false, 9],
        [true, 9],
        [true, 10],
        [false, 10],
      ],
    );
    assert.equal(final?.source_id, 10);
  });
  it('once an authoritative claim stands, no claim of another source applies', () => {
    const { steps } = resolveClaims('print', undefined, [
      claim('scanner', 8),
      claim('print_os', 5),
      claim('scanner', 20),
      claim('print_os', 4),
      claim('print_os', 6),
    ]);
    assert.deepEqual(
      steps.map((s) => s.applies),
      [true, true, false, false, true],
    );
  });
  it('the result of a sequence is the last claim that applied (property)', () => {
    const arb = fc.array(
      fc.record({
        source: fc.constantFrom<'print_os' | 'scanner' | 'api'>('print_os', 'scanner', 'api'),
        h: fc.integer({ min: 0, max: 23 }),
      }),
      { maxLength: 10 },
    );
    fc.assert(
      fc.property(
        fc.option(
          arb.map((a) => a[0]),
          { nil: undefined },
        ),
        arb,
        fc.constantFrom('print', 'coating'),
        (start, list, op) => {
          const first = start ? claim(start.source, start.h) : undefined;
          const incoming = list.map((c) => claim(c.source, c.h));
          const { steps, final } = resolveClaims(op, first, incoming);
          const applied = incoming.filter((_, i) => steps[i].applies);
          assert.equal(final, applied.length > 0 ? applied[applied.length - 1] : first);
        },
      ),
    );
  });
});
