import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createApp } from '../src/app.ts';
import { expireDueOrders, type LifecycleDeps } from '../src/orders/lifecycle.ts';
import { createOrderNumbers } from '../src/orders/order-number.ts';
import { sweepOnce } from '../src/orders/order-sweeper.ts';
import { readMirroredStock } from '../src/orders/redis-stock.ts';
import { couponIdsOf, DEFAULT_SEED } from '../src/seed.ts';
import { boundedPool } from '../src/transaction.ts';
import { createTestEnv, json, pointsOf, productRow, type TestEnv } from './helpers.ts';

// pay / cancel / expire after placement, and that what an unpaid order held (units, sales, coupon,
// points, the Redis mirror) comes back exactly once, whatever races.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

const [coupon] = couponIdsOf(DEFAULT_SEED, 1) as [number];
const auth = (userId: number) => ({ Authorization: `Bearer seed-${userId}` });

/** Product 2 (19.99) x3 with user 1's discount coupon and 100 points: 59.97 x0.85 = 50.97 (50.9745), - 1.00 = 49.97. */
async function placeOrder(variant = 'row-lock', userId = 1, withExtras = true): Promise<string> {
  const body = withExtras
    ? env.body([{ productId: 2, count: 3 }], { couponId: couponIdsOf(DEFAULT_SEED, userId)[0], points: 100, total: '49.97' })
    : env.body([{ productId: 2, count: 3 }]);
  if (withExtras) assert.equal(body.totalAmount, '49.97');
  const res = await env.order(variant, userId, body);
  const created = await json(res);
  assert.equal(res.status, 201, JSON.stringify(created));
  return created.orderNo;
}

const post = (orderNo: string, action: 'pay' | 'cancel', userId = 1) =>
  env.app.request(`/orders/${orderNo}/${action}`, { method: 'POST', headers: auth(userId) });

async function holdings() {
  const [c] = await env.sql`select status, order_id from user_coupon where id = ${coupon}`;
  return { product: await productRow(env.sql, 2), points: await pointsOf(env.sql, 1), coupon: c!.status, couponOrder: c!.orderId };
}
const HELD = { product: { stock: 997, sales: 3 }, points: 9_900, coupon: 'used' };
const GIVEN_BACK = { product: { stock: 1000, sales: 0 }, points: 10_000, coupon: 'unused', couponOrder: null };

async function statusOf(orderNo: string) {
  const res = await env.app.request(`/orders/${orderNo}`, { headers: auth(1) });
  return json(res);
}

function lifecycleDeps(paymentTtlSeconds: number): LifecycleDeps {
  return { db: boundedPool(env.sql, env.config), redis: env.redis, paymentTtlSeconds, log: () => {} };
}

describe('pay', () => {
  test('pending -> paid, holding everything; paying again answers the same', async () => {
    const orderNo = await placeOrder();
    const res = await post(orderNo, 'pay');
    const paid = await json(res);
    assert.equal(res.status, 200, JSON.stringify(paid));
    assert.equal(paid.status, 'paid');
    assert.ok(Date.parse(paid.paidAt) > 0);
    assert.equal(paid.cancelledAt, null);
    assert.deepEqual(await holdings(), { ...HELD, couponOrder: (await env.sql`select id from orders`)[0]!.id });

    const again = await post(orderNo, 'pay');
    assert.equal(again.status, 200);
    assert.equal((await json(again)).paidAt, paid.paidAt);
    assert.equal((await statusOf(orderNo)).status, 'paid');
  });

  test('a cancelled order cannot be paid', async () => {
    const orderNo = await placeOrder();
    assert.equal((await post(orderNo, 'cancel')).status, 200);
    const res = await post(orderNo, 'pay');
    assert.equal(res.status, 409);
    assert.deepEqual((await json(res)).error, { code: 'ORDER_NOT_PENDING', message: 'the order is cancelled', status: 'cancelled' });
    assert.equal((await statusOf(orderNo)).status, 'cancelled');
    assert.deepEqual(await holdings(), GIVEN_BACK);
  });

  test('an order past its payment deadline is expired when paid, and gives back', async () => {
    await placeOrder();
    // The same service with a 60 s deadline, and the order placed two minutes ago. Its number
    // carries its creation date, so it is rebuilt from the moved time.
    const app = createApp({ sql: env.sql, redis: env.redis, config: { ...env.config, lifecycle: { ...env.config.lifecycle, paymentTtlSeconds: 60 } } });
    const [row] = await env.sql<{ id: string; createdAt: Date }[]>`
      update orders set created_at = created_at - interval '2 minutes' returning id, created_at`;
    const movedNo = createOrderNumbers(env.config.hashidsSalt).format(Number(row!.id), row!.createdAt);
    const res = await app.request(`/orders/${movedNo}/pay`, { method: 'POST', headers: auth(1) });
    assert.equal(res.status, 409);
    assert.equal((await json(res)).error.status, 'expired');
    const [order] = await env.sql`select status, paid_at, expired_at from orders`;
    assert.equal(order!.status, 'expired');
    assert.equal(order!.paidAt, null);
    assert.ok(order!.expiredAt instanceof Date);
    assert.deepEqual(await holdings(), GIVEN_BACK);
  });
});

describe('cancel', () => {
  test('gives back units, sales, coupon and points once; cancelling again answers the same', async () => {
    const orderNo = await placeOrder();
    const res = await post(orderNo, 'cancel');
    const cancelled = await json(res);
    assert.equal(res.status, 200, JSON.stringify(cancelled));
    assert.equal(cancelled.status, 'cancelled');
    assert.ok(Date.parse(cancelled.cancelledAt) > 0);
    assert.deepEqual(await holdings(), GIVEN_BACK);

    const again = await post(orderNo, 'cancel');
    assert.equal(again.status, 200);
    assert.equal((await json(again)).cancelledAt, cancelled.cancelledAt);
    assert.deepEqual(await holdings(), GIVEN_BACK, 'nothing given back twice');
  });

  test('a paid order cannot be cancelled, and keeps what it took', async () => {
    const orderNo = await placeOrder();
    assert.equal((await post(orderNo, 'pay')).status, 200);
    const res = await post(orderNo, 'cancel');
    assert.equal(res.status, 409);
    assert.equal((await json(res)).error.status, 'paid');
    assert.equal((await holdings()).product.stock, 997);
  });

  test('only the owner can pay or cancel: anyone else gets 404 and changes nothing', async () => {
    const orderNo = await placeOrder();
    for (const action of ['pay', 'cancel'] as const) {
      const res = await post(orderNo, action, 2);
      assert.equal(res.status, 404);
      assert.equal((await json(res)).error.code, 'NOT_FOUND');
    }
    assert.equal((await statusOf(orderNo)).status, 'pending_payment');
    assert.equal((await holdings()).product.stock, 997);
    assert.equal((await post('20260101abcdef', 'cancel')).status, 404);
  });

  test('the coupon a cancelled order gave back can be used by a new order', async () => {
    await post(await placeOrder(), 'cancel');
    await placeOrder();
    const orders = await env.sql`select status, coupon_id from orders order by id`;
    assert.deepEqual(orders.map((o) => ({ ...o })), [
      { status: 'cancelled', couponId: coupon },
      { status: 'pending_payment', couponId: coupon },
    ]);
    assert.deepEqual(await holdings(), { ...HELD, couponOrder: (await env.sql`select max(id) as id from orders`)[0]!.id });
  });

  test('an order placed through redis gives its units back to the mirror too', async () => {
    const orderNo = await placeOrder('redis', 1, false);
    assert.equal((await readMirroredStock(env.redis, [2])).get(2), 997);
    assert.equal((await post(orderNo, 'cancel')).status, 200);
    assert.equal((await readMirroredStock(env.redis, [2])).get(2), 1000);
    assert.deepEqual(await productRow(env.sql, 2), { stock: 1000, sales: 0 });
  });

  test('an order placed through row-lock leaves the mirror alone (its sale never lowered it)', async () => {
    const orderNo = await placeOrder('row-lock', 1, false);
    assert.equal((await post(orderNo, 'cancel')).status, 200);
    assert.equal((await readMirroredStock(env.redis, [2])).get(2), 1000);
  });
});

describe('expiry', () => {
  test('the sweep expires unpaid orders past the deadline only, gives back once, and prunes expired keys', async () => {
    const paid = await placeOrder('row-lock', 1);
    await post(paid, 'pay');
    const unpaid = await placeOrder('row-lock', 2);
    await env.sql`insert into idempotency_key (user_id, key, fingerprint, status_code, response, expires_at)
      values (1, 'old', 'x', 409, '{}', now() - interval '1 second'), (1, 'new', 'x', 409, '{}', now() + interval '1 hour')`;

    assert.deepEqual(await sweepOnce(lifecycleDeps(3600)), { expired: 0, keysPruned: 1 }, 'nothing is due yet');
    assert.deepEqual(await sweepOnce(lifecycleDeps(0)), { expired: 1, keysPruned: 0 });
    assert.deepEqual(await sweepOnce(lifecycleDeps(0)), { expired: 0, keysPruned: 0 });

    const orders = await env.sql`select user_id, status, expired_at is not null as has_time from orders order by id`;
    assert.deepEqual(orders.map((o) => ({ ...o })), [
      { userId: 1, status: 'paid', hasTime: false },
      { userId: 2, status: 'expired', hasTime: true },
    ]);
    // User 1's order holds 3 units, user 2's gave its 3 back; user 2's coupon and points are back.
    assert.deepEqual(await productRow(env.sql, 2), { stock: 997, sales: 3 });
    assert.equal(await pointsOf(env.sql, 2), 10_000);
    const [c2] = await env.sql`select status from user_coupon where id = ${couponIdsOf(DEFAULT_SEED, 2)[0]!}`;
    assert.equal(c2!.status, 'unused');
    assert.deepEqual((await env.sql`select key from idempotency_key`).map((k) => k.key), ['new']);
    assert.equal((await post(unpaid, 'pay', 2)).status, 409);
  });
});

describe('races: one winner, one give-back', () => {
  test('100 pays and 100 cancels at once on one order', async () => {
    for (let round = 0; round < 3; round++) {
      await env.reset();
      const orderNo = await placeOrder();
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => post(orderNo, i % 2 ? 'pay' : 'cancel')));
      const statuses = answers.map((r) => r.status);
      const { status } = await statusOf(orderNo);
      assert.ok(status === 'paid' || status === 'cancelled');
      // Every request of the winning kind answers 200 (the winner, then repeats); the losers 409.
      const winners = answers.filter((_, i) => (i % 2 ? 'paid' : 'cancelled') === status);
      assert.deepEqual(new Set(winners.map((r) => r.status)), new Set([200]));
      assert.equal(statuses.filter((s) => s === 409).length, 100);
      if (status === 'paid') assert.deepEqual((await holdings()).product, HELD.product);
      else assert.deepEqual(await holdings(), GIVEN_BACK);
    }
  });

  test('a sweep expiring while the buyers pay: each order paid or expired, given back exactly when expired', async () => {
    const orderNos: string[] = [];
    for (let user = 1; user <= 40; user++) orderNos.push(await placeOrder('row-lock', user));
    const deps = lifecycleDeps(0);
    const [pays] = await Promise.all([
      Promise.all(orderNos.map((no, i) => post(no, 'pay', i + 1))),
      sweepOnce(deps),
      expireDueOrders(deps, 10),
    ]);
    const rows = await env.sql<{ userId: number; status: string }[]>`select user_id, status from orders order by user_id`;
    let paidUnits = 0;
    for (const row of rows) {
      const res = pays[row.userId - 1]!;
      assert.ok(row.status === 'paid' || row.status === 'expired', row.status);
      assert.equal(res.status, row.status === 'paid' ? 200 : 409, `user ${row.userId}`);
      if (row.status === 'paid') paidUnits += 3;
      assert.equal(await pointsOf(env.sql, row.userId), row.status === 'paid' ? 9_900 : 10_000);
      const [c] = await env.sql`select status from user_coupon where id = ${couponIdsOf(DEFAULT_SEED, row.userId)[0]!}`;
      assert.equal(c!.status, row.status === 'paid' ? 'used' : 'unused');
    }
    assert.deepEqual(await productRow(env.sql, 2), { stock: 1000 - paidUnits, sales: paidUnits });
  });

  test('two sweepers at once expire every due order once between them', async () => {
    for (let user = 1; user <= 60; user++) await placeOrder('row-lock', user, false);
    const deps = lifecycleDeps(0);
    const [a, b] = await Promise.all([sweepOnce(deps), sweepOnce(deps)]);
    assert.equal(a.expired + b.expired, 60);
    assert.deepEqual(await productRow(env.sql, 2), { stock: 1000, sales: 0 });
    const [{ count }] = await env.sql`select count(*)::int from orders where status = 'expired'` as unknown as [{ count: number }];
    assert.equal(count, 60);
  });
});

describe('schema: the last line of defence', () => {
  test('a status change must record its time', async () => {
    await placeOrder();
    await assert.rejects(env.sql`update orders set status = 'paid'`, /orders_check|check constraint/);
    await assert.rejects(env.sql`update orders set cancelled_at = now()`, /check constraint/);
  });

  test('a coupon names at most one live order', async () => {
    await placeOrder();
    await assert.rejects(env.sql`
      insert into orders (user_id, total_amount, coupon_id) values (1, 1.00, ${coupon})`, /orders_coupon_once/);
  });
});
