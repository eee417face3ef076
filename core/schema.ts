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
