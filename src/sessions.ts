import type { Redis } from 'ioredis';

// Sessions live in Redis as session:<sessionId> -> userId, as in the reference.

const sessionKey = (sessionId: string) => `session:${sessionId}`;

export async function findSessionUser(redis: Redis, sessionId: string): Promise<number | null> {
  const userId = await redis.get(sessionKey(sessionId));
  return userId === null ? null : Number(userId);
}

export async function saveSessions(redis: Redis, sessions: { sessionId: string; userId: number }[]) {
  if (sessions.length) await redis.mset(sessions.flatMap((s) => [sessionKey(s.sessionId), String(s.userId)]));
}
