import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApp } from '../src/app.ts';
import { createSql } from '../src/connections.ts';
import { AppError, toAppError } from '../src/errors.ts';
import { OrderBatcher } from '../src/orders/order-batcher.ts';
import { createVariants } from '../src/orders/variants/index.ts';
import { couponIdsOf, DEFAULT_SEED, sessionIdOf } from '../src/seed.ts';
import { boundedPool } from '../src/transaction.ts';
import { assertUnitsConserved, createTestEnv, json, pointsOf, productRow, type TestEnv } from './helpers.ts';

// The batched variant: orders gathered into one place_orders statement each succeed or fail on
// their own, and batches of two service processes over the same rows never deadlock.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });

/** The batched variant over env's database, gathering exactly `size` orders per batch. */
function batchedOf(size: number) {
  const db = boundedPool(env.sql, { poolSize: 4, requestTimeoutMs: 10_000 });
  return createVariants({ db, redis: env.redis, config: { ...env.config, orderBatch: { maxOrders: size, waitMs: 60_000, inFlight: 1 } } }).batched;
}

const settle = <T>(p: Promise<T>) => p.then((value) => ({ value, error: undefined }), (error: unknown) => ({ value: undefined, error }));
const codeOf = (err: unknown) => toAppError(err).code;

describe('one batch, mixed orders', () => {
  test('the valid orders commit, each refused one gets its own error and writes nothing', async () => {
    await env.reset();
    const [coupon1] = couponIdsOf(DEFAULT_SEED, 1) as [number];
    const [coupon5] = couponIdsOf(DEFAULT_SEED, 5) as [number];
    // Coupon 1 used beforehand (product 4, 39.99 x 0.85 = 33.9915 -> 33.99); product 3 down to 1 unit.
    assert.equal((await env.order('row-lock', 1, env.body([{ productId: 4, count: 1 }], { couponId: coupon1, total: '33.99' }))).status, 201);
    await env.sql`update product set stock = 1 where id = 3`;

    const place = batchedOf(7);
    const outcomes = await Promise.all([
      // A: 2 x 9.99 = 19.98
      place(2, env.body([{ productId: 1, count: 2 }])),
      // B: 2 of product 3, which has 1 left
      place(3, env.body([{ productId: 3, count: 2 }])),
      // C: coupon 1 again (19.99 x 0.85 = 16.9915 -> 16.99)
      place(1, env.body([{ productId: 2, count: 1 }], { couponId: coupon1, total: '16.99' })),
      // D: product 1 costs 9.99, not 9.98
      place(4, { ...env.body([{ productId: 1, count: 1 }]), totalAmount: '9.98' }),
      // E: product 5 (49.99) paid 1.00 with 100 points: 48.99
      place(6, env.body([{ productId: 5, count: 1 }], { points: 100 })),
      // F and G: user 5's coupon twice in the same batch; product 1 x1: 9.99 x 0.85 = 8.4915 -> 8.49
      place(5, env.body([{ productId: 1, count: 1 }], { couponId: coupon5, total: '8.49' })),
      place(5, env.body([{ productId: 1, count: 1 }], { couponId: coupon5, total: '8.49' })),
    ].map(settle));
    type Outcome = (typeof outcomes)[number];
    const [a, b, c, d, e, f, g] = outcomes as [Outcome, Outcome, Outcome, Outcome, Outcome, Outcome, Outcome];

    assert.equal(a.value?.totalAmount, '19.98');
    assert.equal(codeOf(b.error), 'OUT_OF_STOCK');
    assert.deepEqual((b.error as AppError).details, { productId: 3, available: 1, requested: 2 });
    assert.equal(codeOf(c.error), 'COUPON_INVALID');
    assert.deepEqual((c.error as AppError).details, { couponId: coupon1, reason: 'used' });
    assert.equal(codeOf(d.error), 'TOTAL_MISMATCH');
    assert.deepEqual((d.error as AppError).details, { expected: '9.99', received: '9.98', pointsUsed: 0 });
    assert.deepEqual({ total: e.value?.totalAmount, points: e.value?.pointsUsed }, { total: '48.99', points: 100 });
    // Exactly one of F and G got the coupon; the other was told it is used.
    const [won, lost] = f.value ? [f, g] : [g, f];
    assert.equal(won.value?.totalAmount, '8.49');
    assert.deepEqual((lost.error as AppError).details, { couponId: coupon5, reason: 'used' });

    // Read back: product 1 sold 2 (A) + 1 (F or G); 2 untouched (C refused); 3 untouched (B refused); 5 sold 1 (E).
    assert.deepEqual(await productRow(env.sql, 1), { stock: 997, sales: 3 });
    assert.deepEqual(await productRow(env.sql, 2), { stock: 1000, sales: 0 });
    assert.deepEqual(await productRow(env.sql, 3), { stock: 1, sales: 0 });
    assert.deepEqual(await productRow(env.sql, 5), { stock: 999, sales: 1 });
    assert.equal(await pointsOf(env.sql, 6), 9_900);
    for (const user of [1, 2, 3, 4, 5]) assert.equal(await pointsOf(env.sql, user), 10_000);

    const orders = await env.sql<{ id: string; userId: number; totalAmount: string; couponId: number | null; pointsUsed: number; createdAt: Date }[]>`
      select id, user_id, total_amount, coupon_id, points_used, created_at from orders order by user_id, id`;
    assert.deepEqual(orders.map((o) => ({ userId: o.userId, totalAmount: o.totalAmount, couponId: o.couponId, pointsUsed: o.pointsUsed })), [
      { userId: 1, totalAmount: '33.99', couponId: coupon1, pointsUsed: 0 }, // placed beforehand
      { userId: 2, totalAmount: '19.98', couponId: null, pointsUsed: 0 },
      { userId: 5, totalAmount: '8.49', couponId: coupon5, pointsUsed: 0 },
      { userId: 6, totalAmount: '48.99', couponId: null, pointsUsed: 100 },
    ]);
    // The three batch orders share one transaction, hence one now().
    const batchTimes = new Set(orders.slice(1).map((o) => o.createdAt.getTime()));
    assert.equal(batchTimes.size, 1, 'placed in one transaction');
    assert.deepEqual(orders.slice(1).map((o) => Number(o.id)).sort(), [a.value!.id, e.value!.id, won.value!.id].sort());

    const items = await env.sql`select o.user_id, i.product_id, i.count, i.unit_price from order_item i join orders o on o.id = i.order_id order by o.user_id`;
    assert.deepEqual(items.map((i) => ({ ...i })), [
      { userId: 1, productId: 4, count: 1, unitPrice: '39.99' },
      { userId: 2, productId: 1, count: 2, unitPrice: '9.99' },
      { userId: 5, productId: 1, count: 1, unitPrice: '9.99' },
      { userId: 6, productId: 5, count: 1, unitPrice: '49.99' },
    ]);
    const coupons = await env.sql`select id, status, order_id from user_coupon where status = 'used' order by id`;
    assert.deepEqual(coupons.map((c) => ({ ...c })), [
      { id: coupon1, status: 'used', orderId: orders[0]!.id },
      { id: coupon5, status: 'used', orderId: String(won.value!.id) },
    ]);
  });

  test('an order whose deadline passed before its batch started: 503 SERVICE_BUSY, nothing written', async () => {
    await env.reset();
    const place = batchedOf(2);
    const [late, onTime] = await Promise.all([
      settle(place(1, env.body([{ productId: 1, count: 1 }]), { deadline: Date.now() - 1 })),
      settle(place(2, env.body([{ productId: 1, count: 2 }]))),
    ]);
    assert.equal(codeOf(late.error), 'SERVICE_BUSY');
    assert.equal(onTime.value?.totalAmount, '19.98');
    assert.deepEqual(await productRow(env.sql, 1), { stock: 998, sales: 2 });
    const orders = await env.sql`select user_id from orders`;
    assert.deepEqual(orders.map((o) => o.userId), [2]);
  });
});

describe('many clients', () => {
  /** Samples, until stopped, the most place_orders statements at once: running, and waiting for a row lock. */
  function sampleBatches() {
    let sampling = true;
    const most = { running: 0, waitingForRows: 0 };
    const done = (async () => {
      while (sampling) {
        const [row] = await env.sql<{ running: number; waitingForRows: number }[]>`
          select count(*)::int as running,
                 count(*) filter (where wait_event in ('tuple', 'transactionid'))::int as waiting_for_rows
          from pg_stat_activity
          where datname = current_database() and state = 'active' and query like '%place_orders(%' and pid <> pg_backend_pid()`;
        most.running = Math.max(most.running, row!.running);
        most.waitingForRows = Math.max(most.waitingForRows, row!.waitingForRows);
      }
    })();
    return async () => { sampling = false; await done; return most; };
  }

  test('300 orders at once on one hot product, one process: one batch at a time in the database, all placed', async () => {
    await env.reset();
    const stop = sampleBatches();
    const statuses = await Promise.all(Array.from({ length: 300 }, async (_, i) =>
      (await env.order('batched', 1 + (i % 100), env.body([{ productId: 1, count: 1 }]))).status));
    const most = await stop();
    assert.deepEqual(statuses.filter((s) => s !== 201), []);
    assert.deepEqual(await productRow(env.sql, 1), { stock: 700, sales: 300 });
    assert.ok(most.running <= 1, `${most.running} place_orders statements ran at once (ORDER_BATCH_IN_FLIGHT 1)`);
  });

  test('two processes: their batches queue for the rows on the batches\' lock, never on the rows', async () => {
    await env.reset();
    const other = createSql(env.config);
    const second = createApp({ sql: other, redis: env.redis, config: env.config });
    try {
      const stop = sampleBatches();
      const statuses = await Promise.all(Array.from({ length: 300 }, async (_, i) => (await (i % 2 ? env.app : second).request('/orders/batched', {
        method: 'POST',
        headers: { Authorization: `Bearer ${sessionIdOf(1 + (i % 100))}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(env.body([{ productId: 1 + (i % 3), count: 1 }, { productId: 4, count: 1 }])),
      })).status));
      const most = await stop();
      assert.deepEqual(statuses.filter((s) => s !== 201), []);
      await assertUnitsConserved(env.sql, 1_000, 300);
      assert.ok(most.running >= 2, `the two processes' batches met (${most.running} at once)`);
      assert.equal(most.waitingForRows, 0, 'a batch waited on row locks held by another');
    } finally {
      await other.end({ timeout: 1 });
    }
  });
});

describe('two service processes batching at once', () => {
  test('orders over the same products in both orders: no deadlock reaches a client, stock conserved', async () => {
    await env.reset({ products: 3, stock: 60, users: 100 });
    const other = createSql(env.config);
    const second = createApp({ sql: other, redis: env.redis, config: env.config });
    try {
      const apps = [env.app, second];
      const bodies = [[1, 2, 3], [3, 2, 1], [2, 1], [1, 3], [3], [2, 3]].map((ids) => env.body(ids.map((productId) => ({ productId, count: 1 }))));
      const outcomes = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
        const res = await apps[i % 2]!.request('/orders/batched', {
          method: 'POST',
          headers: { Authorization: `Bearer ${sessionIdOf(1 + (i % 100))}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(bodies[i % bodies.length]),
        });
        return { status: res.status, code: (await json(res)).error?.code as string | undefined };
      }));
      // 200 orders want 100 units of each product; 60 of each exist: some sell out.
      const codes = new Set(outcomes.map((o) => o.code ?? String(o.status)));
      assert.deepEqual([...codes].sort(), ['201', 'OUT_OF_STOCK'], 'only sales and sold-outs, no deadlock or timeout');

      await assertUnitsConserved(env.sql, 60, outcomes.filter((o) => o.status === 201).length);
    } finally {
      await other.end({ timeout: 1 });
    }
  });
});

describe('order batcher', () => {
  test('close runs the batch being gathered, settles every entry, and refuses later ones', async () => {
    const batches: number[][] = [];
    const batcher = new OrderBatcher<number, number>({
      maxSize: 10, waitMs: 60_000,
      run: async (batch) => {
        batches.push(batch.map((e) => e.item));
        for (const e of batch) {
          if (e.item === 2) e.reject(new Error('refused'));
          else e.resolve(e.item * 10);
        }
      },
    });
    const pending = [1, 2, 3].map((n) => settle(batcher.submit(n)));
    await batcher.close();
    const results = await Promise.all(pending);
    assert.deepEqual(batches, [[1, 2, 3]]);
    assert.deepEqual(results.map((r) => r.value ?? (r.error as Error).message), [10, 'refused', 30]);
    const late = await settle(batcher.submit(4));
    assert.equal(codeOf(late.error), 'SERVICE_UNAVAILABLE');
    assert.deepEqual(batches, [[1, 2, 3]], 'nothing run after close');
  });

  test('smart batching: while a batch runs the next gathers, and leaves whole when it finishes', async () => {
    const batches: number[][] = [];
    const gates: (() => void)[] = [];
    const batcher = new OrderBatcher<number, number>({
      maxSize: 4, waitMs: 0, maxInFlight: 1,
      run: async (batch) => {
        batches.push(batch.map((e) => e.item));
        await new Promise<void>((resolve) => gates.push(resolve));
        for (const e of batch) e.resolve(e.item);
      },
    });
    const first = batcher.submit(1);
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(batches, [[1]], 'alone and idle: it leaves after the wait');
    // Ten arrive while [1] runs: none starts a batch of its own.
    const rest = Array.from({ length: 10 }, (_, i) => batcher.submit(i + 2));
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(batches, [[1]]);
    assert.deepEqual(batcher.usage, { inFlight: 1, waiting: 10 });
    // Each finished batch lets the next leave at once, at most maxSize, in arrival order.
    for (let i = 0; i < 4; i++) {
      gates.shift()!();
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(batches, [[1], [2, 3, 4, 5], [6, 7, 8, 9], [10, 11]]);
    assert.deepEqual(await Promise.all([first, ...rest]), Array.from({ length: 11 }, (_, i) => i + 1));
    assert.deepEqual(batcher.usage, { inFlight: 0, waiting: 0 });
  });

  test('close with batches waiting for a slot runs them all before it resolves', async () => {
    const batches: number[][] = [];
    const batcher = new OrderBatcher<number, number>({
      maxSize: 2, waitMs: 60_000, maxInFlight: 1,
      run: async (batch) => {
        batches.push(batch.map((e) => e.item));
        await new Promise((r) => setTimeout(r, 10));
        for (const e of batch) e.resolve(e.item);
      },
    });
    const all = [1, 2, 3, 4, 5].map((n) => batcher.submit(n));
    await batcher.close();
    assert.deepEqual(batches, [[1, 2], [3, 4], [5]]);
    assert.deepEqual(await Promise.all(all), [1, 2, 3, 4, 5]);
  });

  test('a batch whose run throws fails its unsettled entries with that error', async () => {
    const batcher = new OrderBatcher<number, number>({
      maxSize: 2, waitMs: 60_000,
      run: async (batch) => { batch[0]!.resolve(1); throw new Error('connection lost'); },
    });
    const [first, second] = await Promise.all([settle(batcher.submit(1)), settle(batcher.submit(2))]);
    assert.equal(first.value, 1);
    assert.equal((second.error as Error).message, 'connection lost');
  });
});
