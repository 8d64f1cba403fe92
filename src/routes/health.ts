import { createRoute } from '@hono/zod-openapi';
import { z } from 'zod';
import type { AppDeps } from '../app-types.ts';
import { openApiApp } from './openapi-app.ts';

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

const checkSchema = z.enum(['ok', 'timeout', 'unreachable']);
const healthSchema = z.object({
  status: z.enum(['ok', 'degraded', 'draining']),
  postgres: checkSchema,
  redis: checkSchema,
}).meta({ id: 'Health' });

const healthRoute = createRoute({
  method: 'get',
  path: '/',
  summary: 'Whether the service can take orders',
  responses: {
    200: { description: 'PostgreSQL and Redis both answer', content: { 'application/json': { schema: healthSchema } } },
    503: {
      description: 'PostgreSQL or Redis is `unreachable` or slow (`timeout`), or the service is `draining`',
      content: { 'application/json': { schema: healthSchema } },
    },
  },
});

export function healthRoutes({ sql, healthSql = sql, redis, isDraining }: AppDeps) {
  return openApiApp().openapi(healthRoute, async (c) => {
    const [postgres, redisState] = await Promise.all([check(() => healthSql`select 1`), check(() => redis.ping())]);
    const draining = isDraining?.() ?? false;
    const healthy = postgres === 'ok' && redisState === 'ok' && !draining;
    const body = { status: draining ? 'draining' as const : healthy ? 'ok' as const : 'degraded' as const, postgres, redis: redisState };
    return healthy ? c.json(body, 200) : c.json(body, 503);
  });
}
