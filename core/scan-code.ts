// Scan codes as the floor's scanners send them: scanner noise stripped, GS1 elements split, the
// code classified by configurable patterns, operations normalised. Pure, and the parse functions
// are total: every input yields a result or a reason, nothing throws. Deciding an ambiguous code needs the database, so that is the
// job-mapper's; this module only says that the code is ambiguous.

/**
 * Regular-expression sources (as typed in the editor, without slashes or flags). Each must match
 * the whole code; an empty source turns that kind of code off.
 * - `runlist`: the whole match is the runlist id, or the named group `runlist_id` if present.
 * - `job`: named groups `job_id` and `version_tag` are required.
 * - `file`: named groups `version` and `job_id` are required, `rest` is optional.
 */
export interface ScanPatterns {
  runlist: string;
  job: string;
  file: string;
}

/**
 * The plant's standard formats. Runlist ids have no fixed syntax: a runlist is told from a job
 * code by looking the runlist up. So the default runlist pattern accepts any plain identifier, and a
 * `job_id_version_tag` code is reported as ambiguous until a narrower runlist pattern is set.
 */
export const DEFAULT_SCAN_PATTERNS: Readonly<ScanPatterns> = Object.freeze({
  runlist: '[A-Za-z0-9][A-Za-z0-9_.-]{0,127}',
  job: '(?<job_id>\\d+_\\d+)_(?<version_tag>\\d+)',
  file: 'FILE_(?<version>[^_]+)_Labex_(?<job_id>\\d+_\\d+)(?:_(?<rest>.*))?',
});

export interface JobCode {
  kind: 'job';
  job_id: string;
  version_tag: string;
}

export interface RunlistCode {
  kind: 'runlist';
  runlist_id: string;
}

export interface FileCode {
  kind: 'file';
  file_id: string;
  job_id: string;
  version: string;
  /** What follows the job id (`80` in `FILE_1_Labex_4604_5889_80`); empty when absent. */
  rest: string;
}

/** The code fits both the runlist and the job pattern; looking the runlist up decides. */
export interface AmbiguousCode {
  kind: 'ambiguous';
  runlist_id: string;
  job_id: string;
  version_tag: string;
}

export interface Unparseable {
  kind: 'unparseable';
  /** One readable sentence for the operator, safe to log (control characters escaped). */
  reason: string;
}

export type ScanCode = JobCode | RunlistCode | FileCode | AmbiguousCode;
export type ScanCodeResult = ScanCode | Unparseable;

/** What a scan carries besides its code, normalised. Absent optional fields are omitted. */
export interface ScanContext {
  /** The code as classified: scanner noise stripped and, for GS1, the chosen element. */
  code: string;
  /** Completed operations: sorted, de-duplicated, lower-case. */
  operations: string[];
  /** ISO-8601 in UTC. */
  scanned_at?: string;
  user_id?: string;
  msg_id?: string;
  /** The other elements of a GS1 code (separated by GS, 0x1D), in scan order. */
  gs1_elements?: string[];
}

export type ParsedScan = ScanCode & ScanContext;
export type ScanResult = ParsedScan | Unparseable;

/** The scan object a scanner publishes (docs/job-status.md, "Scan payload"). */
export interface ScanObject {
  code: string;
  operations?: string[] | Record<string, boolean>;
  scanned_at?: string;
  user_id?: string;
  msg_id?: string;
}

export type OperationsResult = { ok: true; operations: string[] } | { ok: false; reason: string };

const GS = '\x1D';
// AIM ISO/IEC 15424 symbology identifier: `]`, a symbology letter, a modifier character.
const AIM_PREFIX = /^\][A-Za-z][0-9A-Za-z]/;
const NUL = /\0/g;

/**
 * Removes what scanners add around a code: AIM symbology identifiers (`]C1`, `]d2`, `]Q3`),
 * surrounding whitespace including the CR/LF suffix, a byte-order mark, and NUL padding.
 * GS separators are kept. Repeated until nothing changes, so a doubly prefixed code (scanner and
 * middleware both adding an identifier) is cleaned too and the function is idempotent.
 */
export function stripScannerNoise(raw: string): string {
  let code = raw;
  for (;;) {
    const next = code.replace(NUL, '').trim().replace(AIM_PREFIX, '');
    if (next === code) return code;
    code = next;
  }
}

/** The non-empty elements of a GS1 code; a code without GS is one element. */
export function splitGs1(code: string): string[] {
  return code
    .split(GS)
    .map((element) => element.trim())
    .filter((element) => element !== '');
}

type Role = keyof ScanPatterns;

const REQUIRED_GROUPS: Record<Role, readonly string[]> = {
  runlist: [],
  job: ['job_id', 'version_tag'],
  file: ['version', 'job_id'],
};

/** A compiled pattern; null when the pattern is turned off. */
type Compiled = { ok: true; regex: RegExp | null } | { ok: false; reason: string };

// Patterns arrive with every message; compiling each time would dominate the parse. The cache is
// bounded because patterns are configuration, and a few distinct ones is all a runtime sees.
const compiledCache = new Map<string, Compiled>();
const CACHE_LIMIT = 64;

function compilePattern(role: Role, source: unknown): Compiled {
  if (typeof source !== 'string') return { ok: false, reason: `the ${role} pattern must be a string` };
  const key = `${role}\0${source}`;
  let compiled = compiledCache.get(key);
  if (!compiled) {
    compiled = compileUncached(role, source);
    if (compiledCache.size >= CACHE_LIMIT) compiledCache.clear();
    compiledCache.set(key, compiled);
  }
  return compiled;
}

function compileUncached(role: Role, source: string): Compiled {
  if (source === '') return { ok: true, regex: null };
  let regex: RegExp;
  let probe: RegExp;
  try {
    // Compiled alone first: wrapping could make an unbalanced source such as `a)(b` valid.
    new RegExp(source);
    regex = new RegExp(`^(?:${source})$`);
    // An empty alternative always matches, and the match lists every named group of the source.
    probe = new RegExp(`(?:${source})|`);
  } catch (err) {
    return { ok: false, reason: `the ${role} pattern is not a valid regular expression: ${messageOf(err)}` };
  }
  const groups = probe.exec('')?.groups ?? {};
  const missing = REQUIRED_GROUPS[role].filter((name) => !(name in groups));
  if (missing.length > 0) {
    const needed = missing.map((name) => `(?<${name}>…)`).join(' and ');
    return {
      ok: false,
      reason: `the ${role} pattern needs the named group${missing.length > 1 ? 's' : ''} ${needed}`,
    };
  }
  return { ok: true, regex };
}

interface CompiledPatterns {
  runlist: RegExp | null;
  job: RegExp | null;
  file: RegExp | null;
}

const ROLES: readonly Role[] = ['runlist', 'job', 'file'];

type PatternsResult = { kind: 'compiled'; patterns: CompiledPatterns } | Unparseable;

// A node passes the same patterns object with every scan: its result is kept with the object, and
// used while the object still holds the same three sources (a caller may change them).
const compiledByObject = new WeakMap<object, { sources: unknown[]; result: PatternsResult }>();

function compilePatterns(patterns: ScanPatterns): PatternsResult {
  if (typeof patterns !== 'object' || patterns === null) {
    return unparseable('the scan patterns are not configured');
  }
  const kept = compiledByObject.get(patterns);
  if (
    kept &&
    kept.sources[0] === patterns.runlist &&
    kept.sources[1] === patterns.job &&
    kept.sources[2] === patterns.file
  )
    return kept.result;
  const result = compilePatternsUncached(patterns);
  compiledByObject.set(patterns, { sources: [patterns.runlist, patterns.job, patterns.file], result });
  return result;
}

function compilePatternsUncached(patterns: ScanPatterns): PatternsResult {
  const compiled: CompiledPatterns = { runlist: null, job: null, file: null };
  const problems: string[] = [];
  for (const role of ROLES) {
    const pattern = compilePattern(role, patterns[role]);
    if (pattern.ok) compiled[role] = pattern.regex;
    else problems.push(pattern.reason);
  }
  if (problems.length > 0) return unparseable(problems.join('; '));
  if (ROLES.every((role) => compiled[role] === null)) {
    return unparseable('all three scan patterns are empty, so no code can match');
  }
  return { kind: 'compiled', patterns: compiled };
}

/**
 * Checks configured patterns: undefined when usable, otherwise one sentence naming every problem
 * (invalid syntax, a missing named group, all patterns empty). Nodes call it at construction.
 */
export function checkScanPatterns(patterns: ScanPatterns): string | undefined {
  const compiled = compilePatterns(patterns);
  return compiled.kind === 'unparseable' ? compiled.reason : undefined;
}

/**
 * Checks one pattern alone: undefined when usable (an empty one turns its kind of code off),
 * otherwise why not. The editor asks the runtime this as a pattern is typed, so the check has
 * one implementation.
 */
export function scanPatternProblem(role: keyof ScanPatterns, source: unknown): string | undefined {
  if (!ROLES.includes(role)) return `there is no ${String(role)} pattern`;
  const compiled = compilePattern(role, source);
  return compiled.ok ? undefined : compiled.reason;
}

function unparseable(reason: string): Unparseable {
  return { kind: 'unparseable', reason };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A value quoted for a reason: control characters escaped, long values shortened. */
function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

function matchFile(regex: RegExp | null, code: string): FileCode | undefined {
  const groups = regex?.exec(code)?.groups;
  if (!groups?.version || !groups.job_id) return undefined;
  return {
    kind: 'file',
    file_id: code,
    job_id: groups.job_id,
    version: groups.version,
    rest: groups.rest ?? '',
  };
}

function matchJob(regex: RegExp | null, code: string): JobCode | undefined {
  const groups = regex?.exec(code)?.groups;
  if (!groups?.job_id || !groups.version_tag) return undefined;
  return { kind: 'job', job_id: groups.job_id, version_tag: groups.version_tag };
}

function matchRunlist(regex: RegExp | null, code: string): string | undefined {
  const match = regex?.exec(code);
  if (!match) return undefined;
  return match.groups?.runlist_id || match[0] || undefined;
}

function classify(code: string, patterns: CompiledPatterns): ScanCodeResult {
  if (code === '') return unparseable('the code is empty');
  // A file id has a fixed prefix, so a code that fits the file pattern is a file id even when
  // the permissive default runlist pattern fits it as well.
  const file = matchFile(patterns.file, code);
  if (file) return file;
  const job = matchJob(patterns.job, code);
  const runlistId = matchRunlist(patterns.runlist, code);
  if (job && runlistId !== undefined) {
    return { kind: 'ambiguous', runlist_id: runlistId, job_id: job.job_id, version_tag: job.version_tag };
  }
  if (job) return job;
  if (runlistId !== undefined) return { kind: 'runlist', runlist_id: runlistId };
  const active = ROLES.filter((role) => patterns[role]);
  return unparseable(`${quote(code)} matches none of the ${active.join(', ')} patterns`);
}

/**
 * Classifies one clean code (see stripScannerNoise and splitGs1; this function removes nothing).
 * A code that fits the file pattern is a file id; one that fits both the runlist and the job
 * pattern is ambiguous.
 */
export function parseScanCode(code: string, patterns: ScanPatterns = DEFAULT_SCAN_PATTERNS): ScanCodeResult {
  const compiled = compilePatterns(patterns);
  if (compiled.kind === 'unparseable') return compiled;
  if (typeof code !== 'string') return unparseable('the code must be a string');
  return classify(code, compiled.patterns);
}

/**
 * Parses a file id of the print pipeline, `FILE_<version>_Labex_<job_id>_<rest>`
 * (`FILE_1_Labex_4604_5889_80` → version `1`, job `4604_5889`, rest `80`). Surrounding
 * whitespace from padded database columns is ignored.
 */
export function parseFileId(
  fileId: string,
  filePattern: string = DEFAULT_SCAN_PATTERNS.file,
): FileCode | Unparseable {
  const compiled = compilePattern('file', filePattern);
  if (!compiled.ok) return unparseable(compiled.reason);
  if (!compiled.regex) return unparseable('the file pattern is empty');
  if (typeof fileId !== 'string') return unparseable('the file id must be a string');
  const trimmed = fileId.trim();
  return matchFile(compiled.regex, trimmed) ?? unparseable(`${quote(trimmed)} is not a file id`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function operationName(name: string): string {
  return name.trim().toLowerCase();
}

/**
 * Accepts operations as a list of names (`["coating"]`) or as an object of name → boolean
 * (`{"coating": true, "print": false}`) and returns the names that are done: trimmed,
 * lower-case, sorted, de-duplicated. Missing operations (undefined or null) are none.
 */
export function normaliseOperations(ops: unknown): OperationsResult {
  if (ops === undefined || ops === null) return { ok: true, operations: [] };
  const done = new Set<string>();
  if (Array.isArray(ops)) {
    for (const [index, name] of ops.entries()) {
      if (typeof name !== 'string') {
        return { ok: false, reason: `operations[${index}] must be an operation name, got ${describe(name)}` };
      }
      const normalised = operationName(name);
      if (normalised === '') return { ok: false, reason: `operations[${index}] is an empty name` };
      done.add(normalised);
    }
  } else if (isPlainObject(ops)) {
    const seen = new Map<string, boolean>();
    for (const [name, value] of Object.entries(ops)) {
      if (typeof value !== 'boolean') {
        return { ok: false, reason: `operations.${name} must be true or false, got ${describe(value)}` };
      }
      const normalised = operationName(name);
      if (normalised === '') return { ok: false, reason: 'operations has an empty name' };
      // {"Coating": true, "coating": false} says two things about one operation; guessing which
      // one the operator meant would record work that may not have been done.
      if (seen.has(normalised) && seen.get(normalised) !== value) {
        return { ok: false, reason: `operations gives ${quote(normalised)} both true and false` };
      }
      seen.set(normalised, value);
      if (value) done.add(normalised);
    }
  } else {
    return {
      ok: false,
      reason: `operations must be a list of names or an object of name: true/false, got ${describe(ops)}`,
    };
  }
  return { ok: true, operations: [...done].sort() };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `the text ${quote(value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

const ISO_8601_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

// A time without a zone would be read in the server's zone, which shifts every scan by hours
// after a move or at a DST change; rejecting it makes the scanner's configuration visible.
function normaliseScannedAt(value: unknown): { ok: true; iso: string } | { ok: false; reason: string } {
  if (typeof value !== 'string' || !ISO_8601_WITH_ZONE.test(value)) {
    return { ok: false, reason: `scanned_at must be an ISO-8601 time with a zone, got ${describe(value)}` };
  }
  const time = Date.parse(value);
  if (Number.isNaN(time)) return { ok: false, reason: `scanned_at ${quote(value)} is not a real time` };
  return { ok: true, iso: new Date(time).toISOString() };
}

type TextResult = { ok: true; text: string } | { ok: false; reason: string };

/**
 * Turns a payload into code text. Node-RED's MQTT in node, set to auto-detect, parses a payload
 * such as `12345` as JSON, so a numeric code arrives as a number; a safe integer is turned back
 * into its text, other numbers have lost digits and are rejected.
 */
function codeText(value: unknown, what: string, expected: string): TextResult {
  if (typeof value === 'string') return { ok: true, text: value };
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return { ok: true, text: String(value) };
    return { ok: false, reason: `${what} is the number ${String(value)}, which cannot be a code exactly` };
  }
  if (value instanceof Uint8Array) {
    try {
      return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(value) };
    } catch {
      return { ok: false, reason: `${what} is binary data that is not UTF-8 text` };
    }
  }
  return { ok: false, reason: `${what} must be ${expected}, got ${describe(value)}` };
}

const KIND_RANK: Record<ScanCode['kind'], number> = { file: 0, job: 1, ambiguous: 2, runlist: 3 };

type Chosen = { kind: 'chosen'; code: string; result: ScanCode; others: string[] };

/**
 * Picks the code out of GS1 elements. A GS1 label carries other data too (a GTIN, a lot), which
 * the permissive runlist pattern would also accept; so the element that fits the most specific
 * pattern wins (file, then job, then ambiguous, then runlist), the first one on a tie.
 */
function chooseElement(elements: string[], patterns: CompiledPatterns): Chosen | Unparseable {
  if (elements.length === 0) return unparseable('the code is empty after removing scanner noise');
  if (elements.length === 1) {
    const result = classify(elements[0], patterns);
    return result.kind === 'unparseable' ? result : { kind: 'chosen', code: elements[0], result, others: [] };
  }
  let best: { index: number; result: ScanCode } | undefined;
  elements.forEach((element, index) => {
    const result = classify(element, patterns);
    if (result.kind === 'unparseable') return;
    if (!best || KIND_RANK[result.kind] < KIND_RANK[best.result.kind]) best = { index, result };
  });
  if (!best) {
    const shown = elements.map(quote).join(', ');
    return unparseable(`none of the ${elements.length} GS1 elements matches a pattern: ${shown}`);
  }
  const chosen = best.index;
  return {
    kind: 'chosen',
    code: elements[chosen],
    result: best.result,
    others: elements.filter((_, index) => index !== chosen),
  };
}

function readContext(scan: Record<string, unknown>): Omit<ScanContext, 'code'> | Unparseable {
  const ops = normaliseOperations(scan.operations);
  if (!ops.ok) return unparseable(ops.reason);
  const context: Omit<ScanContext, 'code'> = { operations: ops.operations };
  if (scan.scanned_at !== undefined && scan.scanned_at !== null) {
    const scannedAt = normaliseScannedAt(scan.scanned_at);
    if (!scannedAt.ok) return unparseable(scannedAt.reason);
    context.scanned_at = scannedAt.iso;
  }
  for (const field of ['user_id', 'msg_id'] as const) {
    const value = scan[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' || value.trim() === '') {
      return unparseable(`${field} must be non-empty text, got ${describe(value)}`);
    }
    context[field] = value;
  }
  return context;
}

function parseScanUnguarded(input: unknown, patterns: ScanPatterns): ScanResult {
  const compiled = compilePatterns(patterns);
  if (compiled.kind === 'unparseable') return compiled;

  const isObject = isPlainObject(input);
  if (isObject && (input.code === undefined || input.code === null)) {
    return unparseable('the scan has no code');
  }
  const text = isObject
    ? codeText(input.code, 'the code', 'text')
    : codeText(input, 'the payload', 'a code or a scan object');
  if (!text.ok) return unparseable(text.reason);

  const cleaned = stripScannerNoise(text.text);
  const chosen = chooseElement(splitGs1(cleaned), compiled.patterns);
  if (chosen.kind === 'unparseable') {
    return /^[[{]/.test(cleaned)
      ? unparseable(`${chosen.reason}; the text looks like JSON, so parse it before this node`)
      : chosen;
  }

  const context = isObject ? readContext(input) : { operations: [] };
  if ('kind' in context) return context;
  const scan: ParsedScan = { ...chosen.result, code: chosen.code, ...context };
  if (chosen.others.length > 0) scan.gs1_elements = chosen.others;
  return scan;
}

/**
 * Parses a scan: a code as text (or a number, or UTF-8 bytes) or the scan object a scanner
 * publishes. Never throws: whatever cannot be read comes back as `unparseable` with a reason.
 */
export function parseScan(input: unknown, patterns: ScanPatterns = DEFAULT_SCAN_PATTERNS): ScanResult {
  try {
    return parseScanUnguarded(input, patterns);
  } catch (err) {
    // Payloads come from other nodes and may be objects whose getters throw; a parse that
    // throws would lose the message, so the failure becomes a reason like any other.
    return unparseable(`the scan could not be read: ${messageOf(err)}`);
  }
}
