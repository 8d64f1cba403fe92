import { createMiddleware } from 'hono/factory';
import type { Redis } from 'ioredis';
import type { AppEnv } from '../app-types.ts';
import { AppError } from '../errors.ts';
import { cachedSessionLookup } from '../sessions.ts';

/**
 * Resolves `Authorization: Bearer <sessionId>` to the session's user, or answers 401. Sessions are
 * cached for `cacheMs` (SESSION_CACHE_MS): a deleted session stops working within that time.
 */
export function requireSession(redis: Redis, cacheMs: number) {
  const findSessionUser = cachedSessionLookup(redis, { ttlMs: cacheMs });
  return createMiddleware<AppEnv>(async (c, next) => {
    const match = /^Bearer ([\w.~+/=-]{1,200})$/.exec(c.req.header('Authorization') ?? '');
    if (!match) throw new AppError('UNAUTHORIZED', 'send Authorization: Bearer <sessionId>');
    const userId = await findSessionUser(match[1]!);
    if (userId === null) throw new AppError('UNAUTHORIZED', 'unknown or expired session');
    c.set('userId', userId);
    await next();
  });
}
