import postgres from 'postgres';
import { Redis } from 'ioredis';
import type { Config } from './config.ts';

export type Sql = postgres.Sql;

/**
 * A pool. With `db` timeouts (the service's pools) every session gets them at connect time, so no
 * statement, lock wait or abandoned transaction can hold a connection without bound; without
 * (admin work: schema, seed, audit) the server's defaults apply.
 */
export function createSql(config: Pick<Config, 'databaseUrl' | 'poolSize'> & { db?: Config['db'] }): Sql {
  const timeouts = config.db && {
    lock_timeout: config.db.lockTimeoutMs,
    statement_timeout: config.db.statementTimeoutMs,
    idle_in_transaction_session_timeout: config.db.idleInTransactionTimeoutMs,
  };
  return postgres(config.databaseUrl, {
    max: config.poolSize,
    transform: postgres.camel,
    onnotice: () => {},
    connect_timeout: 5,
    // The default reconnect delay grows with every failed connect of the whole pool, to 10-20 s
    // after a five-second outage, and queued work waits for it: retry within a second instead.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    connection: { application_name: 'order-placement', ...timeouts },
  });
}

export function createRedis(config: Pick<Config, 'redisUrl' | 'redisKeyPrefix'> & { redisCommandTimeoutMs?: number }): Redis {
  const redis = new Redis(config.redisUrl, {
    keyPrefix: config.redisKeyPrefix,
    lazyConnect: true,
    connectTimeout: 2_000,
    // A paused or overloaded Redis must not hold requests: past this the command fails (503).
    commandTimeout: config.redisCommandTimeoutMs,
    // Fail fast while Redis is down (the request gets a 503) instead of queueing commands.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
  });
  redis.on('error', () => {}); // reconnects on its own; commands fail with a mapped error meanwhile
  return redis;
}

/** Connects both, or throws one sentence that says which is unreachable and where. */
export async function connectAll(sql: Sql, redis: Redis, config: Pick<Config, 'databaseUrl' | 'redisUrl'>) {
  await sql`select 1`.catch((err: unknown) => { throw postgresUnreachable(config.databaseUrl, err); });
  await redis.connect().catch((err: unknown) => {
    throw new Error(`Redis is unreachable at ${redactUrl(config.redisUrl)}: ${messageOf(err)} (set REDIS_URL, or start redis-server)`);
  });
}

/** The one sentence for a PostgreSQL that does not answer: where, why, and what to do. */
export function postgresUnreachable(databaseUrl: string, err: unknown): Error {
  return new Error(`PostgreSQL is unreachable at ${redactUrl(databaseUrl)}: ${messageOf(err)} (set DATABASE_URL, or start PostgreSQL)`);
}

// Probes: does a server answer at this URL? On a short-lived client of their own, made the way
// the service makes its own, so that what a probe finds is what the service will meet. Used to
// find services (servers/services.ts) and to wait for one just started (servers/own-redis.ts).

/** null when PostgreSQL answers at `url`, else why not. */
export async function postgresProblem(url: string): Promise<string | null> {
  const sql = createSql({ databaseUrl: url, poolSize: 1 });
  try {
    await sql`select 1`;
    return null;
  } catch (err) {
    return messageOf(err);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

export async function redisAnswers(url: string): Promise<boolean> {
  const redis = createRedis({ redisUrl: url, redisKeyPrefix: '' });
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
