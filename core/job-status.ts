// The job-status rules (docs/job-status.md, "Rules as implemented") as pure functions: which jobs a
// print-OS record or a scan touches, when a job counts as printed, marker gaps and the scanner
// double-send window (which source wins an operation is core/claims). The appliers in store/
// compute the same verdicts inside PostgreSQL, a batch at a time; evaluatePrintRecords and planScan
// are the reference they are tested against (tests/integration/job-status-sql.test.ts).
import { unstorableInValue } from './inbox';
import { normaliseOperations, parseFileId, parseScanCode, type ScanPatterns } from './scan-code';

export type SourceType = 'print_os' | 'scanner';
export type PrintStatus = 'PRINTED' | 'ABORTED';
/** A job's print state after a print-OS record; `pending` = nothing printed or aborted yet. */
export type JobPrintStatus = 'completed' | 'partial' | 'aborted';

/** The job id a file id names (`FILE_1_Labex_4604_5889_80` → `4604_5889`), or why there is none. */
export function jobIdOfFile(
  fileId: string,
  filePattern?: string,
): { ok: true; job_id: string } | { ok: false; reason: string } {
  const parsed = parseFileId(fileId, filePattern);
  return parsed.kind === 'file' ? { ok: true, job_id: parsed.job_id } : { ok: false, reason: parsed.reason };
}

/** What the press has done to one file so far, across every imposition that holds it. */
export interface FileState {
  printed: boolean;
  aborted: boolean;
}

export interface JobPrintVerdict {
  status: JobPrintStatus;
  /** The value `operations.print` takes; undefined = leave it as it is ("keep current"). */
  print: boolean | undefined;
  note: string;
}

/**
 * Completion: all files printed → print = true; some printed → print stays
 * false with a note; all aborted → false with an abort note; some aborted and none printed →
 * print kept, abort note. A file printed once stays printed when a later reprint is aborted.
 */
export function judgeJobPrint(total: number, printed: number, aborted: number): JobPrintVerdict {
  if (total > 0 && printed >= total)
    return { status: 'completed', print: true, note: `all ${total} files printed` };
  if (printed > 0) {
    const abortedPart = aborted > 0 ? `, ${aborted} aborted` : '';
    return {
      status: 'partial',
      print: false,
      note: `partially printed: ${printed} of ${total} files${abortedPart}`,
    };
  }
  if (total > 0 && aborted >= total)
    return { status: 'aborted', print: false, note: `all ${total} files aborted` };
  return { status: 'aborted', print: undefined, note: `${aborted} of ${total} files aborted, none printed` };
}

export interface PrintRecord {
  source_id: number;
  marker: number;
  imposition_id: string;
  status: PrintStatus;
}

/** A mapping row: a file of an imposition and its job, or why its file id names no job. */
export type MappedFile = { file_id: string; job_id: string } | { file_id: string; reason: string };

export interface PrintFacts {
  /** Files of each imposition in the records (absent = the imposition is not in the mapping). */
  impositionFiles: ReadonlyMap<string, readonly MappedFile[]>;
  /** Every file of each job, across all impositions. */
  jobFiles: ReadonlyMap<string, readonly string[]>;
  /** File states before the records. */
  fileStates: ReadonlyMap<string, FileState>;
  /** Jobs in jobmanager.jobs. */
  knownJobs: ReadonlySet<string>;
}

export interface JobPrintOutcome extends JobPrintVerdict {
  job_id: string;
}

export type RecordOutcome =
  | { kind: 'skipped'; source_id: number; reason: string }
  | {
      kind: 'applied';
      source_id: number;
      imposition_id: string;
      /** The imposition's print operation: completed (PRINTED) or aborted (ABORTED). */
      imposition_status: 'completed' | 'aborted';
      jobs: JobPrintOutcome[];
      /** Files and jobs left out, for the record's notes. */
      notes: string[];
    };

export interface PrintEvaluation {
  outcomes: RecordOutcome[];
  /** The file states the records changed, to write back. */
  changedFiles: Map<string, FileState>;
}

function hasJob(file: MappedFile): file is { file_id: string; job_id: string } {
  return 'job_id' in file;
}

/**
 * Applies print-OS records in marker order. Each record is judged against the
 * file states its predecessors left, so a batch gives the same outcomes as one record at a time.
 */
export function evaluatePrintRecords(records: readonly PrintRecord[], facts: PrintFacts): PrintEvaluation {
  const states = new Map<string, FileState>();
  const stateOf = (fileId: string): FileState =>
    states.get(fileId) ?? facts.fileStates.get(fileId) ?? { printed: false, aborted: false };
  const ordered = [...records].sort((a, b) => a.marker - b.marker || a.source_id - b.source_id);
  const outcomes: RecordOutcome[] = [];
  for (const record of ordered) {
    const files = facts.impositionFiles.get(record.imposition_id);
    if (!files || files.length === 0) {
      outcomes.push(
        skip(
          record,
          `unknown imposition ${JSON.stringify(record.imposition_id)}: no files in imposition_file_mapping`,
        ),
      );
      continue;
    }
    const parsed = files.filter(hasJob);
    const notes = files
      .filter((f) => !hasJob(f))
      .map((f) => `file ${f.file_id} skipped: ${'reason' in f ? f.reason : ''}`);
    if (parsed.length === 0) {
      outcomes.push(
        skip(record, `no parseable file id in imposition ${record.imposition_id}: ${notes.join('; ')}`),
      );
      continue;
    }
    for (const file of parsed) {
      const before = stateOf(file.file_id);
      const after =
        record.status === 'PRINTED'
          ? { printed: true, aborted: before.aborted }
          : { printed: before.printed, aborted: true };
      if (after.printed !== before.printed || after.aborted !== before.aborted)
        states.set(file.file_id, after);
    }
    const jobIds = [...new Set(parsed.map((f) => f.job_id))].sort();
    const unknown = jobIds.filter((id) => !facts.knownJobs.has(id));
    const known = jobIds.filter((id) => facts.knownJobs.has(id));
    if (known.length === 0) {
      outcomes.push(
        skip(
          record,
          `unknown job${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: not in jobmanager.jobs`,
        ),
      );
      continue;
    }
    if (unknown.length > 0) notes.push(`unknown jobs skipped: ${unknown.join(', ')}`);
    const jobs = known.map((jobId): JobPrintOutcome => {
      const all = new Set([
        ...(facts.jobFiles.get(jobId) ?? []),
        ...parsed.filter((f) => f.job_id === jobId).map((f) => f.file_id),
      ]);
      let printed = 0;
      let aborted = 0;
      for (const fileId of all) {
        const state = stateOf(fileId);
        if (state.printed) printed += 1;
        else if (state.aborted) aborted += 1;
      }
      return { job_id: jobId, ...judgeJobPrint(all.size, printed, aborted) };
    });
    outcomes.push({
      kind: 'applied',
      source_id: record.source_id,
      imposition_id: record.imposition_id,
      imposition_status: record.status === 'PRINTED' ? 'completed' : 'aborted',
      jobs,
      notes,
    });
  }
  return { outcomes, changedFiles: states };
}

function skip(record: { source_id: number }, reason: string): RecordOutcome {
  return { kind: 'skipped', source_id: record.source_id, reason };
}

// ---------------------------------------------------------------------------------------
// Scans: which jobs a code stands for
// ---------------------------------------------------------------------------------------

export interface ScanRecord {
  source_id: number;
  code_text: string;
  operations: unknown;
  scanned_at: Date;
}

/** What a scan's code asks the database: runlist ids to look up, and job ids whose runlist to find. */
export type ScanTarget =
  | { kind: 'runlist'; runlist_id: string; job?: { job_id: string; version_tag: string | null } }
  | { kind: 'job'; job_id: string; version_tag: string | null }
  | { kind: 'invalid'; reason: string };

export function scanTarget(code: string, patterns?: ScanPatterns): ScanTarget {
  const parsed = parseScanCode(code.trim(), patterns);
  switch (parsed.kind) {
    case 'runlist':
      return { kind: 'runlist', runlist_id: parsed.runlist_id };
    case 'ambiguous':
      return {
        kind: 'runlist',
        runlist_id: parsed.runlist_id,
        job: { job_id: parsed.job_id, version_tag: parsed.version_tag },
      };
    case 'job':
      return { kind: 'job', job_id: parsed.job_id, version_tag: parsed.version_tag };
    case 'file':
      return { kind: 'job', job_id: parsed.job_id, version_tag: null };
    default:
      return { kind: 'invalid', reason: parsed.reason };
  }
}

export interface ScanFacts {
  /** Runlists that exist, with their impositions. */
  runlistImpositions: ReadonlyMap<string, readonly string[]>;
  /** Jobs of each runlist (through its impositions' files). */
  runlistJobs: ReadonlyMap<string, readonly string[]>;
  /** Runlists holding each job (findRunlistByScan). */
  jobRunlists: ReadonlyMap<string, readonly string[]>;
  /** Jobs in jobmanager.jobs with their version tag. */
  knownJobs: ReadonlyMap<string, string | null>;
  /** operation_catalog: name → id. */
  catalog: ReadonlyMap<string, string>;
}

export type ScanPlan =
  | { kind: 'skipped'; source_id: number; reason: string }
  | {
      kind: 'applied';
      source_id: number;
      effective_at: Date;
      via: 'runlist' | 'job';
      runlist_ids: string[];
      impositions: string[];
      jobs: Array<{ job_id: string; version_tag: string | null }>;
      operations: Array<{ name: string; operation_id: string }>;
      notes: string[];
    };

/**
 * Resolution: a runlist scan updates every job of the runlist; a job scan updates its runlist's
 * jobs when the job is on a runlist, otherwise the job alone. A code that fits both a runlist and
 * a job pattern is a runlist only if that runlist exists.
 */
export function planScan(record: ScanRecord, target: ScanTarget, facts: ScanFacts): ScanPlan {
  const skipped = (reason: string): ScanPlan => ({ kind: 'skipped', source_id: record.source_id, reason });
  if (target.kind === 'invalid') return skipped(`unparseable code: ${target.reason}`);
  const ops = normaliseOperations(record.operations);
  if (!ops.ok) return skipped(`invalid operations: ${ops.reason}`);
  if (ops.operations.length === 0) return skipped('the scan names no completed operation');
  const notes: string[] = [];
  const operations = ops.operations.flatMap((name) => {
    const id = facts.catalog.get(name);
    if (id === undefined) notes.push(`unknown operation ${name} skipped`);
    return id === undefined ? [] : [{ name, operation_id: id }];
  });
  if (operations.length === 0)
    return skipped(`unknown operation${ops.operations.length > 1 ? 's' : ''} ${ops.operations.join(', ')}`);

  let runlists: string[];
  let single: { job_id: string; version_tag: string | null } | undefined;
  if (target.kind === 'runlist' && facts.runlistImpositions.has(target.runlist_id)) {
    runlists = [target.runlist_id];
  } else {
    if (target.kind === 'runlist' && !target.job) {
      return skipped(`unknown runlist ${target.runlist_id}: not in production_planner_paths`);
    }
    const job = target.kind === 'job' ? target : target.job!;
    runlists = [...(facts.jobRunlists.get(job.job_id) ?? [])].sort();
    if (runlists.length === 0) single = job;
  }
  const jobIds = single
    ? [single.job_id]
    : [...new Set(runlists.flatMap((r) => facts.runlistJobs.get(r) ?? []))].sort();
  const known = jobIds.filter((id) => facts.knownJobs.has(id));
  const unknown = jobIds.filter((id) => !facts.knownJobs.has(id));
  if (known.length === 0) {
    return skipped(
      jobIds.length === 0
        ? `runlist ${runlists.join(', ')} has no jobs`
        : `unknown job ${unknown.join(', ')}`,
    );
  }
  if (unknown.length > 0) notes.push(`unknown jobs skipped: ${unknown.join(', ')}`);
  return {
    kind: 'applied',
    source_id: record.source_id,
    effective_at: record.scanned_at,
    via: single ? 'job' : 'runlist',
    runlist_ids: runlists,
    impositions: [...new Set(runlists.flatMap((r) => facts.runlistImpositions.get(r) ?? []))].sort(),
    jobs: known.map((id) => ({
      job_id: id,
      version_tag:
        single && single.job_id === id && single.version_tag !== null
          ? single.version_tag
          : (facts.knownJobs.get(id) ?? null),
    })),
    operations,
    notes,
  };
}

// ---------------------------------------------------------------------------------------
// Markers
// ---------------------------------------------------------------------------------------

export interface MarkerGap {
  /** First missing marker. */
  from: number;
  /** Last missing marker. */
  to: number;
}

/** Missing integers between the lowest and highest of `markers` (any order, repeats allowed). */
export function findGaps(markers: readonly number[]): MarkerGap[] {
  const sorted = [...new Set(markers)].sort((a, b) => a - b);
  const gaps: MarkerGap[] = [];
  for (let i = 1; i < sorted.length; i += 1) {
    if (sorted[i] - sorted[i - 1] > 1) gaps.push({ from: sorted[i - 1] + 1, to: sorted[i] - 1 });
  }
  return gaps;
}

/** The lowest marker a poll re-reads: rows that committed late below the marker are still found. */
export function lookBackFrom(lastMarker: number, lookBack: number): number {
  return Math.max(0, lastMarker - Math.max(0, lookBack));
}

// ---------------------------------------------------------------------------------------
// Scan ingest
// ---------------------------------------------------------------------------------------

/**
 * Without a msg_id, a scanner that sends one scan twice (a bounce, a retry without an id) is
 * told apart from a real second scan only by time: the same code from the same machine within
 * the window is the same scan. Returns the earliest receipt time that still counts as a repeat.
 */
export function doubleSendWindowStart(now: Date, windowMs: number): Date {
  return new Date(now.getTime() - Math.max(0, windowMs));
}

export function isDoubleSend(previousAt: Date | undefined, now: Date, windowMs: number): boolean {
  return (
    previousAt !== undefined &&
    previousAt.getTime() > doubleSendWindowStart(now, windowMs).getTime() &&
    previousAt <= now
  );
}

/** A scan as stored in jobmanager.scanned_codes (machine_id comes from the connection, not from here). */
export interface IncomingScan {
  code_text: string;
  operations: string[] | Record<string, boolean>;
  scanned_at?: string;
  user_id?: string;
  msg_id?: string;
}

export type IncomingScanResult = { ok: true; scan: IncomingScan } | { ok: false; reason: string };

const MAX_CODE_LENGTH = 512;
const SCANNED_AT_YEARS = [1970, 9999] as const;

/**
 * Reads a scan payload (docs/job-status.md, "Scan payload"): a JSON object with `code`, or, from a serial scanner, the
 * bare code text. The code is kept as scanned; classifying it is scan-parser's job.
 */
export function readIncomingScan(payload: unknown): IncomingScanResult {
  let value: unknown = payload;
  if (Buffer.isBuffer(value)) value = value.toString('utf8');
  if (typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('{')) {
      try {
        value = JSON.parse(text) as unknown;
      } catch {
        return { ok: false, reason: 'the payload starts like JSON but is not valid JSON' };
      }
    } else {
      value = { code: text };
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'the payload must be a scan object with a code' };
  }
  const scan = value as Record<string, unknown>;
  const code =
    typeof scan.code === 'number' && Number.isSafeInteger(scan.code) ? String(scan.code) : scan.code;
  if (typeof code !== 'string' || code.trim() === '') return { ok: false, reason: 'the scan has no code' };
  if (code.length > MAX_CODE_LENGTH)
    return { ok: false, reason: `the code is longer than ${MAX_CODE_LENGTH} characters` };
  const operations = scan.operations ?? [];
  const checked = normaliseOperations(operations);
  if (!checked.ok) return { ok: false, reason: checked.reason };
  const out: IncomingScan = { code_text: code, operations: operations as string[] | Record<string, boolean> };
  if (scan.scanned_at !== undefined && scan.scanned_at !== null) {
    const at = typeof scan.scanned_at === 'string' ? Date.parse(scan.scanned_at) : NaN;
    if (Number.isNaN(at) || !/(Z|[+-]\d{2}:?\d{2})$/i.test(String(scan.scanned_at))) {
      return { ok: false, reason: 'scanned_at must be an ISO-8601 time with a zone' };
    }
    // Years outside 1970-9999 are a scanner's clock gone wrong, and beyond what ISO-8601 text
    // and the database agree on (year 99999 would be refused by the INSERT, scan after scan).
    const year = new Date(at).getUTCFullYear();
    if (year < SCANNED_AT_YEARS[0] || year > SCANNED_AT_YEARS[1]) {
      return {
        ok: false,
        reason: `scanned_at must be a time between the years ${SCANNED_AT_YEARS[0]} and ${SCANNED_AT_YEARS[1]}`,
      };
    }
    out.scanned_at = new Date(at).toISOString();
  }
  for (const field of ['user_id', 'msg_id'] as const) {
    const v = scan[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || v.trim() === '' || v.length > 200) {
      return { ok: false, reason: `${field} must be non-empty text of at most 200 characters` };
    }
    out[field] = v;
  }
  // PostgreSQL text and jsonb take neither NUL nor a lone UTF-16 surrogate: such a scan could
  // never be stored as typed data, so it is rejected (and kept raw) instead of failing its INSERT.
  const unstorable = unstorableInValue(
    { code: out.code_text, operations: out.operations, user_id: out.user_id, msg_id: out.msg_id },
    'the scan',
  );
  if (unstorable) return { ok: false, reason: `${unstorable}, which cannot be stored` };
  return { ok: true, scan: out };
}

/** The target of a scan scan-parser has already classified (its msg.payload). */
export function targetOfParsedScan(scan: {
  kind: string;
  runlist_id?: string;
  job_id?: string;
  version_tag?: string;
}): ScanTarget {
  switch (scan.kind) {
    case 'runlist':
      return typeof scan.runlist_id === 'string'
        ? { kind: 'runlist', runlist_id: scan.runlist_id }
        : { kind: 'invalid', reason: 'runlist scan without runlist_id' };
    case 'ambiguous':
      return typeof scan.runlist_id === 'string' && typeof scan.job_id === 'string'
        ? {
            kind: 'runlist',
            runlist_id: scan.runlist_id,
            job: { job_id: scan.job_id, version_tag: scan.version_tag ?? null },
          }
        : { kind: 'invalid', reason: 'ambiguous scan without runlist_id and job_id' };
    case 'job':
    case 'file':
      return typeof scan.job_id === 'string'
        ? {
            kind: 'job',
            job_id: scan.job_id,
            version_tag: scan.kind === 'job' ? (scan.version_tag ?? null) : null,
          }
        : { kind: 'invalid', reason: `${scan.kind} scan without job_id` };
    default:
      return { kind: 'invalid', reason: `not a parsed scan (kind ${JSON.stringify(scan.kind)})` };
  }
}

// ---------------------------------------------------------------------------------------
// HTTP bodies of the job-status routes (docs/job-status.md, "Routes")
// ---------------------------------------------------------------------------------------

export type BodyResult<T> = { ok: true; value: T } | { ok: false; error: string };

function bodyObject(body: unknown): Record<string, unknown> | string {
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) return 'the body must be a JSON object';
  return body as Record<string, unknown>;
}

function unknownFields(body: Record<string, unknown>, allowed: string[]): string | undefined {
  const extra = Object.keys(body).filter((k) => !allowed.includes(k));
  return extra.length > 0 ? `unknown field${extra.length > 1 ? 's' : ''} ${extra.join(', ')}` : undefined;
}

/** `POST /api/process-print-os` `{"force"?: boolean}`. */
export function readProcessPrintOsBody(body: unknown): BodyResult<{ force: boolean }> {
  const obj = bodyObject(body);
  if (typeof obj === 'string') return { ok: false, error: obj };
  const extra = unknownFields(obj, ['force']);
  if (extra) return { ok: false, error: extra };
  if (obj.force !== undefined && typeof obj.force !== 'boolean')
    return { ok: false, error: 'force must be true or false' };
  return { ok: true, value: { force: obj.force === true } };
}

export type StatusSource = 'both' | 'print_os' | 'scanner';

/** `POST /api/process-status-updates` `{"source": "both" | "print_os" | "scanner"}` (default both). */
export function readProcessStatusBody(body: unknown): BodyResult<{ source: StatusSource }> {
  const obj = bodyObject(body);
  if (typeof obj === 'string') return { ok: false, error: obj };
  const extra = unknownFields(obj, ['source']);
  if (extra) return { ok: false, error: extra };
  const source = obj.source ?? 'both';
  if (source !== 'both' && source !== 'print_os' && source !== 'scanner') {
    return { ok: false, error: 'source must be "both", "print_os" or "scanner"' };
  }
  return { ok: true, value: { source } };
}

/** Admin reprocess: `{"source": "print_os" | "scanner", "from_marker": integer >= 0}`. */
export function readReprocessBody(body: unknown): BodyResult<{ source: SourceType; from_marker: number }> {
  const obj = bodyObject(body);
  if (typeof obj === 'string') return { ok: false, error: obj };
  const extra = unknownFields(obj, ['source', 'from_marker']);
  if (extra) return { ok: false, error: extra };
  if (obj.source !== 'print_os' && obj.source !== 'scanner')
    return { ok: false, error: 'source must be "print_os" or "scanner"' };
  if (typeof obj.from_marker !== 'number' || !Number.isSafeInteger(obj.from_marker) || obj.from_marker < 0) {
    return { ok: false, error: 'from_marker must be a whole number of at least 0' };
  }
  return { ok: true, value: { source: obj.source, from_marker: obj.from_marker } };
}

/** A job id from the URL: non-empty, at most 200 characters. */
export function readJobId(value: unknown): BodyResult<string> {
  if (typeof value !== 'string' || value.trim() === '' || value.length > 200) {
    return { ok: false, error: 'jobId must be a job id of at most 200 characters' };
  }
  return { ok: true, value };
}
