import postgres from 'postgres';

// The one place where failures become HTTP statuses: domain errors thrown by the order code,
// SQLSTATEs raised by PostgreSQL, and connection failures of PostgreSQL or Redis.

export type ErrorCode =
  | 'MALFORMED_JSON'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'UNKNOWN_VARIANT'
  | 'PAYLOAD_TOO_LARGE'
  | 'VALIDATION_FAILED'
  | 'UNKNOWN_PRODUCT'
  | 'OFF_SHELF'
  | 'PRICE_CHANGED'
  | 'SNAPSHOT_CHANGED'
  | 'OUT_OF_STOCK'
  | 'COUPON_INVALID'
  | 'POINTS_INSUFFICIENT'
  | 'TOTAL_MISMATCH'
  | 'SERIALIZATION_FAILURE'
  | 'CONFLICT'
  | 'TIMEOUT'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL';

const statusOf: Record<ErrorCode, number> = {
  MALFORMED_JSON: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  UNKNOWN_VARIANT: 404,
  PAYLOAD_TOO_LARGE: 413,
  VALIDATION_FAILED: 422,
  UNKNOWN_PRODUCT: 422,
  OFF_SHELF: 409,
  PRICE_CHANGED: 409,
  SNAPSHOT_CHANGED: 409,
  OUT_OF_STOCK: 409,
  COUPON_INVALID: 409,
  POINTS_INSUFFICIENT: 409,
  TOTAL_MISMATCH: 409,
  SERIALIZATION_FAILURE: 409,
  CONFLICT: 409,
  TIMEOUT: 503,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL: 500,
};

export type ErrorDetails = Record<string, unknown>;

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
    /** Seconds after which a retry is worth it; sent as Retry-After. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = statusOf[code];
  }
}

const SERIALIZATION_SQLSTATES = new Set(['40001', '40P01']);

export function isSerializationFailure(err: unknown): boolean {
  return err instanceof postgres.PostgresError && SERIALIZATION_SQLSTATES.has(err.code);
}

// postgres.js connection errors carry these codes; node's socket errors carry the E* ones.
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND',
]);
// admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections, database does not exist
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '3D000']);

function isRedisError(err: Error): boolean {
  return err.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|enableOfflineQueue/.test(err.message);
}

/** Turns anything thrown while serving a request into a client-facing AppError. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof postgres.PostgresError) return fromSqlState(err);
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_CODES.has(code)) {
      return new AppError('SERVICE_UNAVAILABLE', 'the database is unavailable', {}, 1);
    }
    if (isRedisError(err)) return new AppError('SERVICE_UNAVAILABLE', 'redis is unavailable', {}, 1);
  }
  return new AppError('INTERNAL', 'internal error');
}

function fromSqlState(err: postgres.PostgresError): AppError {
  if (SERIALIZATION_SQLSTATES.has(err.code)) {
    return new AppError('SERIALIZATION_FAILURE',
      'the order conflicted with concurrent orders; retry it', { sqlstate: err.code }, 1);
  }
  if (err.code === '23514') {
    // check_violation: a concurrency control let a race through to the last line of defence.
    if (err.constraint_name === 'product_stock_not_negative') {
      return new AppError('OUT_OF_STOCK', 'a product sold out while the order was placed');
    }
    if (err.constraint_name === 'points_balance_not_negative') {
      return new AppError('POINTS_INSUFFICIENT', 'the points balance changed while the order was placed');
    }
    return new AppError('CONFLICT', 'the order violates a data constraint', { constraint: err.constraint_name });
  }
  if (err.code === '23505') {
    return new AppError('CONFLICT', 'the order conflicts with existing data', { constraint: err.constraint_name });
  }
  if (err.code === '57014') return new AppError('TIMEOUT', 'the database statement timed out', {}, 1);
  if (UNAVAILABLE_SQLSTATES.has(err.code)) {
    return new AppError('SERVICE_UNAVAILABLE', 'the database is unavailable', { sqlstate: err.code }, 1);
  }
  return new AppError('INTERNAL', 'internal error');
}

export function errorBody(err: AppError) {
  return { error: { code: err.code, message: err.message, ...err.details } };
}
