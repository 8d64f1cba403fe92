import { serve } from '@hono/node-server';
import { createApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { connectAll, createRedis, createSql } from './connections.ts';
import { loadStockMirrors } from './orders/redis-stock.ts';

// The process entry point: the only place that builds long-lived connections.

async function main() {
  const config = loadConfig();
  const sql = createSql(config);
  const redis = createRedis(config);
  try {
    await connectAll(sql, redis, config);
    const mirrored = await loadStockMirrors(sql, redis).catch((err: { code?: string }) => {
      throw err.code === '42P01' ? new Error('the database has no order schema yet: run `npm run db:reset` first') : err;
    });
    console.log(`stock of ${mirrored} products mirrored to Redis`);
  } catch (err) {
    await Promise.allSettled([sql.end({ timeout: 1 }), redis.quit()]);
    throw err;
  }

  const app = createApp({ sql, redis, config });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: '127.0.0.1' }, (info) => {
    console.log(`order service listening on http://127.0.0.1:${info.port} (pool ${config.poolSize})`);
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: closing the server, then the pool and Redis`);
    server.close(async () => {
      await Promise.allSettled([sql.end({ timeout: 5 }), redis.quit()]);
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError || err instanceof Error ? err.message : err);
  process.exit(1);
});
