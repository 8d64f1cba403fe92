import { ReplyError, type Redis } from 'ioredis';
import { redisReplyCode } from './errors.ts';

// Sessions live in Redis as session:<sessionId> -> userId, as in the reference.

const sessionKey = (sessionId: string) => `session:${sessionId}`;

// A user id as saveSessions writes it: plain decimal, no sign, no leading zero, within int4.
const USER_ID = /^[1-9]\d{0,9}$/;
const MAX_USER_ID = 2_147_483_647;

/** The session's user, or null for an unknown session or one whose value is not a user id. */
export async function findSessionUser(redis: Redis, sessionId: string): Promise<number | null> {
  const value = await getUnlessWrongType(redis, sessionKey(sessionId));
  return value === null ? null : parseUserId(value);
}

/** A value Number() would take (`""`, `0x2`, `1e3`, ` 7`) must not become user 0, 2 or 1000. */
function parseUserId(value: string): number | null {
  if (!USER_ID.test(value)) return null;
  const userId = Number(value);
  return userId <= MAX_USER_ID ? userId : null;
}

// Something else stored under a session key (a hash, a list) is not a session of ours.
async function getUnlessWrongType(redis: Redis, key: string): Promise<string | null> {
  try {
    return await redis.get(key);
  } catch (err) {
    // ioredis types ReplyError as any, so instanceof does not narrow err.
    if (err instanceof ReplyError && redisReplyCode(err as Error) === 'WRONGTYPE') return null;
    throw err;
  }
}

/**
 * findSessionUser behind a short-lived in-process cache: a session seen within `ttlMs` is not
 * looked up in Redis again, which saves a Redis round trip on nearly every request under load.
 * The price, and its bound: a session deleted in Redis keeps working in this process for at most
 * `ttlMs` (0: no cache). Only found sessions are kept, so a new session works at once; the cache
 * holds at most `maxEntries`, dropping the oldest first.
 */
export function cachedSessionLookup(redis: Redis, { ttlMs, maxEntries = 100_000 }: { ttlMs: number; maxEntries?: number }) {
  const found = new Map<string, { userId: number; until: number }>();
  return async (sessionId: string): Promise<number | null> => {
    if (ttlMs <= 0) return findSessionUser(redis, sessionId);
    const now = Date.now();
    const hit = found.get(sessionId);
    if (hit && hit.until > now) return hit.userId;
    const userId = await findSessionUser(redis, sessionId);
    found.delete(sessionId);
    if (userId !== null) {
      if (found.size >= maxEntries) found.delete(found.keys().next().value!);
      found.set(sessionId, { userId, until: now + ttlMs });
    }
    return userId;
  };
}

export async function saveSessions(redis: Redis, sessions: { sessionId: string; userId: number }[]) {
  if (sessions.length) await redis.mset(sessions.flatMap((s) => [sessionKey(s.sessionId), String(s.userId)]));
}
