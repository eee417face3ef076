// Which source wins an operation flag of a job (docs/job-status.md), as pure functions: one claim
// against the current one, and a sequence of claims against a starting claim. The appliers in
// store/ compute the same inside PostgreSQL (store/job-status-claims.ts); the property test in
// tests/integration/job-status-claims.test.ts holds the two to the same answers.

export type ClaimSource = 'print_os' | 'scanner' | 'api';

export interface OperationClaim {
  value: boolean;
  source_type: ClaimSource;
  source_id: number | null;
  /** When it happened: the print's completion time or the scan time. */
  effective_at: Date;
}

/** Print OS has the last word on `print`, the scanner on every manual operation. */
export function authorityFor(operation: string): 'print_os' | 'scanner' {
  return operation === 'print' ? 'print_os' : 'scanner';
}

/**
 * True when `incoming` should replace `current`. The authoritative source beats any other; between
 * two claims of the same standing the later time wins, and on a tie the newer record.
 */
export function claimWins(
  operation: string,
  current: OperationClaim | undefined,
  incoming: OperationClaim,
): boolean {
  if (!current) return true;
  const authority = authorityFor(operation);
  const currentAuth = current.source_type === authority;
  const incomingAuth = incoming.source_type === authority;
  if (currentAuth !== incomingAuth) return incomingAuth;
  return incoming.effective_at.getTime() >= current.effective_at.getTime();
}

export interface ClaimStep {
  /** The incoming claim replaced the current one. */
  applies: boolean;
  /** The claim it was judged against (the one that stands when it does not apply). */
  against: OperationClaim | undefined;
}

/**
 * Claims on one operation of one job, in record order, each judged against the claim its
 * predecessors left: what a batch of records does, one record at a time. Returns a step per
 * claim and the claim that stands at the end.
 */
export function resolveClaims(
  operation: string,
  start: OperationClaim | undefined,
  incoming: readonly OperationClaim[],
): { steps: ClaimStep[]; final: OperationClaim | undefined } {
  let current = start;
  const steps = incoming.map((claim): ClaimStep => {
    const against = current;
    const applies = claimWins(operation, current, claim);
    if (applies) current = claim;
    return { applies, against };
  });
  return { steps, final: current };
}
