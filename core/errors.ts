// Errors with a stable code. Node-RED 4.1's Catch node exposes `error.code`, and retry
// policies match on it, so codes are part of the public contract: never rename one.
export type ErrorCode =
  | 'FF_CONFIG_INVALID'
  | 'FF_INPUT_INVALID'
  | 'FF_SCAN_UNPARSEABLE'
  | 'FF_NOT_FOUND'
  | 'FF_CONFLICT'
  | 'FF_TRANSITION_INVALID'
  | 'FF_MACHINE_OFFLINE'
  | 'FF_MACHINE_TIMEOUT'
  | 'FF_MACHINE_FAILED'
  | 'FF_DB_UNAVAILABLE'
  | 'FF_UNAUTHORIZED'
  | 'FF_FORBIDDEN'
  | 'FF_DRAINING'
  | 'FF_INTERNAL';

export class FloorflowError extends Error {
  readonly code: ErrorCode;
  /** false for errors that no retry can fix (bad input, invalid transition). */
  readonly retryable: boolean;
  readonly details?: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { retryable?: boolean; details?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = 'FloorflowError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

/** The HTTP status a FloorflowError maps to in the API's error shape. */
export function httpStatusOf(err: unknown): number {
  if (!(err instanceof FloorflowError)) return isDataException(err) ? 400 : 500;
  switch (err.code) {
    case 'FF_INPUT_INVALID':
    case 'FF_SCAN_UNPARSEABLE':
    case 'FF_CONFIG_INVALID':
      return 400;
    case 'FF_UNAUTHORIZED':
      return 401;
    case 'FF_FORBIDDEN':
      return 403;
    case 'FF_NOT_FOUND':
      return 404;
    case 'FF_CONFLICT':
    case 'FF_TRANSITION_INVALID':
      return 409;
    case 'FF_DRAINING':
    case 'FF_DB_UNAVAILABLE':
    case 'FF_MACHINE_OFFLINE':
      return 503;
    default:
      return 500;
  }
}

/**
 * A PostgreSQL data exception (SQLSTATE class 22: a NUL byte in text, a number out of
 * range, text that is not a valid value of the column's type): the request's values could
 * not be stored or compared, which is the caller's error, not the server's.
 */
export function isDataException(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code);
}
