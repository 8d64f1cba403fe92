import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { audit, type AuditInput, type Created } from '../bench/audit.ts';
import { createOrderNumbers } from '../src/orders/order-number.ts';
import { DEFAULT_SEED } from '../src/seed.ts';
import { createTestEnv, json, type TestEnv } from './helpers.ts';

// The audit must find damage, or it proves nothing: each test plants one kind and expects the
// audit to report exactly that and nothing else. Planted orders are otherwise whole (stock,
// sales, coupon and points moved as a real order moves them), so that only the planted fault shows.
// Seed: product p costs 9.99 + 10.00 x (p - 1); user u owns coupons 4u-3 .. 4u, odd ones a 15%
// discount (rate 0.85), even ones 10.00 off from 100.00; every user has 10,000 points.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

const numbers = () => createOrderNumbers(env.config.hashidsSalt);

const input = (patch: Partial<AuditInput> = {}): AuditInput => ({
  initialStock: DEFAULT_SEED.stock, initialPoints: DEFAULT_SEED.pointsPerUser, created: [], orderNumbers: numbers(),
  checkMirrors: false, ...patch,
});

/** The audit's counters that are not zero. */
const damage = async (patch: Partial<AuditInput> = {}) => {
  const result = await audit(env.sql, env.redis, input(patch));
  const { clean, problems, examples, ...counters } = result;
  assert.equal(clean, problems.length === 0);
  assert.equal(examples.length > 0, counters.successesWithoutOrder + counters.successesSharingOrder + counters.successesOfAnotherOrder +
    counters.ordersWithoutSuccess + counters.ordersWithoutLines + counters.totalsWrong + counters.couponsOfAnotherUser > 0,
    'per-order findings come with examples');
  return Object.fromEntries(Object.entries(counters).filter(([, n]) => n !== null && n !== 0));
};

interface Plant {
  userId: number;
  lines: { productId: number; count: number; unitPrice: string }[];
  total: string;
  couponId?: number;
  pointsUsed?: number;
  status?: 'pending_payment' | 'paid' | 'cancelled' | 'expired';
  /** Move stock, sales, coupon and points as the order would (a live order holds them). Default: when live. */
  hold?: boolean;
}

/** Writes one order as the service would have; returns what its client was told. */
async function plant(p: Plant): Promise<Created> {
  const status = p.status ?? 'pending_payment';
  const hold = p.hold ?? (status === 'pending_payment' || status === 'paid');
  const at = (s: string) => (status === s ? new Date() : null);
  const [order] = await env.sql<{ id: string; createdAt: Date }[]>`
    insert into orders (user_id, total_amount, coupon_id, points_used, status, paid_at, cancelled_at, expired_at)
    values (${p.userId}, ${p.total}, ${p.couponId ?? null}, ${p.pointsUsed ?? 0}, ${status}, ${at('paid')}, ${at('cancelled')}, ${at('expired')})
    returning id, created_at`;
  for (const l of p.lines) {
    await env.sql`insert into order_item (order_id, product_id, snapshot_id, count, unit_price)
      values (${order!.id}, ${l.productId}, ${l.productId}, ${l.count}, ${l.unitPrice})`;
    if (hold) await env.sql`update product set stock = stock - ${l.count}, sales = sales + ${l.count} where id = ${l.productId}`;
  }
  if (hold && p.couponId) await env.sql`update user_coupon set status = 'used', order_id = ${order!.id}, used_at = now() where id = ${p.couponId}`;
  if (hold && p.pointsUsed) await env.sql`update points set balance = balance - ${p.pointsUsed} where user_id = ${p.userId}`;
  return { userId: p.userId, orderNo: numbers().format(Number(order!.id), order!.createdAt) };
}

const oneOf = (productId: number, unitPrice: string, count = 1) => [{ productId, count, unitPrice }];

test('orders placed through the service (redis variant) audit clean, mirrors included', async () => {
  const created: Created[] = [];
  for (const userId of [1, 2, 3]) {
    const res = await env.order('redis', userId, env.body([{ productId: 1, count: 2 }, { productId: 2, count: 1 }], { points: 100 }));
    assert.equal(res.status, 201);
    created.push({ userId, orderNo: (await json(res)).orderNo });
  }
  assert.deepEqual(await damage({ created, checkMirrors: true }), {});
});

test('planted orders priced by hand audit clean: discount rounded half up, reduction at its threshold, points', async () => {
  const created = [
    // 0.10 x 0.85 = 0.085: half up 0.09 (half even would say 0.08).
    await plant({ userId: 1, lines: oneOf(1, '0.10'), couponId: 1, total: '0.09' }),
    // 50.00 + 2 x 25.00 = 100.00, at the threshold: 90.00.
    await plant({ userId: 1, lines: [{ productId: 1, count: 1, unitPrice: '50.00' }, { productId: 2, count: 2, unitPrice: '25.00' }], couponId: 2, total: '90.00' }),
    // 9.99 less 100 points (1.00) = 8.99.
    await plant({ userId: 2, lines: oneOf(1, '9.99'), pointsUsed: 100, total: '8.99' }),
    // 9.99 paid entirely with 999 points.
    await plant({ userId: 3, lines: oneOf(3, '9.99'), pointsUsed: 999, total: '0.00', status: 'paid' }),
  ];
  assert.deepEqual(await damage({ created }), {});
});

test('a discount total rounded down instead of half up', async () => {
  const created = [await plant({ userId: 1, lines: oneOf(1, '0.10'), couponId: 1, total: '0.08' })];
  assert.deepEqual(await damage({ created }), { totalsWrong: 1 });
});

test('a total one cent off its lines, with two lines and no coupon', async () => {
  // 2 x 9.99 + 19.99 = 39.97, stored as 39.98.
  const created = [await plant({ userId: 4, lines: [{ productId: 1, count: 2, unitPrice: '9.99' }, { productId: 2, count: 1, unitPrice: '19.99' }], total: '39.98' })];
  assert.deepEqual(await damage({ created }), { totalsWrong: 1 });
});

test('a reduction coupon applied below its threshold', async () => {
  // 99.99 < 100.00: the coupon does not apply, whatever the total says (89.99 would be 10.00 off).
  const created = [await plant({ userId: 1, lines: oneOf(1, '99.99'), couponId: 2, total: '89.99' })];
  assert.deepEqual(await damage({ created }), { totalsWrong: 1 });
});

test('more points used than the order had to pay', async () => {
  // 9.99 is 999 cents: 1,000 points cannot all be spent; the total cannot go below zero either.
  const created = [await plant({ userId: 1, lines: oneOf(1, '9.99'), pointsUsed: 1000, total: '0.00' })];
  assert.deepEqual(await damage({ created }), { totalsWrong: 1 });
});

test('an order without lines', async () => {
  const created = [await plant({ userId: 1, lines: [], total: '0.00' })];
  assert.deepEqual(await damage({ created }), { ordersWithoutLines: 1 });
});

test('an order row no success named: oversold units when it took no stock', async () => {
  await plant({ userId: 1, lines: oneOf(1, '9.99', 3), total: '29.97', hold: false });
  assert.deepEqual(await damage(), { oversoldUnits: 3, salesMismatches: 1, ordersWithoutSuccess: 1 });
});

test('one order too many and one lost cancel out in a count, not per order', async () => {
  const told = await plant({ userId: 1, lines: oneOf(1, '9.99'), total: '9.99' });
  await plant({ userId: 2, lines: oneOf(2, '19.99'), total: '19.99' });
  // The client of user 1 got two order numbers: its own and one for an order that does not exist.
  const lost = { userId: 1, orderNo: numbers().format(Number(numbers().parse(told.orderNo)!.id) + 1000, new Date()) };
  assert.deepEqual(await damage({ created: [told, lost] }), { successesWithoutOrder: 1, ordersWithoutSuccess: 1 });
});

test('a success whose order number is not an order number at all', async () => {
  assert.deepEqual(await damage({ created: [{ userId: 1, orderNo: 'not-a-number' }] }), { successesWithoutOrder: 1 });
});

test('one order number given to two successes', async () => {
  const told = await plant({ userId: 1, lines: oneOf(1, '9.99'), total: '9.99' });
  assert.deepEqual(await damage({ created: [told, told] }), { successesSharingOrder: 1 });
});

test('a success naming another user\'s order', async () => {
  const told = await plant({ userId: 1, lines: oneOf(1, '9.99'), total: '9.99' });
  assert.deepEqual(await damage({ created: [{ ...told, userId: 2 }] }), { successesOfAnotherOrder: 1 });
});

test('a success whose order number carries another day than its order', async () => {
  const told = await plant({ userId: 1, lines: oneOf(1, '9.99'), total: '9.99' });
  const wrongDay = `19991231${told.orderNo.slice(8)}`;
  assert.deepEqual(await damage({ created: [{ ...told, orderNo: wrongDay }] }), { successesOfAnotherOrder: 1 });
});

test('stock taken without an order: leaked units', async () => {
  await env.sql`update product set stock = stock - 4, sales = sales + 4 where id = 2`;
  assert.deepEqual(await damage(), { leakedUnits: 4, salesMismatches: 1 });
});

test('an order using another user\'s coupon (planted past the schema, which refuses it)', async () => {
  await env.sql`alter table orders drop constraint orders_coupon_owned_by_user`;
  // Coupon 1 is user 1's 15% discount: 9.99 x 0.85 = 8.4915, 8.49.
  const created = [await plant({ userId: 2, lines: oneOf(1, '9.99'), couponId: 1, total: '8.49' })];
  assert.deepEqual(await damage({ created }), { couponsOfAnotherUser: 1 });
});

test('a coupon used by two orders (planted past the schema, which refuses it)', async () => {
  await env.sql`drop index orders_coupon_once`;
  const first = await plant({ userId: 1, lines: oneOf(1, '9.99'), couponId: 1, total: '8.49' });
  const second = await plant({ userId: 1, lines: oneOf(1, '9.99'), couponId: 1, total: '8.49', hold: false });
  await env.sql`update product set stock = stock - 1, sales = sales + 1 where id = 1`;
  await env.sql`update user_coupon set order_id = ${numbers().parse(first.orderNo)!.id} where id = 1`;
  assert.deepEqual(await damage({ created: [first, second] }), { couponsUsedTwice: 1 });
});

test('a coupon named by an order but left unused', async () => {
  const created = [await plant({ userId: 1, lines: oneOf(1, '9.99'), couponId: 1, total: '8.49', hold: false })];
  await env.sql`update product set stock = stock - 1, sales = sales + 1 where id = 1`;
  assert.deepEqual(await damage({ created }), { couponsMismatched: 1 });
});

test('cancelled and expired orders that gave everything back audit clean', async () => {
  const created = [
    await plant({ userId: 1, lines: oneOf(1, '9.99', 2), couponId: 1, pointsUsed: 100, total: '15.98', status: 'cancelled' }),
    await plant({ userId: 2, lines: oneOf(2, '19.99'), couponId: 5, total: '16.99', status: 'expired' }),
  ];
  // 2 x 9.99 = 19.98, x 0.85 = 16.983 -> 16.98, less 1.00 of points = 15.98; 19.99 x 0.85 = 16.9915 -> 16.99.
  assert.deepEqual(await damage({ created }), {});
});

test('a cancelled order that kept its units, coupon and points', async () => {
  const created = [await plant({ userId: 1, lines: oneOf(1, '9.99', 2), couponId: 1, pointsUsed: 100, total: '15.98', status: 'cancelled', hold: true })];
  assert.deepEqual(await damage({ created }), { leakedUnits: 2, salesMismatches: 1, couponsMismatched: 1, pointsUnaccounted: 1 });
});

test('points spent without an order', async () => {
  await env.sql`update points set balance = balance - 500 where user_id = 7`;
  assert.deepEqual(await damage(), { pointsUnaccounted: 1 });
});

test('a Redis stock mirror that drifted from the database', async () => {
  await env.redis.set('stock:3', '999');
  assert.deepEqual(await damage({ checkMirrors: true }), { mirrorMismatches: 1 });
  assert.deepEqual(await damage(), {});
});
