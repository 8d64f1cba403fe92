import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedis } from '../src/connections.ts';
import {
  loadStockMirrors, newReservation, openReservationIds, readMirroredStock, takeMirroredStock,
} from '../src/orders/redis-stock.ts';
import { redisPrefiltered } from '../src/orders/variants/redis.ts';
import { couponIdsOf, DEFAULT_SEED } from '../src/seed.ts';
import { boundedPool } from '../src/transaction.ts';
import { createTestEnv, dbState, holdRow, json, productRow, type TestEnv } from './helpers.ts';

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset({ stock: 5 }); });

const mirrorOf = async (productId: number) => (await readMirroredStock(env.redis, [productId])).get(productId);

test('reset mirrors database stock into Redis', async () => {
  assert.equal(await mirrorOf(1), 5);
  assert.equal(await mirrorOf(10), 5);
});

test('a reset copies the database stock and forgets open reservations', async () => {
  assert.deepEqual(await takeMirroredStock(env.redis, newReservation([{ productId: 1, count: 2 }], 60_000)), { taken: true });
  await env.sql`update product set stock = 4 where id = 2`;
  await loadStockMirrors(env.sql, env.redis);
  assert.equal(await mirrorOf(1), 5);
  assert.equal(await mirrorOf(2), 4);
  assert.deepEqual(await openReservationIds(env.redis), []);
});

test('a sold-out order is turned away by Redis without touching PostgreSQL', async () => {
  assert.equal((await env.order('redis', 1, env.body([{ productId: 1, count: 5 }]))).status, 201);
  assert.equal(await mirrorOf(1), 0);
  const before = await dbState(env.sql);

  // Hold product 1's row lock in another transaction: any order that reached PostgreSQL would
  // block on it. The sold-out order must come back at once regardless.
  const unlock = await holdRow(env.sql, 1);
  try {
    const res = await Promise.race([
      env.order('redis', 2, env.body([{ productId: 1, count: 1 }])),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the order waited on PostgreSQL')), 2000)),
    ]);
    const body = await json(res);
    assert.equal(res.status, 409);
    assert.equal(body.error.code, 'OUT_OF_STOCK');
  } finally {
    await unlock();
  }
  assert.deepEqual(await dbState(env.sql), before);
  assert.equal(await mirrorOf(1), 0);
});

test('an all-or-nothing take: one short line takes no unit of the others', async () => {
  const res = await env.order('redis', 1, env.body([{ productId: 1, count: 2 }, { productId: 2, count: 6 }]));
  assert.equal(res.status, 409);
  assert.equal((await json(res)).error.productId, 2);
  assert.equal(await mirrorOf(1), 5);
  assert.equal(await mirrorOf(2), 5);
});

test('units go back to Redis, once, when the database step fails (coupon already used)', async () => {
  const [couponId] = couponIdsOf(DEFAULT_SEED, 1) as [number];
  // 2 x 9.99 = 19.98 x 0.85 = 16.983 -> 16.98; 2 x 19.99 = 39.98 x 0.85 = 33.983 -> 33.98
  const body = (productId: 1 | 2) => env.body([{ productId, count: 2 }], { couponId, total: { 1: '16.98', 2: '33.98' }[productId] });
  assert.equal((await env.order('redis', 1, body(1))).status, 201);
  assert.equal(await mirrorOf(1), 3);

  const res = await env.order('redis', 1, body(2));
  assert.equal(res.status, 409);
  assert.equal((await json(res)).error.code, 'COUPON_INVALID');
  assert.equal(await mirrorOf(2), 5, 'the 2 units taken in Redis were given back');
  assert.deepEqual(await openReservationIds(env.redis), [], 'and the reservation closed');
  assert.deepEqual(await productRow(env.sql, 2), { stock: 5, sales: 0 });
});

test('units go back when the database disagrees with the mirror (price changed)', async () => {
  await env.sql`update product set price = 1.00 where id = 3`;
  const res = await env.order('redis', 1, env.body([{ productId: 3, count: 1 }]));
  assert.equal((await json(res)).error.code, 'PRICE_CHANGED');
  assert.equal(await mirrorOf(3), 5);
  assert.deepEqual(await openReservationIds(env.redis), []);
});

test('a take that timed out on the client but ran later on the server is given back', async () => {
  const redis = createRedis({ ...env.config, redisCommandTimeoutMs: 100 });
  await redis.connect();
  try {
    const logged: string[] = [];
    const place = redisPrefiltered({ db: boundedPool(env.sql, env.config), redis, config: env.config, log: (m) => logged.push(m) });
    // The server keeps this connection busy for 500 ms: commands sent meanwhile time out on the
    // client, and run afterwards all the same.
    redis.blpop('never-pushed', 0.5).catch(() => {});
    await assert.rejects(place(1, env.body([{ productId: 1, count: 2 }])), /Command timed out/);
    await sleep(600);
    await redis.ping();
    assert.equal(await mirrorOf(1), 5);
    assert.deepEqual(await openReservationIds(env.redis), []);
    assert.deepEqual(await productRow(env.sql, 1), { stock: 5, sales: 0 });
    assert.equal(logged.length, 1, 'the give-back timed out on the client too, and said so');
  } finally {
    redis.disconnect();
  }
});

test('when Redis is unreachable the redis variant answers 503, not 500', async () => {
  env.redis.disconnect();
  const res = await env.order('redis', 1, env.body([{ productId: 1, count: 1 }]));
  assert.equal(res.status, 503);
  assert.equal((await json(res)).error.code, 'SERVICE_UNAVAILABLE');
  const health = await env.app.request('/health');
  assert.equal(health.status, 503);
  assert.deepEqual(await json(health), { status: 'degraded', postgres: 'ok', redis: 'unreachable' });
});
