import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { audit, type AuditInput } from '../bench/audit.ts';
import { DEFAULT_SEED } from '../src/seed.ts';
import { createTestEnv, type TestEnv } from './helpers.ts';

// The audit must find damage, or it proves nothing: each test plants one kind and expects the
// audit to report exactly that and nothing else.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

const input = (patch: Partial<AuditInput> = {}): AuditInput => ({
  initialStock: DEFAULT_SEED.stock, initialPoints: DEFAULT_SEED.pointsPerUser, successes: 0, checkMirrors: true, ...patch,
});

/** The audit's counters that are not zero. */
const damage = async (patch: Partial<AuditInput> = {}) => {
  const result = await audit(env.sql, env.redis, input(patch));
  const { clean, problems, ...counters } = result;
  assert.equal(clean, problems.length === 0);
  return Object.fromEntries(Object.entries(counters).filter(([, n]) => n !== null && n !== 0));
};

const insertOrder = async (userId: number, couponId: number | null, count = 1) => {
  const [order] = await env.sql<{ id: string }[]>`
    insert into orders (user_id, total_amount, coupon_id) values (${userId}, 9.99, ${couponId}) returning id`;
  await env.sql`insert into order_item (order_id, product_id, snapshot_id, count, unit_price) values (${order!.id}, 1, 1, ${count}, 9.99)`;
  return order!.id;
};

test('orders placed by the redis variant audit clean, mirrors included', async () => {
  for (const userId of [1, 2, 3]) {
    const res = await env.order('redis', userId, env.body([{ productId: 1, count: 2 }, { productId: 2, count: 1 }], { points: 100 }));
    assert.equal(res.status, 201);
  }
  assert.deepEqual(await damage({ successes: 3 }), {});
});

test('an order row without a stock change: oversold units and an order nobody was told of', async () => {
  await insertOrder(1, null, 3);
  assert.deepEqual(await damage(), { oversoldUnits: 3, salesMismatches: 1, ordersWithoutSuccess: 1 });
});

test('stock taken without an order: leaked units', async () => {
  await env.sql`update product set stock = stock - 4, sales = sales + 4 where id = 2`;
  assert.deepEqual(await damage({ checkMirrors: false }), { leakedUnits: 4, salesMismatches: 1 });
});

test('a coupon used by two orders (planted past the schema, which refuses it)', async () => {
  await env.sql`drop index orders_coupon_once`;
  const first = await insertOrder(1, 1);
  await insertOrder(1, 1);
  await env.sql`update product set stock = stock - 2, sales = sales + 2 where id = 1`;
  await env.sql`update user_coupon set status = 'used', order_id = ${first} where id = 1`;
  assert.deepEqual(await damage({ successes: 2, checkMirrors: false }), { couponsUsedTwice: 1 });
});

test('a coupon named by an order but left unused', async () => {
  await insertOrder(1, 1);
  await env.sql`update product set stock = stock - 1, sales = sales + 1 where id = 1`;
  assert.deepEqual(await damage({ successes: 1, checkMirrors: false }), { couponsMismatched: 1 });
});

test('points spent without an order', async () => {
  await env.sql`update points set balance = balance - 500 where user_id = 7`;
  assert.deepEqual(await damage(), { pointsUnaccounted: 1 });
});

test('a successful response without an order row', async () => {
  assert.deepEqual(await damage({ successes: 1 }), { successesWithoutOrder: 1 });
});

test('a Redis stock mirror that drifted from the database', async () => {
  await env.redis.set('stock:3', '999');
  assert.deepEqual(await damage(), { mirrorMismatches: 1 });
  assert.deepEqual(await damage({ checkMirrors: false }), {});
});
