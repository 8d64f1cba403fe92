import type { MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AppEnv } from '../app-types.ts';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';

// Admission control, as flash-sale systems put it in front of any work: at most `perUser` orders
// per user and `overall` orders in all per window, counted in Redis (rate-limiter-flexible's
// fixed windows, one atomic script per count) so that every service process shares the counts.
// A refused order costs one Redis round trip and is answered 429 with Retry-After; nothing else
// runs for it. A user over their own limit is refused before the overall count, so a bot that
// floods spends its own allowance, not the ordinary buyers'.
//
// Every answer of the route carries the limits and what is left of them, as the IETF draft
// "RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers-10) defines them:
//   RateLimit-Policy: "per-user";q=5;w=1, "overall";q=1000;w=1
//   RateLimit: "per-user";r=4;t=1, "overall";r=997;t=1
// (q: quota, w: window in seconds, r: remaining quota, t: seconds until the window resets).

type Admission = Config['admission'];
interface Policy { name: 'per-user' | 'overall'; quota: number; limiter: RateLimiterRedis }

/** The middleware, or null when both limits are off (the route then does no admission work at all). */
export function admissionControl(redis: Redis, admission: Admission | undefined): MiddlewareHandler<AppEnv> | null {
  if (!admission || (admission.perUser === 0 && admission.overall === 0)) return null;
  const policy = (name: Policy['name'], quota: number): Policy[] => (quota > 0 ? [{
    name, quota, limiter: new RateLimiterRedis({ storeClient: redis, keyPrefix: `admission:${name}`, points: quota, duration: admission.windowSeconds }),
  }] : []);
  const policies = [...policy('per-user', admission.perUser), ...policy('overall', admission.overall)];
  const policyHeader = policies.map((p) => `"${p.name}";q=${p.quota};w=${admission.windowSeconds}`).join(', ');

  return createMiddleware<AppEnv>(async (c, next) => {
    c.header('RateLimit-Policy', policyHeader);
    const states: string[] = [];
    for (const p of policies) {
      const key = p.name === 'per-user' ? String(c.get('userId')) : 'all';
      const res = await p.limiter.consume(key).catch((rejection: unknown) => {
        // A rejection is either the count (over the limit) or the store's error (Redis failing:
        // mapped to 503 where every error is).
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        const retryAfter = secondsUntil(rejection);
        c.header('RateLimit', [...states, state(p.name, 0, retryAfter)].join(', '));
        throw new AppError('RATE_LIMITED', p.name === 'per-user'
          ? `more than ${p.quota} orders per ${admission.windowSeconds} s from this user`
          : `more than ${p.quota} orders per ${admission.windowSeconds} s in all`, { policy: p.name }, retryAfter);
      });
      states.push(state(p.name, res.remainingPoints, secondsUntil(res)));
    }
    c.header('RateLimit', states.join(', '));
    await next();
  });
}

const state = (name: string, remaining: number, resetSeconds: number) => `"${name}";r=${remaining};t=${resetSeconds}`;

/** Whole seconds until the window resets, at least 1 (Retry-After and t are integers). */
function secondsUntil(res: RateLimiterRes): number {
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
}
