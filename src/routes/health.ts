import { Hono } from 'hono';
import type { AppDeps, AppEnv } from '../app-types.ts';

// Answers within about a second whatever the load: its own PostgreSQL connection (not the
// order pool, which may be exhausted), and each dependency given CHECK_MS to answer.
const CHECK_MS = 800;

type Check = 'ok' | 'timeout' | 'unreachable';

function check(probe: () => Promise<unknown>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Check>((resolve) => { timer = setTimeout(() => resolve('timeout'), CHECK_MS); });
  // A client-side timeout (ioredis commandTimeout, postgres.js connect_timeout) is slowness too.
  const answer = probe().then((): Check => 'ok',
    (err: Error): Check => (/timed out|timeout/i.test(`${err.message} ${(err as { code?: string }).code}`) ? 'timeout' : 'unreachable'));
  return Promise.race([answer, timeout]).finally(() => clearTimeout(timer));
}

export function healthRoutes({ sql, healthSql = sql, redis, isDraining }: AppDeps) {
  return new Hono<AppEnv>().get('/', async (c) => {
    const [postgres, redisState] = await Promise.all([check(() => healthSql`select 1`), check(() => redis.ping())]);
    const draining = isDraining?.() ?? false;
    const healthy = postgres === 'ok' && redisState === 'ok' && !draining;
    const body = { status: draining ? 'draining' : healthy ? 'ok' : 'degraded', postgres, redis: redisState };
    return c.json(body, healthy ? 200 : 503);
  });
}
