import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createApp } from '../src/app.ts';
import { updateProduct } from '../src/catalog.ts';
import { createSql } from '../src/connections.ts';
import { TRANSACTIONAL_VARIANTS, VARIANT_NAMES } from '../src/orders/variants/index.ts';
import { couponIdsOf, DEFAULT_SEED } from '../src/seed.ts';
import { createTestEnv, dbState, json, pointsOf, productRow, type TestEnv } from './helpers.ts';

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

const [discountCoupon, reductionCoupon] = couponIdsOf(DEFAULT_SEED, 1) as [number, number];

describe('happy path, every variant', () => {
  for (const variant of VARIANT_NAMES) {
    test(`${variant}: two products, a discount coupon and points`, async () => {
      // Product 2 (19.99) x2 + product 1 (9.99) x1 = 49.97; x0.85 = 42.4745 -> 42.47; 150 points -> 40.97
      const body = env.body([{ productId: 2, count: 2 }, { productId: 1, count: 1 }],
        { couponId: discountCoupon, points: 150, total: '40.97' });
      assert.equal(body.totalAmount, '40.97');
      const res = await env.order(variant, 1, body);
      const created = await json(res);
      assert.equal(res.status, 201, JSON.stringify(created));
      assert.match(created.orderNo, /^\d{8}[0-9a-zA-Z]{6,}$/);
      assert.equal(created.totalAmount, '40.97');
      assert.equal(created.status, 'pending_payment');

      assert.deepEqual(await productRow(env.sql, 1), { stock: 999, sales: 1 });
      assert.deepEqual(await productRow(env.sql, 2), { stock: 998, sales: 2 });
      assert.equal(await pointsOf(env.sql, 1), 10_000 - 150);
      const [coupon] = await env.sql`select status, order_id from user_coupon where id = ${discountCoupon}`;
      assert.equal(coupon!.status, 'used');
      const [order] = await env.sql`select id, user_id, total_amount, coupon_id, points_used from orders`;
      assert.deepEqual({ ...order }, { id: coupon!.orderId, userId: 1, totalAmount: '40.97', couponId: discountCoupon, pointsUsed: 150 });
      const items = await env.sql`select product_id, snapshot_id, count, unit_price from order_item order by product_id`;
      assert.deepEqual(items.map((i) => ({ ...i })), [
        { productId: 1, snapshotId: 1, count: 1, unitPrice: '9.99' },
        { productId: 2, snapshotId: 2, count: 2, unitPrice: '19.99' },
      ]);

      const fetched = await env.app.request(`/orders/${created.orderNo}`, { headers: { Authorization: 'Bearer seed-1' } });
      assert.equal(fetched.status, 200);
      const detail = await json(fetched);
      assert.equal(detail.totalAmount, '40.97');
      assert.equal(detail.items.length, 2);
    });
  }

  test('reduction coupon at its threshold', async () => {
    // product 10 costs 99.99; with product 1 (9.99) the subtotal is 109.98 >= 100 -> 99.98
    const body = env.body([{ productId: 10, count: 1 }, { productId: 1, count: 1 }],
      { couponId: reductionCoupon, total: '99.98' });
    assert.equal(body.totalAmount, '99.98');
    const res = await env.order('serializable', 1, body);
    assert.equal(res.status, 201);
    const [order] = await env.sql`select total_amount from orders`;
    assert.equal(order!.totalAmount, '99.98');
  });
});

describe('reads', () => {
  test('GET /orders/:orderNo is the owner\'s only; others and foreign numbers get 404', async () => {
    const res = await env.order('row-lock', 1, env.body([{ productId: 1, count: 1 }]));
    const { orderNo } = await json(res);
    const asOther = await env.app.request(`/orders/${orderNo}`, { headers: { Authorization: 'Bearer seed-2' } });
    assert.equal(asOther.status, 404);
    assert.equal((await json(asOther)).error.code, 'NOT_FOUND');
    const wrongDate = await env.app.request(`/orders/19990101${orderNo.slice(8)}`, { headers: { Authorization: 'Bearer seed-1' } });
    assert.equal(wrongDate.status, 404);
    const garbage = await env.app.request('/orders/not-an-order', { headers: { Authorization: 'Bearer seed-1' } });
    assert.equal(garbage.status, 404);
  });

  test('GET /products lists the catalog with stock and snapshots', async () => {
    const res = await env.app.request('/products');
    const products = await json(res);
    assert.equal(products.length, 10);
    assert.deepEqual(products[0], { id: 1, name: 'Product 1', price: '9.99', stock: 1000, onShelf: true, snapshotId: 1 });
  });

  test('GET /health reports both dependencies', async () => {
    const res = await env.app.request('/health');
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), { status: 'ok', postgres: 'ok', redis: 'ok' });
  });
});

// Each case: what to set up, what to send, the expected status and code. Every case must leave the
// data exactly as it was (checked for every transactional variant).
type ErrorCase = { name: string; status: number; code: string; setup?: () => Promise<void>; send: (variant: string) => Promise<Response> };

const businessErrors: ErrorCase[] = [
  { name: 'unknown product', status: 422, code: 'UNKNOWN_PRODUCT',
    send: (v) => env.order(v, 1, { ...env.body([{ productId: 1, count: 1 }]), items: [{ productId: 999, snapshotId: 1, count: 1, price: '9.99' }] }) },
  { name: 'off-shelf product', status: 409, code: 'OFF_SHELF',
    setup: async () => { await updateProduct(env.sql, 2, { onShelf: false }); },
    send: (v) => env.order(v, 1, env.body([{ productId: 1, count: 1 }, { productId: 2, count: 1 }])) },
  { name: 'changed price', status: 409, code: 'PRICE_CHANGED',
    setup: async () => { await updateProduct(env.sql, 2, { price: '25.00' }); },
    send: (v) => env.order(v, 1, env.body([{ productId: 1, count: 1 }, { productId: 2, count: 1 }])) },
  { name: 'changed snapshot (same price, new name)', status: 409, code: 'SNAPSHOT_CHANGED',
    setup: async () => { await updateProduct(env.sql, 2, { name: 'Product 2, renamed' }); },
    send: (v) => env.order(v, 1, env.body([{ productId: 1, count: 1 }, { productId: 2, count: 1 }])) },
  { name: 'out of stock on the second product', status: 409, code: 'OUT_OF_STOCK',
    setup: async () => { await env.sql`update product set stock = 1 where id = 2`; },
    send: (v) => env.order(v, 1, env.body([{ productId: 1, count: 1 }, { productId: 2, count: 2 }])) },
  { name: 'coupon of another user', status: 409, code: 'COUPON_INVALID',
    // 9.99 x 0.85 = 8.4915 -> 8.49
    send: (v) => env.order(v, 2, env.body([{ productId: 1, count: 1 }], { couponId: discountCoupon, total: '8.49' })) },
  { name: 'coupon already used', status: 409, code: 'COUPON_INVALID',
    // 29.99 x 0.85 = 25.4915 -> 25.49
    setup: async () => { assert.equal((await env.order('row-lock', 1, env.body([{ productId: 3, count: 1 }], { couponId: discountCoupon, total: '25.49' }))).status, 201); },
    send: (v) => env.order(v, 1, env.body([{ productId: 1, count: 1 }], { couponId: discountCoupon, total: '8.49' })) },
  { name: 'reduction coupon below its threshold', status: 409, code: 'COUPON_INVALID',
    send: (v) => env.order(v, 1, { ...env.body([{ productId: 1, count: 1 }]), couponId: reductionCoupon }) },
  { name: 'more points than the balance', status: 409, code: 'POINTS_INSUFFICIENT',
    send: (v) => env.order(v, 1, env.body([{ productId: 10, count: 99 }], { points: 10_001 })) },
  { name: 'total differs from the server\'s', status: 409, code: 'TOTAL_MISMATCH',
    send: (v) => env.order(v, 1, { ...env.body([{ productId: 1, count: 1 }]), totalAmount: '9.98' }) },
];

describe('business errors: documented code, nothing written', () => {
  for (const variant of TRANSACTIONAL_VARIANTS) {
    for (const c of businessErrors) {
      test(`${variant}: ${c.name} -> ${c.status} ${c.code}`, async () => {
        await c.setup?.();
        const before = await dbState(env.sql);
        const res = await c.send(variant);
        const body = await json(res);
        assert.equal(res.status, c.status, JSON.stringify(body));
        assert.equal(body.error.code, c.code);
        assert.equal(typeof body.error.message, 'string');
        assert.deepEqual(await dbState(env.sql), before, 'nothing may be written');
      });
    }
  }

  test('TOTAL_MISMATCH states the server\'s total', async () => {
    const res = await env.order('serializable', 1, { ...env.body([{ productId: 1, count: 2 }]), totalAmount: '1.00' });
    const body = await json(res);
    assert.equal(body.error.expected, '19.98');
  });

  test('an order placed before a price change keeps its price and snapshot', async () => {
    const res = await env.order('row-lock', 1, env.body([{ productId: 2, count: 1 }]));
    const { orderNo } = await json(res);
    const { snapshotId } = await updateProduct(env.sql, 2, { price: '99.00', name: 'Product 2 v2' });
    assert.notEqual(snapshotId, 2);
    const detail = await json(await env.app.request(`/orders/${orderNo}`, { headers: { Authorization: 'Bearer seed-1' } }));
    assert.deepEqual(detail.items, [{ productId: 2, snapshotId: 2, name: 'Product 2', count: 1, unitPrice: '19.99' }]);
    const ok = await env.order('row-lock', 1, { items: [{ productId: 2, snapshotId, count: 1, price: '99.00' }], totalAmount: '99.00' });
    assert.equal(ok.status, 201);
  });
});

describe('bad input: documented 4xx, never 5xx, nothing written', () => {
  const valid = () => env.body([{ productId: 1, count: 1 }]);
  const item = (patch: object) => ({ ...valid(), items: [{ ...valid().items[0], ...patch }] });
  const cases: [string, () => Response | Promise<Response>, number, string][] = [
    ['malformed JSON', () => env.order('serializable', 1, '{"items": ['), 400, 'MALFORMED_JSON'],
    ['empty body', () => env.order('serializable', 1, ''), 400, 'MALFORMED_JSON'],
    ['JSON that is not an object', () => env.order('serializable', 1, '[1,2]'), 422, 'VALIDATION_FAILED'],
    ['count 0', () => env.order('serializable', 1, item({ count: 0 })), 422, 'VALIDATION_FAILED'],
    ['count -1', () => env.order('serializable', 1, item({ count: -1 })), 422, 'VALIDATION_FAILED'],
    ['count 1.5', () => env.order('serializable', 1, item({ count: 1.5 })), 422, 'VALIDATION_FAILED'],
    ['count 10^9', () => env.order('serializable', 1, item({ count: 1e9 })), 422, 'VALIDATION_FAILED'],
    ['count as a string', () => env.order('serializable', 1, item({ count: '1' })), 422, 'VALIDATION_FAILED'],
    ['price as a number', () => env.order('serializable', 1, item({ price: 9.99 })), 422, 'VALIDATION_FAILED'],
    ['price with 3 decimals', () => env.order('serializable', 1, item({ price: '9.999' })), 422, 'VALIDATION_FAILED'],
    ['negative points', () => env.order('serializable', 1, { ...valid(), points: -5 }), 422, 'VALIDATION_FAILED'],
    ['product id beyond int4', () => env.order('serializable', 1, item({ productId: 2 ** 40 })), 422, 'VALIDATION_FAILED'],
    ['duplicate product', () => env.order('serializable', 1, { ...valid(), items: [valid().items[0], valid().items[0]] }), 422, 'VALIDATION_FAILED'],
    ['empty items', () => env.order('serializable', 1, { ...valid(), items: [] }), 422, 'VALIDATION_FAILED'],
    ['missing total', () => env.order('serializable', 1, { items: valid().items }), 422, 'VALIDATION_FAILED'],
    ['unknown product', () => env.order('serializable', 1, item({ productId: 4242 })), 422, 'UNKNOWN_PRODUCT'],
    ['unknown product (redis)', () => env.order('redis', 1, item({ productId: 4242 })), 422, 'UNKNOWN_PRODUCT'],
    ['oversized body', () => env.order('serializable', 1, { ...valid(), padding: 'x'.repeat(64 * 1024) }), 413, 'PAYLOAD_TOO_LARGE'],
    ['unknown variant', () => env.order('optimistic', 1, valid()), 404, 'UNKNOWN_VARIANT'],
    ['missing session', () => env.app.request('/orders/serializable', { method: 'POST', body: JSON.stringify(valid()) }), 401, 'UNAUTHORIZED'],
    ['unknown session', () => env.app.request('/orders/serializable', { method: 'POST', headers: { Authorization: 'Bearer nobody' }, body: JSON.stringify(valid()) }), 401, 'UNAUTHORIZED'],
    ['malformed authorization', () => env.app.request('/orders/serializable', { method: 'POST', headers: { Authorization: 'Basic abc' }, body: JSON.stringify(valid()) }), 401, 'UNAUTHORIZED'],
  ];
  for (const [name, send, status, code] of cases) {
    test(`${name} -> ${status} ${code}`, async () => {
      const before = await dbState(env.sql);
      const res = await send();
      const body = await json(res);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(body.error.code, code);
      assert.deepEqual(await dbState(env.sql), before);
    });
  }
});

describe('unavailable dependencies', () => {
  test('PostgreSQL down: 503 SERVICE_UNAVAILABLE with Retry-After, not 500', async () => {
    const deadSql = createSql({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none', poolSize: 1 });
    const app = createApp({ sql: deadSql, redis: env.redis, config: env.config });
    try {
      const res = await app.request('/orders/row-lock', {
        method: 'POST', headers: { Authorization: 'Bearer seed-1' }, body: JSON.stringify(env.body([{ productId: 1, count: 1 }])),
      });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('Retry-After'), '1');
      assert.equal((await json(res)).error.code, 'SERVICE_UNAVAILABLE');
      assert.equal((await app.request('/health')).status, 503);
    } finally {
      await deadSql.end({ timeout: 0 });
    }
  });
});
