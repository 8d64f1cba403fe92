import postgres from 'postgres';
import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import { QUEUE_SCRIPTS } from './orders/queue/queue-store.ts';
import { STOCK_SCRIPTS } from './orders/redis-stock.ts';
import { pinnedPerTransaction } from './pooler.ts';
import { perTransaction, READ_SETTINGS_SQL, sessionProblem, sessionSettings, startupParameters } from './session-settings.ts';
import { retryStaleBegin } from './stale-connection.ts';

export type Sql = postgres.Sql;

/** How the service's sessions and admin work (schema, seed, audit) name themselves in pg_stat_activity. */
export const APPLICATION_NAMES = { service: 'order-placement', admin: 'order-placement-admin' } as const;

/**
 * A pool whose every session has the settings the service depends on (src/session-settings.ts),
 * whatever the database's defaults. With `db` timeouts (the service's pools) no statement, lock
 * wait or abandoned transaction can hold a connection without bound; without (admin work: schema,
 * seed, audit) they are off. With `pooler: 'transaction'` (a transaction-pooling pooler such as
 * PgBouncer in between) the settings are pinned per transaction instead of at connect
 * (src/pooler.ts) and no statement is prepared by name: the next transaction may run on another
 * server connection, where a named statement does not exist, and a transaction whose BEGIN fails
 * fast on a server connection closed while the pooler held it idle is begun again
 * (src/stale-connection.ts); `onStaleBegin` hears of each.
 */
export function createSql(config: Pick<Config, 'databaseUrl' | 'poolSize'> & { db?: Config['db']; pooler?: Config['pooler'] },
  hooks: { onStaleBegin?: (err: unknown) => void } = {}): Sql {
  const pooler = config.pooler === 'transaction';
  const settings = sessionSettings(config.db);
  const sql = postgres(config.databaseUrl, {
    max: config.poolSize,
    transform: postgres.camel,
    onnotice: () => {},
    connect_timeout: 5,
    prepare: !pooler,
    // The default reconnect delay grows with every failed connect of the whole pool, to 10-20 s
    // after a five-second outage, and queued work waits for it: retry within a second instead.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    connection: { application_name: APPLICATION_NAMES[config.db ? 'service' : 'admin'], ...startupParameters(settings, pooler) },
  });
  // Directly, the session pins idle_session_timeout off (src/session-settings.ts): no retry, and
  // no wrapper on the direct path's every transaction.
  return pooler ? pinnedPerTransaction(retryStaleBegin(sql, hooks.onStaleBegin), settings) : sql;
}

/**
 * Null when a session of `sql` has the settings `createSql` pinned for `config` and nothing the
 * service cannot pin is against it; else one sentence naming the setting.
 */
export async function sessionSettingsProblem(sql: Sql, config: { db?: Config['db']; pooler?: Config['pooler'] }): Promise<string | null> {
  const pooler = config.pooler === 'transaction';
  const wanted = pooler ? perTransaction(sessionSettings(config.db)) : sessionSettings(config.db);
  // In a transaction: through a pooler, that is where the settings are pinned. Read only, so that
  // a standby answers (and is named for what it is) rather than refusing a read-write BEGIN.
  const rows = await sql.begin('read only', (tx) => tx.unsafe<{ name: string; setting: string; inRecovery: boolean; replicationRole: string }[]>(
    READ_SETTINGS_SQL, [Object.keys(wanted).map((n) => n.toLowerCase())]));
  return sessionProblem(wanted, {
    settings: rows, inRecovery: rows[0]?.inRecovery ?? false, replicationRole: rows[0]?.replicationRole ?? 'origin',
  }, pooler);
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
    // Commands issued in the same event-loop turn (sessions, stock takes of concurrent requests)
    // leave in one socket write instead of one write each: the writes were a sixth of the
    // service's CPU per request under sold-out load.
    enableAutoPipelining: true,
    scripts: { ...STOCK_SCRIPTS, ...QUEUE_SCRIPTS },
  });
  redis.on('error', () => {}); // reconnects on its own; commands fail with a mapped error meanwhile
  return redis;
}

/**
 * Connects both and checks the database session (pinned settings held, nothing unpinnable against
 * them), or throws one sentence that says what is wrong and where.
 */
export async function connectAll(sql: Sql, redis: Redis, config: Pick<Config, 'databaseUrl' | 'redisUrl'> & { db?: Config['db']; pooler?: Config['pooler'] }) {
  const problem = await sessionSettingsProblem(sql, config).catch((err: unknown) => { throw postgresUnreachable(config.databaseUrl, err); });
  if (problem) throw new Error(`PostgreSQL at ${redactUrl(config.databaseUrl)} cannot serve the orders: ${problem}`);
  await redis.connect().catch((err: unknown) => {
    throw new Error(`Redis is unreachable at ${redactUrl(config.redisUrl)}: ${messageOf(err)} (set REDIS_URL, or start redis-server)`);
  });
}

/**
 * The one sentence for a PostgreSQL that cannot be used: where, why, and what to do. A server (or
 * a pooler) that answered and refused is not "unreachable": its own words are the reason.
 */
export function postgresUnreachable(databaseUrl: string, err: unknown): Error {
  const where = redactUrl(databaseUrl);
  if (err instanceof postgres.PostgresError) {
    const hint = /unsupported startup parameter/.test(err.message)
      ? ' (a transaction-pooling pooler refuses session settings at connect: set DATABASE_POOLER=transaction)'
      : '';
    return new Error(`PostgreSQL at ${where} refused the connection: ${err.message} (SQLSTATE ${err.code})${hint}`);
  }
  return new Error(`PostgreSQL is unreachable at ${where}: ${messageOf(err)} (set DATABASE_URL, or start PostgreSQL)`);
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

/**
 * Ends the pool (running queries get up to `timeoutSec` seconds) and the Redis client; never
 * throws. A Redis client that is not connected (created lazily, its start failed before it
 * connected) is disconnected: `quit()` would connect it first, be refused for want of an offline
 * queue, and leave an open socket that keeps the process running.
 */
export async function closeAll(sql: Sql, redis: Redis, timeoutSec = 1): Promise<void> {
  await Promise.allSettled([sql.end({ timeout: timeoutSec }), redis.status === 'ready' ? redis.quit() : redis.disconnect()]);
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
