import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import postgres from 'postgres';
import { connectAll, createRedis, createSql } from '../src/connections.ts';
import { withDatabase } from '../src/database.ts';
import { expireDueOrders } from '../src/orders/lifecycle.ts';
import { DEFAULT_QUEUE } from '../src/config.ts';
import { createOrderNumbers } from '../src/orders/order-number.ts';
import { startQueueConsumer } from '../src/orders/queue/queue-consumer.ts';
import { VARIANT_NAMES } from '../src/orders/variants/index.ts';
import { couponIdsOf, DEFAULT_SEED } from '../src/seed.ts';
import { boundedPool } from '../src/transaction.ts';
import { createTestEnv, hostileDefaults, json, pointsOf, productRow, setDatabaseDefaults, type TestEnv } from './helpers.ts';
import { placeReadPayCancel, replayOnce } from './order-paths.ts';

// The database's defaults are an operator's to set (`ALTER DATABASE ... SET`), and the service must
// not depend on them: every order path runs here against a database whose defaults break value
// parsing (DateStyle, IntervalStyle, float output), date derivation (a time zone whose date is not
// UTC's), name resolution (search_path), isolation (serializable, read-only by default) and idle
// connections (idle_session_timeout), all at once. What the tests read back is the data.

let env: TestEnv;
let admin: postgres.Sql;

before(async () => {
  env = await createTestEnv();
  await setDatabaseDefaults(env.config.databaseUrl, hostileDefaults());
  admin = postgres(withDatabase(env.config.databaseUrl, 'postgres'), { max: 1, onnotice: () => {} });
});
after(async () => {
  await admin?.end();
  await env?.close();
});
beforeEach(async () => { await env.reset(); });

test('the sessions really see the hostile defaults (the database is as described)', async () => {
  // A connection with no settings of its own sees what the operator set.
  const raw = postgres(env.config.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await raw`select current_setting('DateStyle') as d, current_setting('default_transaction_isolation') as i`;
    assert.deepEqual({ ...row }, { d: 'German, DMY', i: 'serializable' });
  } finally {
    await raw.end();
  }
});

describe('every variant places, reads, pays and cancels as on a default database', () => {
  for (const variant of VARIANT_NAMES) test(variant, () => placeReadPayCancel(env.app, env, variant));
});

describe('idempotency replay', () => {
  for (const variant of VARIANT_NAMES) test(variant, () => replayOnce(env.app, env, variant));
});

describe('each variant runs at its own isolation, not the database default', () => {
  // READ COMMITTED variants queue on a hot row; at the database's SERIALIZABLE they would fail with
  // 40001 instead (25 of 30 did before connections pinned their isolation).
  for (const variant of ['one-round-trip', 'batched', 'row-lock', 'redis'] as const) {
    test(`${variant}: 30 concurrent orders for one product all succeed`, async () => {
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) =>
        env.order(variant, 1 + (i % 10), env.body([{ productId: 5, count: 1 }]))));
      const statuses = await Promise.all(answers.map(async (r) => `${r.status} ${r.status === 201 ? '' : await r.text()}`));
      assert.deepEqual(statuses.filter((s) => !s.startsWith('201')), []);
      assert.deepEqual(await productRow(env.sql, 5), { stock: 970, sales: 30 });
    });
  }
});

test('queued: accepted, written by a consumer, read, paid as on a default database', async () => {
  const consumer = await startQueueConsumer({
    db: boundedPool(env.sql, env.config), redis: env.redis, config: { ...DEFAULT_QUEUE, requestTimeoutMs: 10_000 }, log: () => {},
  });
  try {
    // Product 2 (19.99) x2 + product 1 (9.99) x1 = 49.97; x0.85 = 42.4745 -> 42.47; 150 points -> 40.97
    const [coupon] = couponIdsOf(DEFAULT_SEED, 1) as [number];
    const res = await env.order('queued', 1, env.body([{ productId: 2, count: 2 }, { productId: 1, count: 1 }], { couponId: coupon, points: 150, total: '40.97' }));
    assert.equal(res.status, 202, await res.clone().text());
    const { orderNo } = await json(res);
    const parsed = createOrderNumbers(env.config.hashidsSalt).parse(orderNo)!;
    let row: { day: string; status: string } | undefined;
    for (let i = 0; i < 200 && !row; i++) {
      [row] = await env.sql<{ day: string; status: string }[]>`
        select to_char(created_at at time zone 'UTC', 'YYYYMMDD') as day, status from public.orders where id = ${parsed.id}`;
      if (!row) await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(row, 'written by the consumer');
    assert.equal(parsed.date, row.day, 'the order number carries the UTC date of the order');
    assert.deepEqual(await productRow(env.sql, 2), { stock: 998, sales: 2 });
    assert.equal(await pointsOf(env.sql, 1), 10_000 - 150);
    const auth = { Authorization: 'Bearer seed-1' };
    const detail = await json(await env.app.request(`/orders/${orderNo}`, { headers: auth }));
    assert.deepEqual([detail.status, detail.totalAmount, detail.pointsUsed], ['pending_payment', '40.97', 150]);
    const paid = await env.app.request(`/orders/${orderNo}/pay`, { method: 'POST', headers: auth });
    assert.equal(paid.status, 200, await paid.clone().text());
  } finally {
    await consumer.stop();
  }
});

test('the expiry sweep gives back an unpaid order', async () => {
  const created = await json(await env.order('row-lock', 1, env.body([{ productId: 6, count: 3 }], { points: 200 })));
  assert.ok(created.orderNo, JSON.stringify(created));
  await new Promise((r) => setTimeout(r, 1_100));
  const expired = await expireDueOrders({ db: boundedPool(env.sql, env.config), redis: env.redis, paymentTtlSeconds: 1, log: () => {} }, 10);
  assert.equal(expired, 1);
  assert.deepEqual(await productRow(env.sql, 6), { stock: 1000, sales: 0 });
  assert.equal(await pointsOf(env.sql, 1), 10_000);
});

test('idle connections cut by the server (idle_session_timeout) do not fail orders', async () => {
  await new Promise((r) => setTimeout(r, 700)); // longer than the database's 300 ms
  const res = await env.order('one-round-trip', 2, env.body([{ productId: 7, count: 1 }]));
  assert.equal(res.status, 201, await res.clone().text());
  assert.deepEqual(await productRow(env.sql, 7), { stock: 999, sales: 1 });
});

test('a setting the service cannot pin refuses the start, naming it', async () => {
  const name = new URL(env.config.databaseUrl).pathname.slice(1);
  await admin.unsafe(`alter database "${name}" set session_replication_role = 'replica'`);
  const sql = createSql(env.config);
  const redis = createRedis(env.config);
  try {
    await assert.rejects(connectAll(sql, redis, env.config), (err: Error) => {
      assert.match(err.message, /session_replication_role/);
      assert.match(err.message, /replica/);
      return true;
    });
  } finally {
    await admin.unsafe(`alter database "${name}" reset session_replication_role`);
    await sql.end({ timeout: 1 });
    redis.disconnect();
  }
});
