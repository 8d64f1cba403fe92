import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import { placeOrderCall, placeOrdersCall } from '../src/orders/order-functions.ts';
import type { VerifiedOrderInput } from '../src/orders/verified-order.ts';
import { couponIdsOf, DEFAULT_SEED, DISCOUNT_RATE } from '../src/seed.ts';
import { createTestEnv, dbState, type TestEnv } from './helpers.ts';

// place_order and place_orders (sql/place-order.sql) called directly, with inputs that no longer
// hold by the time the function runs: the service's own checks cannot catch these, only the
// function's under its locks. Each refusal must name the first input that fails, in the service's
// order (products by id, coupon, points) and write nothing; a refusal returns before the next
// lock, so a refused order never waits for a row it does not need.
//
// The seed: product i costs 9.99 + (i - 1) x 10.00, stock 1,000, snapshot i; user 1 owns coupons
// 1-4 (odd: discount x0.85, even: reduction 10.00 off 100.00); every user holds 10,000 points.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

const [discountCoupon] = couponIdsOf(DEFAULT_SEED, 1) as [number];
const discount = { kind: 'discount' as const, rate: DISCOUNT_RATE, threshold: null, amount: null };

/** One order of user 1 for products 1 and 2 at one unit each: 9.99 + 19.99 = 29.98. */
function order(patch: Partial<VerifiedOrderInput> = {}): VerifiedOrderInput {
  return {
    userId: 1, productIds: [1, 2], snapshotIds: [1, 2], counts: [1, 1], prices: ['9.99', '19.99'],
    couponId: null, coupon: null, points: 0, pointsUsed: 0, total: '29.98', requestKey: randomUUID(), ...patch,
  };
}

/** 29.98 x 0.85 = 25.483 -> 25.48; 100 points -> 24.48. */
const withCouponAndPoints = () => order({ couponId: discountCoupon, coupon: discount, points: 100, pointsUsed: 100, total: '24.48' });

/**
 * Holds the rows `lockSql` locks in a transaction of another session (as a slow order would) until
 * the returned function is called.
 */
async function hold(lockSql: string): Promise<() => Promise<void>> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => { release = resolve; });
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => { locked = resolve; });
  const holder = env.sql.begin(async (tx) => {
    await tx.unsafe(lockSql).simple();
    locked();
    await released;
  });
  await isLocked;
  return async () => { release(); await holder; };
}

// Each case: what changes after the order was priced, and the refusal the function must return.
const refusals: { name: string; change: () => Promise<unknown>; input?: () => VerifiedOrderInput; refusal: object }[] = [
  { name: 'unknown product', change: async () => {}, input: () => order({ productIds: [1, 42], snapshotIds: [1, 42] }),
    refusal: { code: 'UNKNOWN_PRODUCT', productId: 42 } },
  { name: 'off the shelf', change: () => env.sql`update product set on_shelf = false where id = 2`,
    refusal: { code: 'OFF_SHELF', productId: 2 } },
  { name: 'price changed', change: () => env.sql`update product set price = 25.00 where id = 2`,
    refusal: { code: 'PRICE_CHANGED', productId: 2, price: '25.00', snapshotId: 2 } },
  { name: 'snapshot changed (renamed, same price)', change: async () => {
    await env.sql`insert into product_snapshot (id, product_id, name, price) values (500, 2, 'Product 2, renamed', 19.99)`;
    await env.sql`update product set snapshot_id = 500 where id = 2`;
  }, refusal: { code: 'SNAPSHOT_CHANGED', productId: 2, snapshotId: 500 } },
  { name: 'out of stock', change: () => env.sql`update product set stock = 0 where id = 2`,
    refusal: { code: 'OUT_OF_STOCK', productId: 2, available: 0, requested: 1 } },
  { name: 'the first failing line by product id wins, whatever the lines\' order (product 1 before 2)',
    change: () => env.sql`update product set stock = 0 where id in (1, 2)`,
    input: () => order({ productIds: [2, 1], snapshotIds: [2, 1], prices: ['19.99', '9.99'] }),
    refusal: { code: 'OUT_OF_STOCK', productId: 1, available: 0, requested: 1 } },
  { name: 'products before the coupon', change: () => env.sql`update product set stock = 0 where id = 2`,
    input: () => ({ ...withCouponAndPoints(), couponId: 999 }), refusal: { code: 'OUT_OF_STOCK', productId: 2, available: 0, requested: 1 } },
  { name: 'coupon not owned', change: async () => {}, input: () => ({ ...withCouponAndPoints(), userId: 2 }),
    refusal: { code: 'COUPON_INVALID', couponId: discountCoupon, reason: 'not_owned' } },
  // Another order of user 1 used it first: product 3, 29.99 x 0.85 = 25.4915 -> 25.49.
  { name: 'coupon used meanwhile', change: () => placeOrderCall(env.sql, order({ productIds: [3], snapshotIds: [3], counts: [1],
    prices: ['29.99'], couponId: discountCoupon, coupon: discount, total: '25.49' })),
    input: withCouponAndPoints, refusal: { code: 'COUPON_INVALID', couponId: discountCoupon, reason: 'used' } },
  { name: 'coupon redefined meanwhile', change: () => env.sql`update user_coupon set rate = 0.5 where id = ${discountCoupon}`,
    input: withCouponAndPoints, refusal: { code: 'COUPON_CHANGED', couponId: discountCoupon } },
  { name: 'coupon before points', change: () => env.sql`update user_coupon set rate = 0.5 where id = ${discountCoupon}`,
    input: () => ({ ...withCouponAndPoints(), points: 20_000 }), refusal: { code: 'COUPON_CHANGED', couponId: discountCoupon } },
  { name: 'points spent meanwhile', change: () => env.sql`update points set balance = 99 where user_id = 1`,
    input: withCouponAndPoints, refusal: { code: 'POINTS_INSUFFICIENT', requested: 100, balance: 99 } },
];

describe('place_order refuses what no longer holds: the first failing input, nothing written', () => {
  for (const c of refusals) {
    test(c.name, async () => {
      await c.change();
      const before = await dbState(env.sql);
      const result = await placeOrderCall(env.sql, (c.input ?? order)());
      assert.deepEqual(result, { orderId: null, createdAt: null, refusal: c.refusal });
      assert.deepEqual(await dbState(env.sql), before);
    });
  }

  // With the rows held elsewhere, an order that waited for them would fail after the session's
  // lock_timeout (503 TIMEOUT) instead of answering its refusal.
  test('a product refusal never waits for the coupon or the points row', async () => {
    await env.sql`update product set stock = 0 where id = 2`;
    const release = await hold(`select 1 from user_coupon where id = ${discountCoupon} for update; select 1 from points where user_id = 1 for update`);
    try {
      const result = await placeOrderCall(env.sql, withCouponAndPoints());
      assert.deepEqual(result.refusal, { code: 'OUT_OF_STOCK', productId: 2, available: 0, requested: 1 });
    } finally {
      await release();
    }
  });

  test('a coupon refusal never waits for the points row', async () => {
    await env.sql`update user_coupon set rate = 0.5 where id = ${discountCoupon}`;
    const release = await hold('select 1 from points where user_id = 1 for update');
    try {
      const result = await placeOrderCall(env.sql, withCouponAndPoints());
      assert.deepEqual(result.refusal, { code: 'COUPON_CHANGED', couponId: discountCoupon });
    } finally {
      await release();
    }
  });
});

describe('place_orders: the same refusals per entry, its neighbours placed', () => {
  test('every refusal in one batch beside a valid order each time', async () => {
    for (const c of refusals) {
      await env.reset();
      await c.change();
      const before = await dbState(env.sql);
      // A valid order of product 3 (29.99) by user 3, then the refused one.
      const valid = order({ userId: 3, productIds: [3], snapshotIds: [3], counts: [2], prices: ['29.99'], total: '59.98' });
      const results = await placeOrdersCall(env.sql, [{ input: valid, verifyOnly: false }, { input: (c.input ?? order)(), verifyOnly: false }]);
      assert.deepEqual(results.get(1), { idx: 1, orderId: null, createdAt: null, refusal: c.refusal }, c.name);
      assert.ok(results.get(0)!.orderId, c.name);
      const after = await dbState(env.sql);
      // Only the valid order was written: 2 units of product 3, one order, one line.
      assert.deepEqual(after, { ...before, stock: before.stock - 2, sales: before.sales + 2, orders: before.orders + 1, items: before.items + 1 }, c.name);
    }
  });
});

describe('place_order writes what it verified', () => {
  test('products, coupon and points: stock, sales, lines, coupon and balance as worked out by hand', async () => {
    // 2 x 9.99 + 19.99 = 39.97; x0.85 = 33.9745 -> 33.97; 100 points -> 32.97.
    const input = { ...withCouponAndPoints(), counts: [2, 1], total: '32.97' };
    const result = await placeOrderCall(env.sql, input);
    assert.equal(result.refusal, null);
    const [o] = await env.sql`select id, user_id, total_amount, coupon_id, points_used, request_key from orders`;
    assert.deepEqual({ ...o }, { id: result.orderId, userId: 1, totalAmount: '32.97', couponId: discountCoupon, pointsUsed: 100, requestKey: input.requestKey });
    const lines = await env.sql`select product_id, snapshot_id, count, unit_price from order_item order by product_id`;
    assert.deepEqual(lines.map((l) => ({ ...l })), [
      { productId: 1, snapshotId: 1, count: 2, unitPrice: '9.99' }, { productId: 2, snapshotId: 2, count: 1, unitPrice: '19.99' }]);
    const stock = await env.sql`select id, stock, sales from product where id in (1, 2) order by id`;
    assert.deepEqual(stock.map((r) => ({ ...r })), [{ id: 1, stock: 998, sales: 2 }, { id: 2, stock: 999, sales: 1 }]);
    const [coupon] = await env.sql`select status, order_id from user_coupon where id = ${discountCoupon}`;
    assert.deepEqual({ ...coupon }, { status: 'used', orderId: result.orderId });
    const [points] = await env.sql`select balance from points where user_id = 1`;
    assert.equal(points!.balance, 9_900);
  });

  test('two orders locking the same products in opposite line orders, 200 times at once: no deadlock, stock conserved', async () => {
    const calls = Array.from({ length: 200 }, (_, k) => placeOrderCall(env.sql, k % 2
      ? order({ userId: 1 + (k % 50), productIds: [2, 1], snapshotIds: [2, 1], counts: [1, 1], prices: ['19.99', '9.99'] })
      : order({ userId: 1 + (k % 50) })));
    const results = await Promise.all(calls);
    assert.ok(results.every((r) => r.orderId !== null && r.refusal === null));
    const stock = await env.sql`select id, stock, sales from product where id in (1, 2) order by id`;
    assert.deepEqual(stock.map((r) => ({ ...r })), [{ id: 1, stock: 800, sales: 200 }, { id: 2, stock: 800, sales: 200 }]);
  });
});

describe('place_orders: a batch verified and written together, each order as the ones before it leave the rows', () => {
  const entry = (input: VerifiedOrderInput, verifyOnly = false) => ({ input, verifyOnly });
  const product = (id: number, count: number, price: string, patch: Partial<VerifiedOrderInput> = {}) =>
    order({ productIds: [id], snapshotIds: [id], counts: [count], prices: [price], ...patch });
  const stockOf = async (ids: number[]) =>
    (await env.sql`select id, stock, sales from product where id = any(${ids}::int[]) order by id`).map((r) => ({ ...r }));

  test('orders sharing products, a coupon and points: stock, sales, lines, coupon and balance by hand; each row updated once', async () => {
    // A (user 1): 2 x 9.99 + 19.99 = 39.97, x0.85 = 33.97, 100 points -> 32.97.
    // B (user 1): 3 x 9.99 = 29.97, 200 points -> 27.97.  C (user 2): 19.99 + 29.99 = 49.98.
    const a = { ...withCouponAndPoints(), counts: [2, 1], total: '32.97' };
    const b = product(1, 3, '9.99', { points: 200, pointsUsed: 200, total: '27.97' });
    const c = order({ userId: 2, productIds: [2, 3], snapshotIds: [2, 3], prices: ['19.99', '29.99'], total: '49.98' });
    // Counts the product rows' updates (a row trigger of this test only).
    await env.sql.unsafe(`
      create table product_updates (id integer);
      create function count_product_update() returns trigger language plpgsql as
        'begin insert into product_updates values (new.id); return new; end';
      create trigger count_product_update after update on product for each row execute function count_product_update();`).simple();
    let results, updates;
    try {
      results = await placeOrdersCall(env.sql, [entry(a), entry(b), entry(c)]);
      updates = await env.sql`select id, count(*)::int as n from product_updates group by id order by id`;
    } finally {
      await env.sql.unsafe(`drop trigger count_product_update on product; drop function count_product_update();
        drop table product_updates`).simple();
    }
    assert.deepEqual([0, 1, 2].map((i) => results.get(i)!.refusal), [null, null, null]);
    // Three products, each updated once for the whole batch (one by one: 5 updates, products 1 and 2 twice).
    assert.deepEqual(updates.map((u) => [u.id, u.n]), [[1, 1], [2, 1], [3, 1]]);
    assert.deepEqual(await stockOf([1, 2, 3]), [
      { id: 1, stock: 995, sales: 5 }, { id: 2, stock: 998, sales: 2 }, { id: 3, stock: 999, sales: 1 }]);
    const orders = await env.sql`select id, user_id, total_amount, coupon_id, points_used, request_key from orders order by id`;
    assert.deepEqual(orders.map((o) => ({ ...o })), [
      { id: results.get(0)!.orderId, userId: 1, totalAmount: '32.97', couponId: discountCoupon, pointsUsed: 100, requestKey: a.requestKey },
      { id: results.get(1)!.orderId, userId: 1, totalAmount: '27.97', couponId: null, pointsUsed: 200, requestKey: b.requestKey },
      { id: results.get(2)!.orderId, userId: 2, totalAmount: '49.98', couponId: null, pointsUsed: 0, requestKey: c.requestKey },
    ]);
    const lines = await env.sql`select order_id, product_id, count, unit_price from order_item order by order_id, product_id`;
    assert.deepEqual(lines.map((l) => [l.orderId, l.productId, l.count, l.unitPrice]), [
      [results.get(0)!.orderId, 1, 2, '9.99'], [results.get(0)!.orderId, 2, 1, '19.99'], [results.get(1)!.orderId, 1, 3, '9.99'],
      [results.get(2)!.orderId, 2, 1, '19.99'], [results.get(2)!.orderId, 3, 1, '29.99']]);
    const [coupon] = await env.sql`select status, order_id from user_coupon where id = ${discountCoupon}`;
    assert.deepEqual({ ...coupon }, { status: 'used', orderId: results.get(0)!.orderId });
    const balances = await env.sql`select user_id, balance from points where user_id in (1, 2) order by user_id`;
    assert.deepEqual(balances.map((r) => [r.userId, r.balance]), [[1, 9_700], [2, 10_000]]);
  });

  test('stock running out within the batch: the refused order takes nothing, the ones after it see what is left', async () => {
    await env.sql`update product set stock = 5 where id = 1`;
    const results = await placeOrdersCall(env.sql, [
      entry(product(1, 2, '9.99', { total: '19.98' })),
      entry(product(1, 4, '9.99', { total: '39.96' }), true),  // verify only: 5 - 2 = 3 left
      entry(product(1, 2, '9.99', { total: '19.98' })),
      entry(product(1, 2, '9.99', { total: '19.98' })),          // 1 left
      entry(product(1, 1, '9.99', { total: '9.99' })),
      entry(product(1, 3, '9.99', { total: '29.97' }), true),  // verify only: 0 left
    ]);
    const refusals = [0, 1, 2, 3, 4, 5].map((i) => results.get(i)!.refusal);
    const outOfStock = (available: number, requested: number) => ({ code: 'OUT_OF_STOCK', productId: 1, available, requested });
    assert.deepEqual(refusals, [null, outOfStock(3, 4), null, outOfStock(1, 2), null, outOfStock(0, 3)]);
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => results.get(i)!.orderId !== null), [true, false, true, false, true, false]);
    assert.deepEqual(await stockOf([1]), [{ id: 1, stock: 0, sales: 5 }]);
    const { orders, items } = await dbState(env.sql);
    assert.deepEqual([orders, items], [3, 3]);
  });

  test('a coupon used by an earlier order of the batch, points spent by one', async () => {
    await env.sql`update points set balance = 150 where user_id = 1`;
    // 29.98 x0.85 = 25.48; 29.98 - 1.00 = 28.98.
    const withCoupon = () => order({ couponId: discountCoupon, coupon: discount, total: '25.48' });
    const withPoints = () => order({ points: 100, pointsUsed: 100, total: '28.98' });
    // The verify-only orders are judged with the batch verified together, the last two once it
    // goes one by one (from the first refused writing order on): the same refusals either way.
    const results = await placeOrdersCall(env.sql, [
      entry(withCoupon()), entry(withCoupon(), true), entry(withPoints()), entry(withPoints(), true),
      entry(withCoupon()), entry(withPoints()),
    ]);
    const used = { code: 'COUPON_INVALID', couponId: discountCoupon, reason: 'used' };
    const insufficient = { code: 'POINTS_INSUFFICIENT', requested: 100, balance: 50 };
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => results.get(i)!.refusal), [null, used, null, insufficient, used, insufficient]);
    const [coupon] = await env.sql`select status, order_id from user_coupon where id = ${discountCoupon}`;
    assert.deepEqual({ ...coupon }, { status: 'used', orderId: results.get(0)!.orderId });
    const [points] = await env.sql`select balance from points where user_id = 1`;
    assert.equal(points!.balance, 50);
    assert.deepEqual(await stockOf([1, 2]), [{ id: 1, stock: 998, sales: 2 }, { id: 2, stock: 998, sales: 2 }]);
  });

  test('a batch that cannot be written together (one Idempotency-Key twice) is placed one by one', async () => {
    const key = { key: 'k-1', fingerprint: 'f', ttlSeconds: 60 };
    const results = await placeOrdersCall(env.sql, [
      entry(order({ idempotency: key })), entry(order({ idempotency: key })), entry(order({ userId: 2 }))]);
    assert.equal(results.get(0)!.refusal, null);
    assert.deepEqual({ code: results.get(1)!.refusal?.code, constraint: (results.get(1)!.refusal as { constraint?: string }).constraint },
      { code: 'SQL_ERROR', constraint: 'idempotency_key_pkey' });
    assert.equal(results.get(2)!.refusal, null);
    const keys = await env.sql`select user_id, key, order_id from idempotency_key`;
    assert.deepEqual(keys.map((k) => ({ ...k })), [{ userId: 1, key: 'k-1', orderId: results.get(0)!.orderId }]);
    assert.deepEqual(await stockOf([1, 2]), [{ id: 1, stock: 998, sales: 2 }, { id: 2, stock: 998, sales: 2 }]);
  });

  test('a queued order delivered twice in one batch, the second time verify-only: both answered with the order written', async () => {
    // The same queue entry twice: the first is written, the second finds it by its request key.
    const accepted = { orderId: 500, createdAt: new Date('2026-11-30T12:00:00Z'), reservationId: randomUUID() };
    const queued = order({ accepted });
    const results = await placeOrdersCall(env.sql, [entry(queued), entry(queued, true)]);
    assert.deepEqual([0, 1].map((i) => [results.get(i)!.orderId, results.get(i)!.refusal]), [['500', null], ['500', null]]);
    assert.equal((await dbState(env.sql)).orders, 1);
    assert.deepEqual(await stockOf([1, 2]), [{ id: 1, stock: 999, sales: 1 }, { id: 2, stock: 999, sales: 1 }]);
  });

  test('balances far beyond an integer asked for by a batch: each order its own refusal, no error for the batch', async () => {
    // A balance of 1,000,000,000 points, four orders asking for all of it (the function checks no totals).
    await env.sql`update points set balance = 1000000000 where user_id = 1`;
    const all = () => entry(order({ points: 1_000_000_000, pointsUsed: 1_000_000_000, total: '0.00' }));
    const results = await placeOrdersCall(env.sql, [all(), all(), all(), all()]);
    const insufficient = { code: 'POINTS_INSUFFICIENT', requested: 1_000_000_000, balance: 0 };
    assert.deepEqual([0, 1, 2, 3].map((i) => results.get(i)!.refusal), [null, insufficient, insufficient, insufficient]);
    const [points] = await env.sql`select balance from points where user_id = 1`;
    assert.equal(points!.balance, 0);
    assert.equal((await dbState(env.sql)).orders, 1);
  });
});

describe('place_orders reads no table whole as it grows', () => {
  test('plans made on a fresh database: 20,000 orders and coupons on, a batch reads no order or coupon row but by index', async () => {
    // A connection plans place_orders' statements once (force_generic_plan), with the tables as they
    // are then: small on a fresh database. The tables then grow (no ANALYZE, so the plans stay); a
    // batch must still cost the same, not read every order placed or coupon issued so far.
    // Autovacuum's ANALYZE would replan and hide a plan that reads the whole table: kept away.
    await env.sql`alter table orders set (autovacuum_enabled = off)`;
    await env.sql`alter table user_coupon set (autovacuum_enabled = off)`;
    const conn = await env.sql.reserve();
    try {
      const first = await placeOrdersCall(conn, [{ input: order(), verifyOnly: false }]);
      assert.equal(first.get(0)!.refusal, null);
      await conn`insert into orders (user_id, total_amount) select 1 + g % 100, 1.00 from generate_series(1, 20000) g`;
      await conn`insert into user_coupon (user_id, kind, rate) select 1 + g % 100, 'discount', 0.50 from generate_series(1, 20000) g`;
      // A queued order comes with its id and may be written already: found by its request key.
      const queuedKey = randomUUID();
      const [queued] = await conn<{ id: string; createdAt: Date }[]>`
        insert into orders (user_id, total_amount, request_key) values (2, 49.98, ${queuedKey}) returning id, created_at`;
      const before = await dbState(env.sql);
      await conn`begin`;
      let results, scans;
      try {
        results = await placeOrdersCall(conn, [
          { input: order({ total: '29.98' }), verifyOnly: false },
          { input: withCouponAndPoints(), verifyOnly: false },
          { input: order({ userId: 2, productIds: [2, 3], snapshotIds: [2, 3], prices: ['19.99', '29.99'], total: '49.98',
            requestKey: queuedKey, accepted: { orderId: Number(queued!.id), createdAt: queued!.createdAt, reservationId: randomUUID() } }),
          verifyOnly: false }]);
        scans = await conn<{ relname: string; seqTupRead: number }[]>`
          select relname, seq_tup_read::int from pg_stat_xact_user_tables where relname in ('orders', 'user_coupon') order by relname`;
        await conn`commit`;
      } catch (err) {
        await conn`rollback`;
        throw err;
      }
      assert.deepEqual(scans.map((r) => [r.relname, r.seqTupRead]), [['orders', 0], ['user_coupon', 0]]);
      // 29.98 written; 24.48 with the coupon and 100 points (withCouponAndPoints); the queued one answered with its own row.
      assert.deepEqual([0, 1, 2].map((i) => results.get(i)!.refusal), [null, null, null]);
      const written = await env.sql`select total_amount from orders where id in ${env.sql([results.get(0)!.orderId!, results.get(1)!.orderId!])} order by id`;
      assert.deepEqual(written.map((r) => r.totalAmount), ['29.98', '24.48']);
      assert.equal(results.get(2)!.orderId, queued!.id);
      const after = await dbState(env.sql);
      assert.deepEqual([after.orders - before.orders, after.usedCoupons - before.usedCoupons, after.points - before.points], [2, 1, -100]);
    } finally {
      conn.release();
      await env.sql`alter table orders reset (autovacuum_enabled)`;
      await env.sql`alter table user_coupon reset (autovacuum_enabled)`;
    }
  });
});
