import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readMirroredStock } from '../src/orders/redis-stock.ts';
import { TRANSACTIONAL_VARIANTS } from '../src/orders/variants/index.ts';
import { couponIdsOf, DEFAULT_SEED } from '../src/seed.ts';
import { assertUnitsConserved, createTestEnv, json, pointsOf, productRow, type TestEnv } from './helpers.ts';

// Races that a correct variant must survive: every test fires its requests at once, then reads
// the database back. All orders go through the same in-process app; the concurrency is real in
// PostgreSQL (a pool of 16 connections) and Redis.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });

type Outcome = { status: number; code?: string; sqlstate?: string; retryAfter: string | null };

async function fire(count: number, send: (i: number) => Promise<Response>): Promise<Outcome[]> {
  return Promise.all(Array.from({ length: count }, async (_, i) => {
    const res = await send(i);
    const body = await json(res);
    return { status: res.status, code: body.error?.code, sqlstate: body.error?.sqlstate, retryAfter: res.headers.get('Retry-After') };
  }));
}

const tally = (outcomes: Outcome[]) => {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.code ?? String(o.status)] = (counts[o.code ?? String(o.status)] ?? 0) + 1;
  return counts;
};

/** The codes a losing buyer may see: sold out, or (plain serializable only) asked to retry. */
const allowedLosses = (variant: string) =>
  variant === 'serializable' ? ['OUT_OF_STOCK', 'SERIALIZATION_FAILURE'] : ['OUT_OF_STOCK'];

async function assertMirrorMatches(variant: string, productIds: number[]) {
  if (variant !== 'redis') return;
  const mirrors = await readMirroredStock(env.redis, productIds);
  for (const id of productIds) {
    assert.equal(mirrors.get(id), (await productRow(env.sql, id)).stock, `Redis mirror of product ${id}`);
  }
}

for (const variant of TRANSACTIONAL_VARIANTS) {
  describe(`${variant} under concurrency`, () => {
    test('200 buyers, 1 unit: exactly one order, stock 0', async () => {
      await env.reset({ stock: 1, users: 200 });
      const outcomes = await fire(200, (i) => env.order(variant, i + 1, env.body([{ productId: 1, count: 1 }])));
      const counts = tally(outcomes);
      assert.equal(counts['201'], 1, JSON.stringify(counts));
      for (const o of outcomes.filter((o) => o.status !== 201)) {
        assert.equal(o.status, 409);
        assert.ok(allowedLosses(variant).includes(o.code!), `unexpected ${o.code}`);
      }
      assert.deepEqual(await productRow(env.sql, 1), { stock: 0, sales: 1 });
      const [{ orders }] = await env.sql`select count(*)::int as orders from orders` as unknown as [{ orders: number }];
      assert.equal(orders, 1);
      await assertMirrorMatches(variant, [1]);
    });

    test('300 orders over 3 products: stock + units sold = initial stock, orders = successes', async () => {
      await env.reset({ products: 3, stock: 120, users: 50 });
      let seed = 7;
      const random = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
      const bodies = Array.from({ length: 300 }, () => {
        const ids = [1, 2, 3].filter(() => random(2) === 0);
        const lines = (ids.length ? ids : [1 + random(3)]).map((productId) => ({ productId, count: 1 + random(3) }));
        return env.body(random(2) ? lines : lines.reverse());
      });
      const outcomes = await fire(300, (i) => env.order(variant, 1 + (i % 50), bodies[i]));
      assert.ok(outcomes.every((o) => o.status === 201 || (o.status === 409 && allowedLosses(variant).includes(o.code!))),
        JSON.stringify(tally(outcomes)));
      await assertUnitsConserved(env.sql, 120, outcomes.filter((o) => o.status === 201).length);
      await assertMirrorMatches(variant, [1, 2, 3]);
    });

    test('one coupon sent by 20 requests at once: used exactly once', async () => {
      await env.reset();
      const [couponId] = couponIdsOf(DEFAULT_SEED, 1) as [number];
      // 9.99 x 0.85 = 8.4915 -> 8.49
      const body = env.body([{ productId: 1, count: 1 }], { couponId, total: '8.49' });
      const outcomes = await fire(20, () => env.order(variant, 1, body));
      const counts = tally(outcomes);
      assert.equal(counts['201'], 1, JSON.stringify(counts));
      assert.ok(outcomes.every((o) => o.status === 201 || o.code === 'COUPON_INVALID' || (variant === 'serializable' && o.code === 'SERIALIZATION_FAILURE')),
        JSON.stringify(counts));
      const orders = await env.sql<{ id: string }[]>`select id from orders where coupon_id = ${couponId}`;
      assert.equal(orders.length, 1);
      const [coupon] = await env.sql`select status, order_id from user_coupon where id = ${couponId}`;
      assert.deepEqual({ ...coupon }, { status: 'used', orderId: orders[0]!.id });
      assert.deepEqual(await productRow(env.sql, 1), { stock: 999, sales: 1 }, 'failed attempts took no stock');
    });

    test('two redemptions of 6,000 of 10,000 points at once: balance never negative', async () => {
      await env.reset();
      const body = env.body([{ productId: 10, count: 1 }], { points: 6000 });
      const outcomes = await fire(2, () => env.order(variant, 1, body));
      const successes = outcomes.filter((o) => o.status === 201).length;
      assert.ok(successes >= 1 || variant === 'serializable', JSON.stringify(outcomes));
      assert.equal(successes <= 1, true, 'the second redemption must fail');
      const balance = await pointsOf(env.sql, 1);
      assert.equal(balance, 10_000 - 6000 * successes);
      const [{ spent }] = await env.sql`select coalesce(sum(points_used), 0)::int as spent from orders` as unknown as [{ spent: number }];
      assert.equal(balance + spent, 10_000);
    });

    test('orders for [A, B] and [B, A] at once: no deadlock reaches a client', async () => {
      await env.reset();
      const ab = env.body([{ productId: 1, count: 1 }, { productId: 2, count: 1 }]);
      const ba = { ...ab, items: [...ab.items].reverse() };
      const outcomes = await fire(100, (i) => env.order(variant, 1 + (i % 100), i % 2 ? ab : ba));
      assert.ok(outcomes.every((o) => o.sqlstate !== '40P01'), 'a deadlock reached a client');
      if (variant === 'serializable') {
        assert.ok(outcomes.every((o) => o.status === 201 || o.code === 'SERIALIZATION_FAILURE'), JSON.stringify(tally(outcomes)));
      } else {
        assert.deepEqual(tally(outcomes), { 201: 100 });
      }
      const won = outcomes.filter((o) => o.status === 201).length;
      assert.deepEqual(await productRow(env.sql, 1), { stock: 1000 - won, sales: won });
      assert.deepEqual(await productRow(env.sql, 2), { stock: 1000 - won, sales: won });
    });
  });
}

describe('serializable vs serializable-retry on one hot product', () => {
  test('serializable answers 409 SERIALIZATION_FAILURE with Retry-After, never 500; the retry variant sells to all', async () => {
    await env.reset({ users: 40 });
    const send = (variant: string) => fire(40, (i) => env.order(variant, i + 1, env.body([{ productId: 1, count: 1 }])));

    const plain = await send('serializable');
    const failures = plain.filter((o) => o.status !== 201);
    assert.ok(failures.length > 0, 'expected 40001 aborts on a hot row');
    for (const f of failures) {
      assert.equal(f.status, 409);
      assert.equal(f.code, 'SERIALIZATION_FAILURE');
      assert.equal(f.retryAfter, '1');
    }
    const sold = plain.length - failures.length;
    assert.deepEqual(await productRow(env.sql, 1), { stock: 1000 - sold, sales: sold });

    const retried = await send('serializable-retry');
    assert.deepEqual(tally(retried), { 201: 40 });
    assert.deepEqual(await productRow(env.sql, 1), { stock: 1000 - sold - 40, sales: sold + 40 });
  });
});
