import { Hono } from 'hono';
import type { AppDeps, AppEnv } from '../app.ts';

export function healthRoutes({ sql, redis }: AppDeps) {
  return new Hono<AppEnv>().get('/', async (c) => {
    const [postgres, redisOk] = await Promise.all([
      sql`select 1`.then(() => true, () => false),
      redis.ping().then(() => true, () => false),
    ]);
    const body = { postgres: postgres ? 'ok' : 'unreachable', redis: redisOk ? 'ok' : 'unreachable' };
    return c.json(body, postgres && redisOk ? 200 : 503);
  });
}
