import { loadConfig } from '../src/config.ts';
import { closeAll, connectAll, createRedis, createSql, redactUrl } from '../src/connections.ts';
import { runMain } from '../src/entry-point.ts';
import { sweepOnce } from '../src/orders/order-sweeper.ts';
import { boundedPool } from '../src/transaction.ts';

// `npm run orders:expire`: one sweep, as the service's own sweeper does every ORDER_SWEEP_INTERVAL_MS.
// Expires the orders left unpaid past ORDER_PAYMENT_TTL_SECONDS, gives back what they held, and
// deletes Idempotency-Keys past IDEMPOTENCY_KEY_TTL_SECONDS. Safe while the service runs.

async function main() {
  const config = loadConfig();
  const sql = createSql({ ...config, poolSize: 2 });
  const redis = createRedis(config);
  try {
    await connectAll(sql, redis, config);
    const db = boundedPool(sql, config);
    const { expired, keysPruned } = await sweepOnce({
      db, redis, paymentTtlSeconds: config.lifecycle.paymentTtlSeconds, log: console.error,
    });
    console.log(`${redactUrl(config.databaseUrl)}: ${expired} unpaid orders expired (older than ` +
      `${config.lifecycle.paymentTtlSeconds} s), ${keysPruned} expired Idempotency-Keys deleted`);
  } finally {
    await closeAll(sql, redis);
  }
}

runMain(main);
