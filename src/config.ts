import { z } from 'zod';

// The only module that reads process.env. Everything else receives a Config.

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** batched variant: what ORDER_BATCH_MAX and ORDER_BATCH_WAIT_MS default to. */
export const DEFAULT_ORDER_BATCH = { maxOrders: 64, waitMs: 2, inFlight: 1 };

const envSchema = z.object({
  // GET /metrics and the counting behind it; `off` lets the bench measure what they cost.
  METRICS: z.enum(['on', 'off']).default('on'),
  // At `info` (the default) only failures and slow requests are logged; `debug` logs every request.
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  DATABASE_URL: z.string().default('postgres://postgres@127.0.0.1:5432/orders'),
  // `transaction`: DATABASE_URL is a transaction-pooling pooler (PgBouncer `pool_mode =
  // transaction`): settings are pinned per transaction instead of at connect, nothing is prepared.
  DATABASE_POOLER: z.enum(['none', 'transaction']).default('none'),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  REDIS_KEY_PREFIX: z.string().default(''),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  // Bounds the number of concurrent transactions: the main lever on lock waits and 40001 rates.
  DB_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(16),
  RETRY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(20),
  RETRY_BASE_DELAY_MS: z.coerce.number().min(0).max(10_000).default(5),
  RETRY_MAX_DELAY_MS: z.coerce.number().min(0).max(60_000).default(300),
  HASHIDS_SALT: z.string().default('order-placement-postgres'),
  BODY_LIMIT_BYTES: z.coerce.number().int().min(256).default(16 * 1024),
  // Bounded waits (milliseconds). Under normal contention a lock is held for a few round trips, so
  // a row lock waited on for a second is held by something that is not an order (a stuck session,
  // a migration): the order gives up with 503 instead of tying up a pool connection.
  DB_LOCK_TIMEOUT_MS: z.coerce.number().int().min(1).default(1_000),
  DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(1).default(5_000),
  // A transaction left idle this long belongs to a stuck or dead client: PostgreSQL ends it and frees its locks.
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: z.coerce.number().int().min(1).default(10_000),
  // How long a request may wait, in total, before its transaction starts (session lookup, Redis,
  // a free pool connection). A transaction once started is never cut short: it is bounded by the
  // lock and statement timeouts instead, so a 503 always means nothing was written.
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1).default(10_000),
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(1).default(1_000),
  // Service processes behind one port; a supervisor restarts any that dies.
  WEB_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  // On SIGTERM/SIGINT: stop accepting, let requests in flight finish this long, then close.
  SHUTDOWN_DRAIN_MS: z.coerce.number().int().min(0).default(10_000),
  // redis variant: a Redis take not settled by its order within this time is given back by the
  // reconciler (it must outlast REQUEST_TIMEOUT_MS plus a transaction); reconciler period.
  RESERVATION_TTL_MS: z.coerce.number().int().min(1).default(60_000),
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(0).default(5_000),
  // batched variant: orders gathered into one statement, at most this many (from its first
  // refused order on, a batch writes one subtransaction per order; above 64, PostgreSQL's
  // per-backend subtransaction cache overflows and every snapshot taken meanwhile gets slower),
  // placed this long after the first arrived.
  ORDER_BATCH_MAX: z.coerce.number().int().min(1).max(64).default(DEFAULT_ORDER_BATCH.maxOrders),
  ORDER_BATCH_WAIT_MS: z.coerce.number().min(0).max(1_000).default(DEFAULT_ORDER_BATCH.waitMs),
  // batched variant: batches a process runs at once; the next one gathers while they run, so under
  // load batches grow instead of multiplying and fighting for the same hot rows.
  ORDER_BATCH_IN_FLIGHT: z.coerce.number().int().min(1).max(64).default(DEFAULT_ORDER_BATCH.inFlight),
  // An unpaid order gives back its units, coupon and points this long after it was placed; the
  // sweeper looks for such orders every ORDER_SWEEP_INTERVAL_MS (0: never, `npm run orders:expire` only).
  ORDER_PAYMENT_TTL_SECONDS: z.coerce.number().int().min(1).default(900),
  ORDER_SWEEP_INTERVAL_MS: z.coerce.number().int().min(0).default(5_000),
  // How long an Idempotency-Key and its stored outcome are kept.
  IDEMPOTENCY_KEY_TTL_SECONDS: z.coerce.number().int().min(1).default(86_400),
  // A session found in Redis is trusted this long without asking again (0: ask every request), so
  // a deleted session keeps working for at most this long: a Redis round trip saved per request.
  SESSION_CACHE_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  // Admission control of POST /orders/:variant, shared by every service process through Redis:
  // at most ADMISSION_USER_LIMIT orders per user and ADMISSION_TOTAL_LIMIT orders in all per
  // ADMISSION_WINDOW_SECONDS (fixed windows); beyond, 429 with Retry-After. 0: no such limit (the
  // default: a flash sale's limits depend on its stock and traffic, and the bench measures without).
  ADMISSION_USER_LIMIT: z.coerce.number().int().min(0).default(0),
  ADMISSION_TOTAL_LIMIT: z.coerce.number().int().min(0).default(0),
  ADMISSION_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(1),
  // queued variant. Beyond QUEUE_MAX_LENGTH orders waiting in the queue, new ones get 503 with
  // Retry-After (backpressure) instead of a queue that grows without bound.
  QUEUE_MAX_LENGTH: z.coerce.number().int().min(1).default(100_000),
  // Orders a consumer writes in one place_orders statement (the batched variant's limit, and why).
  QUEUE_BATCH_MAX: z.coerce.number().int().min(1).max(64).default(64),
  // An entry a consumer received and did not finish this long ago is taken over by another (its
  // consumer died). Must exceed REQUEST_TIMEOUT_MS + DB_STATEMENT_TIMEOUT_MS (a consumer's wait for
  // connections, then its statement): a live consumer's write has then ended, committed or not,
  // before anyone else looks at the entry.
  QUEUE_CLAIM_IDLE_MS: z.coerce.number().int().min(1).default(30_000),
  // How long an order's status stays readable in Redis after it is queued or decided (GET of a
  // rejected order; the order row answers for placed ones), and how long the units of an order
  // still queued are held against the stock reconciler.
  QUEUE_RECORD_TTL_SECONDS: z.coerce.number().int().min(60).default(86_400),
  // `off`: this process accepts queued orders but writes none (another process or a later start does).
  QUEUE_CONSUMER: z.enum(['on', 'off']).default('on'),
}).refine((e) => e.QUEUE_CLAIM_IDLE_MS > e.REQUEST_TIMEOUT_MS + e.DB_STATEMENT_TIMEOUT_MS, {
  path: ['QUEUE_CLAIM_IDLE_MS'],
  message: 'must exceed REQUEST_TIMEOUT_MS + DB_STATEMENT_TIMEOUT_MS (a live consumer must have finished its write before its entry is taken over)',
});

export interface Config {
  metrics: boolean;
  logLevel: LogLevel;
  databaseUrl: string;
  /** What sits between the service and PostgreSQL: nothing, or a transaction-pooling pooler. */
  pooler: 'none' | 'transaction';
  redisUrl: string;
  /** Prepended to every Redis key, so that test and bench runs never touch each other's keys. */
  redisKeyPrefix: string;
  port: number;
  poolSize: number;
  retry: { maxAttempts: number; baseDelayMs: number; maxDelayMs: number };
  hashidsSalt: string;
  bodyLimitBytes: number;
  db: { lockTimeoutMs: number; statementTimeoutMs: number; idleInTransactionTimeoutMs: number };
  requestTimeoutMs: number;
  redisCommandTimeoutMs: number;
  webConcurrency: number;
  shutdownDrainMs: number;
  reservations: { ttlMs: number; reconcileIntervalMs: number };
  orderBatch: { maxOrders: number; waitMs: number; inFlight: number };
  lifecycle: { paymentTtlSeconds: number; sweepIntervalMs: number; idempotencyKeyTtlSeconds: number };
  sessionCacheMs: number;
  /** Orders admitted per user and in all per window; 0: that limit is off. */
  admission: { perUser: number; overall: number; windowSeconds: number };
  /** The queued variant's queue (src/orders/queue/). */
  queue: QueueConfig;
}

export interface QueueConfig {
  maxLength: number;
  batchMax: number;
  claimIdleMs: number;
  recordTtlSeconds: number;
  /** Whether this process runs a consumer. */
  consumer: boolean;
}

/** The queue's settings where a caller's config lacks them (tests building configs by hand). */
export const DEFAULT_QUEUE: QueueConfig = { maxLength: 100_000, batchMax: 64, claimIdleMs: 30_000, recordTtlSeconds: 86_400, consumer: true };

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  return {
    metrics: e.METRICS === 'on',
    logLevel: e.LOG_LEVEL,
    databaseUrl: e.DATABASE_URL,
    pooler: e.DATABASE_POOLER,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    port: e.PORT,
    poolSize: e.DB_POOL_SIZE,
    retry: { maxAttempts: e.RETRY_MAX_ATTEMPTS, baseDelayMs: e.RETRY_BASE_DELAY_MS, maxDelayMs: e.RETRY_MAX_DELAY_MS },
    hashidsSalt: e.HASHIDS_SALT,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    db: {
      lockTimeoutMs: e.DB_LOCK_TIMEOUT_MS,
      statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
      idleInTransactionTimeoutMs: e.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    },
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    webConcurrency: e.WEB_CONCURRENCY,
    shutdownDrainMs: e.SHUTDOWN_DRAIN_MS,
    reservations: { ttlMs: e.RESERVATION_TTL_MS, reconcileIntervalMs: e.RECONCILE_INTERVAL_MS },
    orderBatch: { maxOrders: e.ORDER_BATCH_MAX, waitMs: e.ORDER_BATCH_WAIT_MS, inFlight: e.ORDER_BATCH_IN_FLIGHT },
    lifecycle: {
      paymentTtlSeconds: e.ORDER_PAYMENT_TTL_SECONDS,
      sweepIntervalMs: e.ORDER_SWEEP_INTERVAL_MS,
      idempotencyKeyTtlSeconds: e.IDEMPOTENCY_KEY_TTL_SECONDS,
    },
    sessionCacheMs: e.SESSION_CACHE_MS,
    admission: { perUser: e.ADMISSION_USER_LIMIT, overall: e.ADMISSION_TOTAL_LIMIT, windowSeconds: e.ADMISSION_WINDOW_SECONDS },
    queue: {
      maxLength: e.QUEUE_MAX_LENGTH,
      batchMax: e.QUEUE_BATCH_MAX,
      claimIdleMs: e.QUEUE_CLAIM_IDLE_MS,
      recordTtlSeconds: e.QUEUE_RECORD_TTL_SECONDS,
      consumer: e.QUEUE_CONSUMER === 'on',
    },
  };
}

/**
 * The service URLs the environment sets explicitly (undefined when unset), for tools that find
 * or start services themselves when none is given (the bench).
 */
export function explicitServiceUrls(env: NodeJS.ProcessEnv = process.env): { databaseUrl?: string; redisUrl?: string } {
  return { databaseUrl: env.DATABASE_URL || undefined, redisUrl: env.REDIS_URL || undefined };
}
