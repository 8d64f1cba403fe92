import { Redis } from 'ioredis';

/** Deletes every key under a prefix (a test or bench run's namespace). A no-op for an empty prefix. */
export async function clearRedisNamespace(redisUrl: string, prefix: string) {
  if (!prefix) return;
  // A client without keyPrefix: SCAN returns full key names, which a prefixed client would prefix again.
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
