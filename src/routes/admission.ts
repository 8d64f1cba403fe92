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
// A refused order costs a Redis round trip per limit and is answered 429 with Retry-After; nothing
// else runs for it. The user's own limit is counted first: a bot that floods spends its own
// allowance, not the ordinary buyers' share of the overall one. An order the overall limit refuses
// gets its user's count back, so that a buyer retrying into a full window is not locked out of the
// next one by their own limit.
//
// Every answer of the route carries the limits and what is left of them, as the IETF draft
// "RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers-10) writes them:
//   RateLimit-Policy: "per-user";q=5;w=1, "overall";q=1000;w=1
//   RateLimit: "per-user";r=4;t=1, "overall";r=997;t=1
// (q: quota, w: window in seconds, r: remaining quota, t: seconds until the window resets).

/** Where the counts live in the service's Redis namespace. */
export const ADMISSION_KEY_PREFIX = 'admission:';

type Admission = Config['admission'];
type PolicyName = 'per-user' | 'overall';
interface Policy { name: PolicyName; quota: number; limiter: RateLimiterRedis; keyOf: (userId: number) => string }

/**
 * The middleware (after the session check: it needs the user), or null when both limits are off,
 * so that the route then does no admission work at all. Throws AppError RATE_LIMITED (429, with
 * `policy` and Retry-After in seconds) beyond a limit; a Redis failure while counting propagates
 * as ioredis raised it (mapped to 503 by src/errors.ts).
 */
export function admissionControl(redis: Redis, admission: Admission | undefined): MiddlewareHandler<AppEnv> | null {
  if (!admission || (admission.perUser === 0 && admission.overall === 0)) return null;
  const { windowSeconds } = admission;
  const policy = (name: PolicyName, quota: number, keyOf: Policy['keyOf']): Policy[] => (quota > 0 ? [{
    name, quota, keyOf,
    limiter: new RateLimiterRedis({ storeClient: redis, keyPrefix: `${ADMISSION_KEY_PREFIX}${name}`, points: quota, duration: windowSeconds }),
  }] : []);
  const policies = [...policy('per-user', admission.perUser, String), ...policy('overall', admission.overall, () => 'all')];
  const policyHeader = policies.map((p) => `"${p.name}";q=${p.quota};w=${windowSeconds}`).join(', ');

  return createMiddleware<AppEnv>(async (c, next) => {
    c.header('RateLimit-Policy', policyHeader);
    const userId = c.get('userId');
    const counted: { policy: Policy; res: RateLimiterRes }[] = [];
    for (const p of policies) {
      const res = await p.limiter.consume(p.keyOf(userId)).catch((rejection: unknown) => {
        // A rejection is either the count (over the limit) or the store's error (Redis failing).
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        return rejection;
      });
      if (res.consumedPoints > p.quota) {
        const retryAfter = secondsUntil(res);
        // Refused by a later limit: the earlier counts are given back (and reported as given back).
        await Promise.all(counted.map(({ policy }) => policy.limiter.reward(policy.keyOf(userId))));
        c.header('RateLimit', [...counted.map((x) => stateOf(x.policy, x.res, 1)), state(p.name, 0, retryAfter)].join(', '));
        throw new AppError('RATE_LIMITED', `more than ${p.quota} orders per ${windowSeconds} s ` +
          `${p.name === 'per-user' ? 'from this user' : 'in all'}`, { policy: p.name }, retryAfter);
      }
      counted.push({ policy: p, res });
    }
    c.header('RateLimit', counted.map((x) => stateOf(x.policy, x.res)).join(', '));
    await next();
  });
}

const state = (name: PolicyName, remaining: number, resetSeconds: number) => `"${name}";r=${remaining};t=${resetSeconds}`;
const stateOf = (p: Policy, res: RateLimiterRes, givenBack = 0) => state(p.name, res.remainingPoints + givenBack, secondsUntil(res));

/** Whole seconds until the window resets, at least 1 (Retry-After and t are integers). */
function secondsUntil(res: RateLimiterRes): number {
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
}
