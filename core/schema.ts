// JSON-schema validation with ajv, compiled once per schema. Used for node configuration,
// HTTP bodies and MQTT payloads alike, so every rejection reads the same way.
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: false, strict: false });
addFormats(ajv);
const compiled = new WeakMap<object, ValidateFunction>();

export type JsonSchema = Record<string, unknown>;

export interface ValidationResult<T> {
  ok: boolean;
  value?: T;
  /** One readable line, e.g. "plate_ids must be array; machine_id is required". */
  error?: string;
}

export function validate<T>(schema: JsonSchema, value: unknown): ValidationResult<T> {
  let check = compiled.get(schema);
  if (!check) {
    check = ajv.compile(schema);
    compiled.set(schema, check);
  }
  if (check(value)) return { ok: true, value: value as T };
  return { ok: false, error: describeErrors(check.errors ?? []) };
}

export function describeErrors(errors: ErrorObject[]): string {
  return errors
    .map((e) => {
      const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
      if (e.keyword === 'required') {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        return `${where ? where + '.' : ''}${missing} is required`;
      }
      if (e.keyword === 'additionalProperties') {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        return `${where ? where + '.' : ''}${extra} is not allowed`;
      }
      return `${where || 'value'} ${e.message ?? 'is invalid'}`;
    })
    .join('; ');
}

export interface FieldError {
  /** Dotted path of the field (`files.0.file_id`), or '' for the record itself. */
  field: string;
  /** In plain words, e.g. "is required", "must be one of: ON, OFF". */
  reason: string;
}

export type FieldValidation<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** Like `validate`, with each problem as a field and a reason (per-row import reports). */
export function validateFields<T>(schema: JsonSchema, value: unknown): FieldValidation<T> {
  let check = compiled.get(schema);
  if (!check) {
    check = ajv.compile(schema);
    compiled.set(schema, check);
  }
  if (check(value)) return { ok: true, value: value as T };
  return { ok: false, errors: (check.errors ?? []).map(fieldErrorOf) };
}

function fieldErrorOf(e: ErrorObject): FieldError {
  const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
  const join = (name: string) => (where ? `${where}.${name}` : name);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { field: join(String(params.missingProperty)), reason: 'is required' };
    case 'additionalProperties':
      return { field: join(String(params.additionalProperty)), reason: 'is not a known field' };
    case 'enum':
      return { field: where, reason: `must be one of: ${(params.allowedValues as unknown[]).join(', ')}` };
    case 'type':
      return { field: where, reason: `must be ${article(String(params.type))}` };
    case 'minLength':
      return {
        field: where,
        reason:
          params.limit === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} characters`,
      };
    case 'maxLength':
      return { field: where, reason: `must have at most ${String(params.limit)} characters` };
    case 'minimum':
      return { field: where, reason: `must be ${String(params.limit)} or more` };
    case 'maximum':
      return { field: where, reason: `must be ${String(params.limit)} or less` };
    case 'pattern':
      return { field: where, reason: 'has characters that are not allowed' };
    case 'uniqueItems':
      return { field: where, reason: 'names the same value twice' };
    default:
      return { field: where, reason: e.message ?? 'is invalid' };
  }
}

function article(type: string): string {
  if (type === 'integer') return 'a whole number';
  if (type === 'array') return 'a list';
  if (type === 'object') return 'an object';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
