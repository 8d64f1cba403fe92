import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import { createApp } from './app.ts';
import type { Config } from './config.ts';
import { closeAll, connectAll, createRedis, createSql } from './connections.ts';
import { logFunction, type Logger } from './logger.ts';
import { clusterRender } from './metrics-cluster.ts';
import { createMetrics } from './metrics.ts';
import { startOrderSweeper } from './orders/order-sweeper.ts';
import { queueDurabilityProblem } from './orders/queue/queue-store.ts';
import { startQueueConsumer, type QueueConsumer } from './orders/queue/queue-consumer.ts';
import { reconcileStockMirrors, startStockReconciler } from './orders/stock-reconciler.ts';
import { boundedPool } from './transaction.ts';

// One service process: its own pool, Redis client and HTTP server. Started by the supervisor
// (src/supervisor.ts), which restarts it if it dies; it tells the supervisor when it listens.

export async function runWorker(config: Config, logger: Logger) {
  // Said once per process: each such transaction was begun again harmlessly, but the cause is a
  // setting to fix, and under load it recurs every few hundred transactions.
  let staleSeen = false;
  const onStaleBegin = (err: unknown) => {
    if (staleSeen) return;
    staleSeen = true;
    logger.warn(`a transaction's database connection was found closed as it began (${(err as Error).message}) ` +
      'and it was begun again on another; through a pooler, the database\'s idle_session_timeout is likely ' +
      'shorter than the pooler\'s server_idle_timeout');
  };
  const sql = createSql(config, { onStaleBegin });
  // /health's own connection, so that it can answer while every pool connection is busy.
  const healthSql = createSql({ ...config, poolSize: 1 }, { onStaleBegin });
  const redis = createRedis(config);
  const closeConnections = () => Promise.allSettled([closeAll(sql, redis, 5), healthSql.end({ timeout: 1 })]);
  try {
    await connectAll(sql, redis, config);
    await reconcileStockMirrors(sql, redis).catch((err: { code?: string }) => {
      if (err.code === '42P01') throw new Error('the database has no order schema yet: run `npm run db:reset` first');
      // Rows busy under load (lock_not_available): the periodic run and the order path repair mirrors.
      if (err.code !== '55P03') throw err;
      logger.warn('stock mirrors not reconciled at start-up (product rows busy); the periodic run will');
    });
  } catch (err) {
    await closeConnections();
    throw err;
  }

  const reconciler = startStockReconciler({
    sql, redis, intervalMs: config.reservations.reconcileIntervalMs, log: logFunction(logger),
  });
  // On a pool of its own (small): sweeps never take a connection an order is waiting for.
  const sweeperSql = createSql({ ...config, poolSize: 1 }, { onStaleBegin });
  const sweeper = startOrderSweeper({
    db: boundedPool(sweeperSql, config), redis, paymentTtlSeconds: config.lifecycle.paymentTtlSeconds, log: logFunction(logger),
  }, config.lifecycle.sweepIntervalMs);
  // The queued variant's consumer, on a pool of its own: the HTTP path's pool never starves the
  // writer of the orders it accepted, nor the writer the HTTP path.
  const queueSql = createSql({ ...config, poolSize: 2 }, { onStaleBegin });
  let consumer: QueueConsumer | undefined;
  if (config.queue.consumer) {
    consumer = await startQueueConsumer({
      db: boundedPool(queueSql, config), redis, config: { ...config.queue, requestTimeoutMs: config.requestTimeoutMs }, log: logFunction(logger),
    }).catch(async (err: unknown) => {
      await Promise.allSettled([reconciler.stop(), sweeper.stop(), sweeperSql.end({ timeout: 1 }), queueSql.end({ timeout: 1 }), closeConnections()]);
      throw err;
    });
  }
  const durability = await queueDurabilityProblem(redis);
  if (durability) logger.warn(`the queued variant's queue is not durable: ${durability}`);
  let draining = false;
  // The process's own metrics (CPU, memory, event loop) once per process; /metrics answers for
  // every worker of the service, collected through the supervisor.
  const ownMetrics = config.metrics ? createMetrics({ processMetrics: true }) : undefined;
  const metrics = ownMetrics && { ...ownMetrics, render: clusterRender(ownMetrics.registry) };
  const app = createApp({ sql, healthSql, redis, config, isDraining: () => draining, logger, metrics });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: '127.0.0.1' }, (info) => {
    logger.info(`order service listening on http://127.0.0.1:${info.port} (pool ${config.poolSize}, pid ${process.pid})`);
    process.send?.('ready');
  }) as Server;

  // Drain: stop accepting, answer what is in flight with `Connection: close` (so kept-alive
  // clients leave), and after SHUTDOWN_DRAIN_MS cut the connections that are still open.
  const drain = () => {
    if (draining) return;
    draining = true;
    const cut = setTimeout(() => server.closeAllConnections(), config.shutdownDrainMs);
    server.close(async () => {
      clearTimeout(cut);
      await Promise.all([reconciler.stop(), sweeper.stop(), consumer?.stop()]);
      await Promise.all([sweeperSql.end({ timeout: 1 }), queueSql.end({ timeout: 1 })]);
      await closeConnections();
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', drain);
  process.on('SIGINT', drain);
  // The supervisor is gone (killed): nobody would restart or stop this process any more.
  process.on('disconnect', drain);
}
