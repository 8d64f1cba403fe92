import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import { auditLifecycle, lifecycleSeed, runLifecycleCell } from '../bench/lifecycle.ts';
import { loadConfig } from '../src/config.ts';
import { createRedis } from '../src/connections.ts';
import { createDatabase, dropDatabase, withDatabase } from '../src/database.ts';
import { reconcileStockMirrors } from '../src/orders/stock-reconciler.ts';
import { clearRedisNamespace } from '../src/redis-namespace.ts';
import { couponIdsOf } from '../src/seed.ts';
import { createTestEnv, json, type TestEnv } from './helpers.ts';

// The bench's lifecycle scenario: a small run per variant audits clean, and every audit check
// reports damage planted in the data it reads.

describe('lifecycle cell, small', () => {
  const base = loadConfig();
  const name = `orders_lifecycle_${randomBytes(4).toString('hex')}`;
  const redis = createRedis({ ...base, redisKeyPrefix: `${name}:` });
  before(async () => {
    await createDatabase(base.databaseUrl, name);
    await redis.connect();
  });
  after(async () => {
    await clearRedisNamespace(base.redisUrl, `${name}:`);
    redis.disconnect();
    await dropDatabase(base.databaseUrl, name);
  });

  for (const variant of ['row-lock', 'redis'] as const) {
    test(`${variant}: orders placed, paid, cancelled and expired; audit clean`, async () => {
      const cell = await runLifecycleCell(variant, { buyers: 4, ordersPerBuyer: 6 }, {
        databaseUrl: withDatabase(base.databaseUrl, name), redisUrl: base.redisUrl, redisKeyPrefix: `${name}:`,
        redis, poolSize: 4, label: `lifecycle ${variant}`,
      });
      assert.deepEqual(cell.audit, { clean: true, problems: [] });
      assert.equal(cell.placed + cell.refused, 24);
      assert.equal(cell.paid + cell.cancelled + cell.expired, cell.placed);
      assert.equal(cell.replayMismatches, 0);
    });
  }
});

describe('lifecycle audit, planted damage', () => {
  let env: TestEnv;
  const scale = { buyers: 2, ordersPerBuyer: 2 };
  const seed = lifecycleSeed(scale);
  // Product 1 (9.99) x2 with user 1's discount coupon and 100 points: 19.98 x0.85 = 16.98, - 1.00 = 15.98.
  let known: { orderNo: string; expected: string | null }[];
  before(async () => { env = await createTestEnv(); });
  after(async () => { await env?.close(); });
  beforeEach(async () => {
    await env.reset(seed);
    const [coupon] = couponIdsOf(seed, 1) as [number];
    const body = env.body([{ productId: 1, count: 2 }], { couponId: coupon, points: 100, total: '15.98' });
    assert.equal(body.totalAmount, '15.98');
    const paid = (await json(await env.order('redis', 1, body))).orderNo;
    const cancelled = (await json(await env.order('redis', 2, env.body([{ productId: 2, count: 1 }])))).orderNo;
    for (const [orderNo, action, user] of [[paid, 'pay', 1], [cancelled, 'cancel', 2]] as const) {
      const res = await env.app.request(`/orders/${orderNo}/${action}`, { method: 'POST', headers: { Authorization: `Bearer seed-${user}` } });
      assert.equal(res.status, 200);
    }
    known = [{ orderNo: paid, expected: 'paid' }, { orderNo: cancelled, expected: 'cancelled' }];
  });

  const audit = () => auditLifecycle(env.sql, env.redis, { seed, known, checkMirrors: true, variant: 'redis' });

  test('the undamaged run is clean', async () => {
    assert.deepEqual(await audit(), { clean: true, problems: [] });
  });

  const plants: [string, (sql: TestEnv['sql']) => Promise<unknown>, RegExp][] = [
    ['a cancelled order whose units were not given back', (sql) => sql`update product set stock = stock - 1, sales = sales + 1 where id = 2`,
      /stock is not the initial stock.*|sales are not/],
    ['a coupon left used after its order ended', (sql) => sql`
      update user_coupon set status = 'unused', order_id = null where order_id is not null`, /coupons used without a live order/],
    ['points not returned', (sql) => sql`update points set balance = balance - 5 where user_id = 2`, /users whose points/],
    ['a status other than the one answered', (sql) => sql`update orders set status = 'expired', expired_at = now(), paid_at = null where status = 'paid'`,
      /final status is not the one the API answered/],
    ['an order nobody was told of', (sql) => sql`insert into orders (user_id, total_amount, status, cancelled_at) values (1, 1.00, 'cancelled', now())`,
      /orders no buyer was told of/],
  ];
  for (const [what, plant, problem] of plants) {
    test(`reports ${what}`, async () => {
      await plant(env.sql);
      const result = await audit();
      assert.equal(result.clean, false);
      assert.match(result.problems.join('; '), problem);
    });
  }

  test('reports a Redis mirror that was not given the units back', async () => {
    await env.redis.decrby('stock:2', 1);
    assert.match((await audit()).problems.join('; '), /Redis mirrors that differ/);
    await reconcileStockMirrors(env.sql, env.redis);
    assert.deepEqual(await audit(), { clean: true, problems: [] });
  });
});
