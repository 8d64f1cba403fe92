import assert from 'node:assert/strict';
import type { createApp } from '../src/app.ts';
import { createOrderNumbers } from '../src/orders/order-number.ts';
import { couponIdsOf, DEFAULT_SEED } from '../src/seed.ts';
import { json, pointsOf, productRow, type TestEnv } from './helpers.ts';

// One variant's order paths end to end, checked on the rows read back: for suites that run them
// against environments the service does not control (hostile database defaults, a pooler).

type App = ReturnType<typeof createApp>;
/** `sql` reads back (a direct connection); `body` builds seeded orders. */
type Env = Pick<TestEnv, 'sql' | 'body' | 'config'>;

const [discountCoupon] = couponIdsOf(DEFAULT_SEED, 1) as [number];
const auth = { Authorization: 'Bearer seed-1' };

function order(app: App, variant: string, body: unknown, headers: Record<string, string> = {}) {
  return app.request(`/orders/${variant}`, {
    method: 'POST', body: JSON.stringify(body), headers: { ...auth, 'Content-Type': 'application/json', ...headers },
  });
}

/**
 * Places an order with a coupon and points (its number carrying the order's UTC date), reads it,
 * pays it; places a second and cancels it, its unit and points coming back. Expects the seeded
 * data untouched before (DEFAULT_SEED).
 */
export async function placeReadPayCancel(app: App, env: Env, variant: string) {
  // Product 2 (19.99) x2 + product 1 (9.99) x1 = 49.97; x0.85 = 42.4745 -> 42.47; 150 points -> 40.97
  const res = await order(app, variant, env.body([{ productId: 2, count: 2 }, { productId: 1, count: 1 }],
    { couponId: discountCoupon, points: 150, total: '40.97' }));
  const created = await json(res);
  assert.equal(res.status, 201, JSON.stringify(created));
  const parsed = createOrderNumbers(env.config.hashidsSalt).parse(created.orderNo)!;
  const [row] = await env.sql`
    select to_char(created_at at time zone 'UTC', 'YYYYMMDD') as day, created_at, status
    from public.orders where id = ${parsed.id}`;
  assert.equal(parsed.date, row!.day, 'the order number carries the UTC date of the order');
  assert.deepEqual(await productRow(env.sql, 1), { stock: 999, sales: 1 });
  assert.deepEqual(await productRow(env.sql, 2), { stock: 998, sales: 2 });
  assert.equal(await pointsOf(env.sql, 1), 10_000 - 150);

  const fetched = await app.request(`/orders/${created.orderNo}`, { headers: auth });
  const detail = await json(fetched);
  assert.equal(fetched.status, 200, JSON.stringify(detail));
  assert.equal(detail.totalAmount, '40.97');
  assert.equal(detail.createdAt, row!.createdAt.toISOString());

  const paid = await app.request(`/orders/${created.orderNo}/pay`, { method: 'POST', headers: auth });
  assert.equal(paid.status, 200, await paid.clone().text());
  const [after] = await env.sql`select status, paid_at is not null as stamped from public.orders where id = ${parsed.id}`;
  assert.deepEqual({ ...after }, { status: 'paid', stamped: true });

  const second = await json(await order(app, variant, env.body([{ productId: 3, count: 1 }], { points: 100 })));
  assert.ok(second.orderNo, JSON.stringify(second));
  assert.deepEqual(await productRow(env.sql, 3), { stock: 999, sales: 1 });
  const cancelled = await app.request(`/orders/${second.orderNo}/cancel`, { method: 'POST', headers: auth });
  assert.equal(cancelled.status, 200, await cancelled.clone().text());
  assert.deepEqual(await productRow(env.sql, 3), { stock: 1000, sales: 0 });
  assert.equal(await pointsOf(env.sql, 1), 10_000 - 150);
}

/** The same submission twice under one Idempotency-Key: one order, one take, the same answer replayed. */
export async function replayOnce(app: App, env: Env, variant: string) {
  const body = env.body([{ productId: 4, count: 2 }]);
  const headers = { 'Idempotency-Key': `k-${variant}` };
  const first = await order(app, variant, body, headers);
  const firstBody = await json(first);
  assert.equal(first.status, 201, JSON.stringify(firstBody));
  const again = await order(app, variant, body, headers);
  assert.equal(again.status, 201);
  assert.equal(again.headers.get('Idempotent-Replayed'), 'true');
  assert.deepEqual(await json(again), firstBody);
  assert.deepEqual(await productRow(env.sql, 4), { stock: 998, sales: 2 }, 'one order, one take');
  const [{ orders }] = await env.sql`select count(*)::int as orders from public.orders` as unknown as [{ orders: number }];
  assert.equal(orders, 1);
}
