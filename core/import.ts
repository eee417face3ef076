// Reading plant data for import (plates, jobs with their files, impositions and runlists,
// products, engraving items, orders) from CSV or JSON into checked records, with every problem
// as a row, a field and a reason in plain words. Pure: writing the records is store/import.ts's.
import { parseCsv } from './csv';
import { lineExcerpt } from './excerpt';
import { unstorableInText } from './inbox';
import { type FieldError, type JsonSchema, validateFields } from './schema';
import { DEFAULT_SCAN_PATTERNS, parseFileId } from './scan-code';

export const IMPORT_KINDS = ['plates', 'jobs', 'products', 'engraving-items', 'orders'] as const;
export type ImportKind = (typeof IMPORT_KINDS)[number];

export function isImportKind(value: string): value is ImportKind {
  return (IMPORT_KINDS as readonly string[]).includes(value);
}

/** Most rows one import takes: a bigger file is split, so one mistake does not hold a whole day. */
export const MAX_IMPORT_ROWS = 20000;

/**
 * Deepest nesting a record may have (an engraving area's fonts, an order's details): the
 * checks, the copy and PostgreSQL's jsonb all walk a value recursively, and a deeper one would
 * exhaust their stacks instead of being refused.
 */
export const MAX_RECORD_DEPTH = 32;

export const PLATE_POSITIONS = ['single', 'front', 'rear'] as const;
/** Statuses an import may give a plate; the embossing ones are the embossing job's to set. */
export const IMPORTABLE_PLATE_STATUSES = [
  'in_production',
  'ready_for_embossing',
  'embossed',
  'in_storage',
] as const;

export interface PlateRecord {
  plate_number: string;
  batch_code: string;
  /** A plate pair shares its number: front and rear are two plates. */
  position: (typeof PLATE_POSITIONS)[number];
  status?: (typeof IMPORTABLE_PLATE_STATUSES)[number];
  unavailable_reason?: string | null;
}

export interface JobFileRecord {
  file_id: string;
  imposition_id: string;
  runlist_id?: string;
}

export interface JobRecord {
  job_id: string;
  version_tag?: string;
  /** Planned operations by name (print, coating, kiss_cut, ...), in order. */
  operations: string[];
  files: JobFileRecord[];
}

export interface ProductRecord {
  product_code: string;
  name: string;
  description?: string | null;
  state?: 'ON' | 'OFF';
}

export interface EngravingItemRecord {
  id: string;
  name: string;
  stock_available: number;
  max_lines: number;
  engraving_area?: Record<string, unknown>;
}

export interface OrderRecord {
  order_number: string;
  status?: 'pending' | 'cancelled';
  details?: Record<string, unknown>;
}

export interface ImportRecords {
  plates: PlateRecord;
  jobs: JobRecord;
  products: ProductRecord;
  'engraving-items': EngravingItemRecord;
  orders: OrderRecord;
}

export type ImportRecord = ImportRecords[ImportKind];

export interface ImportRowError {
  /** 1-based: the n-th record of the file (the header of a CSV file is not a record). */
  row: number;
  /** CSV only: the line of the file the record starts on. */
  line?: number;
  /** The column or field, '' when the whole row is meant. */
  field: string;
  reason: string;
}

export interface ImportRow<K extends ImportKind = ImportKind> {
  row: number;
  line?: number;
  record: ImportRecords[K];
}

export type ParsedImport<K extends ImportKind = ImportKind> =
  | { ok: true; rows: Array<ImportRow<K>>; errors: ImportRowError[] }
  /** The file as a whole cannot be read (not CSV or JSON, no header, unknown columns). */
  | { ok: false; error: string };

const text = (max: number): JsonSchema => ({ type: 'string', minLength: 1, maxLength: max });
const identifier: JsonSchema = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' };

export const IMPORT_SCHEMAS: Readonly<Record<ImportKind, JsonSchema>> = {
  plates: {
    type: 'object',
    additionalProperties: false,
    required: ['plate_number', 'batch_code'],
    properties: {
      plate_number: text(64),
      batch_code: text(64),
      position: { enum: [...PLATE_POSITIONS], default: 'single' },
      status: { enum: [...IMPORTABLE_PLATE_STATUSES] },
      unavailable_reason: { type: ['string', 'null'], maxLength: 500 },
    },
  },
  jobs: {
    type: 'object',
    additionalProperties: false,
    required: ['job_id'],
    properties: {
      job_id: identifier,
      version_tag: { type: 'string', minLength: 1, maxLength: 64 },
      operations: {
        type: 'array',
        uniqueItems: true,
        maxItems: 32,
        items: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[a-z0-9_]+$' },
        default: [],
      },
      files: {
        type: 'array',
        maxItems: 1000,
        default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['file_id', 'imposition_id'],
          properties: { file_id: identifier, imposition_id: identifier, runlist_id: identifier },
        },
      },
    },
  },
  products: {
    type: 'object',
    additionalProperties: false,
    required: ['product_code', 'name'],
    properties: {
      product_code: identifier,
      name: text(200),
      description: { type: ['string', 'null'], maxLength: 2000 },
      state: { enum: ['ON', 'OFF'] },
    },
  },
  'engraving-items': {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'name', 'stock_available', 'max_lines'],
    properties: {
      id: identifier,
      name: text(200),
      stock_available: { type: 'integer', minimum: 0, maximum: 1000000 },
      max_lines: { type: 'integer', minimum: 1, maximum: 100 },
      engraving_area: { type: 'object' },
    },
  },
  orders: {
    type: 'object',
    additionalProperties: false,
    required: ['order_number'],
    properties: {
      order_number: identifier,
      status: { enum: ['pending', 'cancelled'] },
      details: { type: 'object' },
    },
  },
};

type ColumnType = 'string' | 'integer' | 'list' | 'json';

/** The columns of each kind's CSV file and how a cell becomes a value. */
export const CSV_COLUMNS: Readonly<Record<ImportKind, Readonly<Record<string, ColumnType>>>> = {
  plates: {
    plate_number: 'string',
    batch_code: 'string',
    position: 'string',
    status: 'string',
    unavailable_reason: 'string',
  },
  jobs: {
    job_id: 'string',
    version_tag: 'string',
    operations: 'list',
    file_id: 'string',
    imposition_id: 'string',
    runlist_id: 'string',
  },
  products: { product_code: 'string', name: 'string', description: 'string', state: 'string' },
  'engraving-items': {
    id: 'string',
    name: 'string',
    stock_available: 'integer',
    max_lines: 'integer',
    engraving_area: 'json',
  },
  // Columns other than these become the order's details (customer, content, ...).
  orders: { order_number: 'string', status: 'string', content: 'list' },
};

function cellValue(type: ColumnType, raw: string): { value?: unknown; reason?: string } {
  const cell = raw.trim();
  // An empty cell is a value not given: on an update it keeps what is there.
  if (cell === '') return {};
  switch (type) {
    case 'integer':
      // Not a number stays text, so the schema names the field: "must be a whole number".
      return { value: /^-?\d+$/.test(cell) ? Number(cell) : cell };
    case 'list':
      return {
        value: cell
          .split(';')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      };
    case 'json':
      try {
        return { value: JSON.parse(cell) as unknown };
      } catch {
        return { reason: 'is not valid JSON' };
      }
    default:
      return { value: cell };
  }
}

/** A CSV row as the record the JSON form of the kind would hold. */
function csvRecord(
  kind: ImportKind,
  header: string[],
  cells: string[],
): { record: Record<string, unknown>; errors: FieldError[] } {
  const columns = CSV_COLUMNS[kind];
  const record: Record<string, unknown> = {};
  const errors: FieldError[] = [];
  const details: Record<string, unknown> = {};
  header.forEach((column, i) => {
    const type = columns[column];
    const { value, reason } = cellValue(type ?? 'string', cells[i] ?? '');
    if (reason) errors.push({ field: column, reason });
    if (value === undefined) return;
    if (type === undefined) details[column] = value;
    else record[column] = value;
  });
  if (kind === 'orders' && (Object.keys(details).length > 0 || record.content !== undefined)) {
    record.details = { ...details, ...(record.content === undefined ? {} : { content: record.content }) };
    delete record.content;
  }
  if (kind === 'jobs') {
    const { file_id, imposition_id, runlist_id } = record;
    delete record.file_id;
    delete record.imposition_id;
    delete record.runlist_id;
    // One CSV row is one file of a job; a row without a file declares the job alone.
    if (file_id !== undefined || imposition_id !== undefined || runlist_id !== undefined) {
      record.files = [{ file_id, imposition_id, runlist_id }].map((f) =>
        Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)),
      );
    }
  }
  return { record, errors };
}

/** Whether `value` nests objects or lists deeper than `limit`, found without recursion. */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== 'object' || item === null) continue;
    if (depth >= limit) return true;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}

/** A name from the file (a column) as an error may quote it: short, control characters escaped. */
function shown(name: string): string {
  return lineExcerpt(name, 40);
}

/**
 * Text the database cannot store (a NUL character, half of a UTF-16 pair), field by field:
 * refused here with its field, rather than by PostgreSQL with an encoding error.
 */
function unstorableFields(value: unknown, field = ''): FieldError[] {
  const join = (name: string) => (field ? `${field}.${name}` : name);
  if (typeof value === 'string') {
    const problem = unstorableInText(value);
    return problem ? [{ field, reason: `holds ${problem}, which cannot be stored: remove it` }] : [];
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => unstorableFields(item, join(String(i))));
  if (typeof value === 'object' && value !== null)
    return Object.entries(value).flatMap(([key, item]): FieldError[] => {
      const problem = unstorableInText(key);
      if (problem)
        return [{ field, reason: `has a field name holding ${problem}, which cannot be stored: remove it` }];
      return unstorableFields(item, join(key));
    });
  return [];
}

/** The record a row names, by its kind's natural key, and what the plant calls one. */
const NATURAL_KEY: Readonly<Record<ImportKind, { noun: string; key(record: ImportRecord): string }>> = {
  plates: {
    noun: 'plate',
    key: (r) =>
      JSON.stringify([
        (r as PlateRecord).batch_code,
        (r as PlateRecord).plate_number,
        (r as PlateRecord).position,
      ]),
  },
  jobs: { noun: 'job', key: (r) => (r as JobRecord).job_id },
  products: { noun: 'product', key: (r) => (r as ProductRecord).product_code },
  'engraving-items': { noun: 'engraving item', key: (r) => (r as EngravingItemRecord).id },
  orders: { noun: 'order', key: (r) => (r as OrderRecord).order_number },
};

/**
 * A record named twice in one file: the first row goes in, a repeat is reported (two rows with
 * other values for one record would otherwise leave whichever came last, unseen). A job's CSV
 * file repeats the job on each of its files' rows, so those are not repeats.
 */
function refuseRepeats<K extends ImportKind>(
  kind: K,
  format: 'csv' | 'json',
  parsed: { rows: Array<ImportRow<K>>; errors: ImportRowError[] },
): { rows: Array<ImportRow<K>>; errors: ImportRowError[] } {
  if (kind === 'jobs' && format === 'csv') return parsed;
  const { noun, key } = NATURAL_KEY[kind];
  const first = new Map<string, number>();
  const rows: Array<ImportRow<K>> = [];
  const errors = [...parsed.errors];
  for (const row of parsed.rows) {
    const k = key(row.record);
    const earlier = first.get(k);
    if (earlier === undefined) {
      first.set(k, row.row);
      rows.push(row);
    } else {
      errors.push({
        row: row.row,
        ...(row.line === undefined ? {} : { line: row.line }),
        field: '',
        reason: `names the same ${noun} as row ${earlier}: a file lists each record once`,
      });
    }
  }
  return { rows, errors };
}

/** Checks that go beyond the schema: a job's files must be files of that job. */
function domainErrors(kind: ImportKind, record: ImportRecord): FieldError[] {
  if (kind !== 'jobs') return [];
  const job = record as JobRecord;
  return job.files.flatMap((file, i): FieldError[] => {
    const parsed = parseFileId(file.file_id, DEFAULT_SCAN_PATTERNS.file);
    const field = `files.${i}.file_id`;
    if (parsed.kind === 'unparseable')
      return [{ field, reason: 'is not a file id of the form FILE_<version>_Labex_<job_id>_<rest>' }];
    if (parsed.job_id !== job.job_id)
      return [{ field, reason: `names job ${parsed.job_id}, not ${job.job_id}` }];
    return [];
  });
}

function checkRecord<K extends ImportKind>(
  kind: K,
  value: unknown,
  row: number,
  line: number | undefined,
  format: 'csv' | 'json',
): { row?: ImportRow<K>; errors: ImportRowError[] } {
  const at = (e: FieldError): ImportRowError => ({
    row,
    ...(line === undefined ? {} : { line }),
    // In a CSV file a job's file is its own columns.
    field: format === 'csv' ? e.field.replace(/^files\.0\./, '') : e.field,
    reason: e.reason,
  });
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { errors: [at({ field: '', reason: 'must be an object with the fields of one record' })] };
  if (nestedDeeperThan(value, MAX_RECORD_DEPTH))
    return { errors: [at({ field: '', reason: `is nested deeper than ${MAX_RECORD_DEPTH} levels` })] };
  const unstorable = unstorableFields(value);
  if (unstorable.length > 0) return { errors: unstorable.map(at) };
  // ajv fills defaults in place: validate a copy, never the caller's object.
  const checked = validateFields<ImportRecords[K]>(IMPORT_SCHEMAS[kind], structuredClone(value));
  if (!checked.ok) return { errors: checked.errors.map(at) };
  const problems = domainErrors(kind, checked.value);
  if (problems.length > 0) return { errors: problems.map(at) };
  return { row: { row, ...(line === undefined ? {} : { line }), record: checked.value }, errors: [] };
}

/** Reads a CSV file of `kind`: a header row naming the columns, then one record per row. */
export function parseImportCsv<K extends ImportKind>(kind: K, csv: string): ParsedImport<K> {
  const parsed = parseCsv(csv);
  if (!parsed.ok) return { ok: false, error: `line ${parsed.line}: ${parsed.reason}` };
  const [head, ...records] = parsed.records;
  if (!head) return { ok: false, error: 'the file is empty: it needs a header row naming the columns' };
  const header = head.cells.map((c) => c.trim());
  const known = CSV_COLUMNS[kind];
  const unknown = kind === 'orders' ? [] : header.filter((c) => !(c in known));
  if (unknown.length > 0)
    return {
      ok: false,
      error: `unknown column${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map(shown).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''} for ${kind}; the columns are ${Object.keys(known).join(', ')}`,
    };
  const twice = header.filter((c, i) => header.indexOf(c) !== i);
  if (twice.length > 0) return { ok: false, error: `column ${shown(twice[0])} is named twice` };
  if (records.length > MAX_IMPORT_ROWS)
    return { ok: false, error: `${records.length} rows: import at most ${MAX_IMPORT_ROWS} at a time` };
  const rows: Array<ImportRow<K>> = [];
  const errors: ImportRowError[] = [];
  records.forEach((r, i) => {
    const row = i + 1;
    if (r.cells.length > header.length) {
      errors.push({
        row,
        line: r.line,
        field: '',
        reason: `has ${r.cells.length} cells for ${header.length} columns`,
      });
      return;
    }
    const { record, errors: cellErrors } = csvRecord(kind, header, r.cells);
    if (cellErrors.length > 0) {
      errors.push(...cellErrors.map((e) => ({ row, line: r.line, ...e })));
      return;
    }
    const result = checkRecord(kind, record, row, r.line, 'csv');
    if (result.row) rows.push(result.row);
    errors.push(...result.errors);
  });
  return { ok: true, ...refuseRepeats(kind, 'csv', { rows, errors }) };
}

/** Reads the JSON form of `kind`: a list of records (already parsed from the file or the request). */
export function parseImportJson<K extends ImportKind>(kind: K, value: unknown): ParsedImport<K> {
  if (!Array.isArray(value)) return { ok: false, error: `the file must be a JSON list of ${kind} records` };
  if (value.length > MAX_IMPORT_ROWS)
    return { ok: false, error: `${value.length} records: import at most ${MAX_IMPORT_ROWS} at a time` };
  const rows: Array<ImportRow<K>> = [];
  const errors: ImportRowError[] = [];
  value.forEach((entry, i) => {
    const result = checkRecord(kind, entry, i + 1, undefined, 'json');
    if (result.row) rows.push(result.row);
    errors.push(...result.errors);
  });
  return { ok: true, ...refuseRepeats(kind, 'json', { rows, errors }) };
}

/** Reads a file's text by its format. */
export function parseImportText<K extends ImportKind>(
  kind: K,
  format: 'csv' | 'json',
  body: string,
): ParsedImport<K> {
  if (format === 'csv') return parseImportCsv(kind, body);
  let value: unknown;
  try {
    value = JSON.parse(body.charCodeAt(0) === 0xfeff ? body.slice(1) : body);
  } catch (err) {
    return { ok: false, error: `not valid JSON: ${(err as Error).message}` };
  }
  return parseImportJson(kind, value);
}

/** One line per problem, as the CLI prints them: "row 3 (line 4), batch_code: is required". */
export function describeRowError(e: ImportRowError): string {
  const where = `row ${e.row}${e.line !== undefined && e.line !== e.row + 1 ? ` (line ${e.line})` : ''}`;
  return e.field ? `${where}, ${e.field}: ${e.reason}` : `${where}: ${e.reason}`;
}
