import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ReplyError } from 'ioredis';
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
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'IDEMPOTENCY_KEY_IN_USE'
  | 'ORDER_NOT_PENDING'
  | 'RATE_LIMITED'
  | 'SERIALIZATION_FAILURE'
  | 'CONFLICT'
  | 'TIMEOUT'
  | 'SERVICE_BUSY'
  | 'SERVICE_UNAVAILABLE'
  | 'OUTCOME_UNKNOWN'
  | 'CLIENT_CLOSED_REQUEST'
  | 'INTERNAL';

/** Each code's HTTP status; the API description groups the codes of each route by it. */
export const statusOf: Record<ErrorCode, ContentfulStatusCode> = {
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
  IDEMPOTENCY_KEY_REUSED: 422,
  IDEMPOTENCY_KEY_IN_USE: 409,
  ORDER_NOT_PENDING: 409,
  RATE_LIMITED: 429,
  SERIALIZATION_FAILURE: 409,
  CONFLICT: 409,
  TIMEOUT: 503,
  SERVICE_BUSY: 503,
  SERVICE_UNAVAILABLE: 503,
  OUTCOME_UNKNOWN: 503,
  // The client hung up before its request was read; nobody receives this answer (nginx's 499).
  CLIENT_CLOSED_REQUEST: 499 as ContentfulStatusCode,
  INTERNAL: 500,
};

export const ERROR_CODES = Object.keys(statusOf) as ErrorCode[];

export type ErrorDetails = Record<string, unknown>;

export class AppError extends Error {
  readonly status: ContentfulStatusCode;
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

// serialization_failure, deadlock_detected
const SERIALIZATION_SQLSTATES = new Set(['40001', '40P01']);

export function isSerializationFailure(err: unknown): boolean {
  return err instanceof postgres.PostgresError && SERIALIZATION_SQLSTATES.has(err.code);
}

// postgres.js's own codes for a connection it lost or closed: no other layer uses them.
const DRIVER_CONNECTION_CODES = new Set(['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT']);
// Node's socket codes, which the HTTP server's request stream (a client hanging up: ECONNRESET),
// Redis's socket and PostgreSQL's socket all share: a database outage only when postgres.js
// raised it for a query, which it marks by attaching the query (a non-enumerable `query`). It does
// not for `sql.reserve()` or a cancel, which the service therefore does not use.
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);

// admin_shutdown, crash_shutdown: the server is closing this connection.
const SHUTDOWN_SQLSTATES = new Set(['57P01', '57P02']);

/** A lost connection to PostgreSQL, or one the server is closing, rather than a refused statement. */
export function isConnectionLoss(err: unknown): boolean {
  if (err instanceof postgres.PostgresError) return SHUTDOWN_SQLSTATES.has(err.code);
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  return DRIVER_CONNECTION_CODES.has(code) || (SOCKET_CODES.has(code) && Object.hasOwn(err, 'query'));
}

export function idempotencyKeyInUse(): AppError {
  return new AppError('IDEMPOTENCY_KEY_IN_USE',
    'a request with this Idempotency-Key is still being processed; retry after it finishes', {}, 1);
}

/**
 * The connection died while COMMIT was on its way and nobody could tell afterwards whether it
 * committed. `result` is what the transaction would have returned.
 */
export class CommitOutcomeUnknown extends AppError {
  constructor(readonly result: unknown,
    message = 'the database connection was lost while the order was committing: it may have been placed') {
    // Retry-After: when to ask again (GET the order), not to place it again blindly.
    super('OUTCOME_UNKNOWN', message, {}, 1);
  }
}

// Redis replies that say the server cannot serve now (out of memory, a read-only replica,
// loading its data set, busy with a script, a failover): worth a retry, so 503.
const REDIS_UNAVAILABLE_REPLIES = new Set(['OOM', 'READONLY', 'LOADING', 'BUSY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN']);

// ioredis reports a closed or timed-out connection with plain errors, told apart only by text.

/** A Redis command that got no answer within REDIS_COMMAND_TIMEOUT_MS (it may still run later). */
export function isRedisCommandTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Command timed out';
}

/**
 * A command that was (or may have been) sent and got no answer: it may have run on the server.
 * Refused before sending (offline, not writeable) or by a reply error, it did not.
 */
export function isRedisOutcomeUnknown(err: unknown): boolean {
  return err instanceof Error && !(err instanceof ReplyError) &&
    (isRedisCommandTimeout(err) || err.name === 'MaxRetriesPerRequestError' || err.message.startsWith('Connection is closed'));
}

function redisUnavailable(err: Error): boolean {
  if (err instanceof ReplyError) return REDIS_UNAVAILABLE_REPLIES.has(redisReplyCode(err));
  return err.name === 'MaxRetriesPerRequestError' || isRedisCommandTimeout(err) ||
    /^(Connection is closed|Stream isn't writeable)|enableOfflineQueue/.test(err.message);
}

/** The error prefix of a Redis reply error (`WRONGTYPE`, `OOM`, ...). */
export function redisReplyCode(err: Error): string {
  return err instanceof ReplyError ? err.message.split(' ', 1)[0]! : '';
}

/** Where a request's failure could have come from besides the order code and its dependencies. */
export interface RequestOrigin {
  /** The error the request's body stream failed with when the body was cut off before its end (a hang-up). */
  requestAbortedWith?: unknown;
}

/** Turns anything thrown while serving a request into a client-facing AppError. */
export function toAppError(err: unknown, origin: RequestOrigin = {}): AppError {
  if (err instanceof AppError) return err;
  // Told apart by origin, not by its code: Node reports the hang-up as ECONNRESET, as it does a
  // PostgreSQL socket reset.
  // A body cut off is the stream's error where the body limit read it, or a 400 from the JSON
  // validator, which reads it otherwise and reports any failure to read as malformed JSON.
  const aborted = origin.requestAbortedWith;
  if (aborted !== undefined && (err === aborted || (err instanceof HTTPException && err.status === 400))) {
    return new AppError('CLIENT_CLOSED_REQUEST', 'the client closed the connection before its request was read');
  }
  // Hono's JSON body validator throws a 400 for a body JSON.parse refuses; it is the only source
  // of an HTTPException in this service.
  if (err instanceof HTTPException && err.status === 400) return new AppError('MALFORMED_JSON', 'the body is not valid JSON');
  if (err instanceof postgres.PostgresError) return fromSqlState(err);
  if (isConnectionLoss(err)) return new AppError('SERVICE_UNAVAILABLE', 'the database is unavailable', {}, 1);
  if (err instanceof Error) {
    if (redisUnavailable(err)) return new AppError('SERVICE_UNAVAILABLE', 'redis is unavailable', {}, 1);
  }
  return new AppError('INTERNAL', 'internal error');
}

// Every SQLSTATE class a request can meet, decided on purpose. What is left as 500 (syntax and
// access rule violations, class 42; features, 0A; ...) is a bug in this service, not something
// a client or an outage can cause.
function fromSqlState(err: postgres.PostgresError): AppError {
  const sqlstate = err.code;
  if (SERIALIZATION_SQLSTATES.has(sqlstate)) {
    return new AppError('SERIALIZATION_FAILURE',
      'the order conflicted with concurrent orders; retry it', { sqlstate }, 1);
  }
  if (sqlstate === '23514') {
    // check_violation: a concurrency control let a race through to the last line of defence.
    if (err.constraint_name === 'product_stock_not_negative') {
      return new AppError('OUT_OF_STOCK', 'a product sold out while the order was placed');
    }
    if (err.constraint_name === 'points_balance_not_negative') {
      return new AppError('POINTS_INSUFFICIENT', 'the points balance changed while the order was placed');
    }
  }
  // Integrity constraints (class 23): the data refused the order.
  if (sqlstate.startsWith('23')) {
    return new AppError('CONFLICT', 'the order conflicts with existing data', { constraint: err.constraint_name });
  }
  // lock_not_available: a row stayed locked past DB_LOCK_TIMEOUT_MS. query_canceled: a
  // statement ran past DB_STATEMENT_TIMEOUT_MS. idle_in_transaction_session_timeout.
  // Raised by lock_idempotency_key (sql/init.sql).
  if (sqlstate === 'ID409') return idempotencyKeyInUse();
  if (sqlstate === '55P03') return new AppError('TIMEOUT', 'a product or account stayed locked too long', { sqlstate }, 1);
  if (sqlstate === '57014') return new AppError('TIMEOUT', 'the database statement timed out', { sqlstate }, 1);
  if (sqlstate === '25P03') return new AppError('TIMEOUT', 'the transaction was idle too long', { sqlstate }, 1);
  // Data exceptions (class 22): a value the request validation let through but the column refuses.
  if (sqlstate.startsWith('22')) {
    return new AppError('VALIDATION_FAILED', 'a value in the request is out of range', { sqlstate });
  }
  // Connection exceptions (08), insufficient resources (53), program limits (54), operator
  // intervention (57: shutdown, crash, cannot connect now), system errors (58), internal (XX),
  // an unknown database (3D000), a read-only standby (25006): the database cannot serve now.
  if (['08', '53', '54', '57', '58', 'XX'].includes(sqlstate.slice(0, 2)) || ['3D000', '25006'].includes(sqlstate)) {
    return new AppError('SERVICE_UNAVAILABLE', 'the database is unavailable', { sqlstate }, 1);
  }
  return new AppError('INTERNAL', 'internal error');
}

export function errorBody(err: AppError) {
  return { error: { code: err.code, message: err.message, ...err.details } };
}
