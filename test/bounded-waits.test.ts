import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { createApp } from '../src/app.ts';
import { startOwnRedis, type OwnRedis } from '../servers/own-redis.ts';
import { closeAll, createRedis, createSql } from '../src/connections.ts';
import { saveSessions } from '../src/sessions.ts';
import { boundedPool, inTransaction } from '../src/transaction.ts';
import { createTestEnv, dbState, holdRow, json, productRow, type TestEnv } from './helpers.ts';

// A row held elsewhere, an exhausted pool, a paused Redis: every request is answered within a
// bound, with 503 and Retry-After, and writes nothing; /health keeps answering.

async function timed<T>(work: T | Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await work;
  return { value, ms: performance.now() - t0 };
}

describe('a product row locked by another session', () => {
  let env: TestEnv;
  before(async () => { env = await createTestEnv({ db: { lockTimeoutMs: 300, statementTimeoutMs: 5_000, idleInTransactionTimeoutMs: 10_000 } }); });
  after(async () => { await env?.close(); });
  beforeEach(async () => { await env.reset(); });

  for (const variant of ['row-lock', 'serializable-retry', 'redis']) {
    test(`${variant}: orders for it get 503 TIMEOUT after the lock timeout; other products sell`, async () => {
      const unlock = await holdRow(env.sql, 1);
      try {
        const before = await dbState(env.sql);
        const { value: res, ms } = await timed(env.order(variant, 1, env.body([{ productId: 1, count: 1 }])));
        const body = await json(res);
        assert.equal(res.status, 503, JSON.stringify(body));
        assert.equal(body.error.code, 'TIMEOUT');
        assert.equal(res.headers.get('Retry-After'), '1');
        assert.ok(ms < 3_000, `answered after ${Math.round(ms)} ms`);
        assert.deepEqual(await dbState(env.sql), before, 'nothing written');

        const other = await env.order(variant, 2, env.body([{ productId: 2, count: 1 }]));
        assert.equal(other.status, 201);
        assert.deepEqual(await productRow(env.sql, 2), { stock: 999, sales: 1 });
      } finally {
        await unlock();
      }
      assert.deepEqual(await productRow(env.sql, 1), { stock: 1000, sales: 0 });
    });
  }
});

describe('every pool connection busy', () => {
  let env: TestEnv;
  before(async () => {
    env = await createTestEnv({ poolSize: 2, requestTimeoutMs: 300,
      db: { lockTimeoutMs: 4_000, statementTimeoutMs: 10_000, idleInTransactionTimeoutMs: 10_000 } });
  });
  after(async () => { await env?.close(); });
  beforeEach(async () => { await env.reset(); });

  test('a request that gets no connection in time is refused with 503 SERVICE_BUSY; /health answers at once', async () => {
    const healthSql = createSql({ ...env.config, poolSize: 1 });
    // The row holder and the checks use connections of their own: the app's two are the point.
    const admin = createSql({ databaseUrl: env.config.databaseUrl, poolSize: 2 });
    const app = createApp({ sql: env.sql, healthSql, redis: env.redis, config: env.config });
    const unlock = await holdRow(admin, 1);
    try {
      const order = (path: string, init?: RequestInit) => app.request(path, init);
      const buy = (user: number, productId: number) => order('/orders/row-lock', {
        method: 'POST', headers: { Authorization: `Bearer seed-${user}` }, body: JSON.stringify(env.body([{ productId, count: 1 }])),
      });
      // Two orders wait on the held row, one per pool connection.
      const stuck = [buy(1, 1), buy(2, 1)];
      await new Promise((r) => setTimeout(r, 100));
      const before = await dbState(admin);
      const { value: res, ms } = await timed(buy(3, 2));
      const body = await json(res);
      assert.equal(res.status, 503, JSON.stringify(body));
      assert.equal(body.error.code, 'SERVICE_BUSY');
      assert.equal(res.headers.get('Retry-After'), '1');
      assert.ok(ms >= 250 && ms < 2_000, `refused after ${Math.round(ms)} ms`);

      const products = await order('/products');
      assert.equal(products.status, 503);
      assert.equal((await json(products)).error.code, 'SERVICE_BUSY');

      const { value: health, ms: healthMs } = await timed(order('/health'));
      assert.equal(health.status, 200);
      assert.ok(healthMs < 1_000, `/health took ${Math.round(healthMs)} ms`);
      assert.deepEqual(await dbState(admin), before, 'nothing written while busy');
      await unlock();
      assert.deepEqual((await Promise.all(stuck)).map((r) => r.status), [201, 201], 'the waiting orders went through');
    } finally {
      await unlock();
      await Promise.all([healthSql.end({ timeout: 1 }), admin.end({ timeout: 1 })]);
    }
  });
});

describe('a connection obtained only after the request\'s deadline', () => {
  let env: TestEnv;
  before(async () => { env = await createTestEnv(); });
  after(async () => { await env?.close(); });

  test('starts no work: 503 SERVICE_BUSY, the transaction body never runs', async () => {
    await env.reset();
    // A free slot is granted at once; what matters is that the connection came too late (here:
    // the deadline has passed already, as after a slow reconnect to a restarting database).
    const db = boundedPool(env.sql, { poolSize: 2, requestTimeoutMs: 1_000 });
    let ran = false;
    const outcome = await inTransaction(db, 'read committed', async (tx) => {
      ran = true;
      await tx`update product set stock = stock - 1 where id = 1`;
    }, Date.now() - 1).then(() => 'done', (err: { code?: string }) => err.code);
    assert.equal(outcome, 'SERVICE_BUSY');
    assert.equal(ran, false);
    assert.deepEqual(await productRow(env.sql, 1), { stock: 1000, sales: 0 });
  });
});

describe('a database that accepts connections but never answers', () => {
  test('a request is answered 503 SERVICE_BUSY at its deadline, not after the connect timeout', async () => {
    const blackhole = createServer(() => {}); // accepts, then stays silent: a server restarting
    blackhole.listen(0, '127.0.0.1');
    await once(blackhole, 'listening');
    const { port } = blackhole.address() as { port: number };
    const sql = createSql({ databaseUrl: `postgres://postgres@127.0.0.1:${port}/none`, poolSize: 1 });
    try {
      const db = boundedPool(sql, { poolSize: 1, requestTimeoutMs: 300 });
      let ran = false;
      const { value: outcome, ms } = await timed(inTransaction(db, 'read committed', async () => { ran = true; },
        Date.now() + 300).then(() => 'done', (err: { code?: string }) => err.code));
      assert.equal(outcome, 'SERVICE_BUSY');
      assert.equal(ran, false);
      assert.ok(ms < 1_500, `answered after ${Math.round(ms)} ms (connect_timeout is 5 s)`);
    } finally {
      await sql.end({ timeout: 0 });
      blackhole.close();
    }
  });
});

describe('Redis paused (a redis-server of this test\'s own)', () => {
  let env: TestEnv;
  let server: OwnRedis;
  let redisUrl: string;
  before(async () => {
    env = await createTestEnv({ redisCommandTimeoutMs: 300 });
    server = await startOwnRedis('redis-server');
    redisUrl = server.url;
  });
  after(async () => {
    await server?.remove();
    await env?.close();
  });

  test('orders and /health answer 503 within the command timeout instead of hanging', async () => {
    await env.reset();
    const redis = createRedis({ ...env.config, redisUrl, redisKeyPrefix: '' });
    await redis.connect();
    await saveSessions(redis, [{ sessionId: 'seed-1', userId: 1 }]);
    const app = createApp({ sql: env.sql, redis, config: env.config });
    const admin = new Redis(redisUrl);
    try {
      await admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
      const before = await dbState(env.sql);
      const { value: res, ms } = await timed(app.request('/orders/row-lock', {
        method: 'POST', headers: { Authorization: 'Bearer seed-1' }, body: JSON.stringify(env.body([{ productId: 1, count: 1 }])),
      }));
      const body = await json(res);
      assert.equal(res.status, 503, JSON.stringify(body));
      assert.equal(body.error.code, 'SERVICE_UNAVAILABLE');
      assert.equal(res.headers.get('Retry-After'), '1');
      assert.ok(ms < 2_000, `answered after ${Math.round(ms)} ms`);
      const { value: health, ms: healthMs } = await timed(app.request('/health'));
      assert.equal(health.status, 503);
      assert.deepEqual(await json(health), { status: 'degraded', postgres: 'ok', redis: 'timeout' });
      assert.ok(healthMs < 1_500, `/health took ${Math.round(healthMs)} ms`);
      assert.deepEqual(await dbState(env.sql), before);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => {});
      admin.disconnect();
      redis.disconnect();
    }
  });
});

describe('closing connections that never connected (a redis-server of this test\'s own)', () => {
  let server: OwnRedis;
  before(async () => { server = await startOwnRedis('redis-server'); });
  after(async () => { await server?.remove(); });

  test('closeAll leaves a Redis client whose start failed unconnected: no socket keeps the process running', async () => {
    const admin = new Redis(server.url);
    // As in a start whose PostgreSQL check failed: the Redis client was created, never connected.
    const redis = createRedis({ redisUrl: server.url, redisKeyPrefix: '' });
    try {
      const clients = async () => Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))![1]);
      const before = await clients();
      const sql = postgres('postgres://postgres@127.0.0.1:1/never', { max: 1 });
      await closeAll(sql, redis);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(redis.status, 'end');
      assert.equal(await clients(), before);
    } finally {
      admin.disconnect();
      redis.disconnect(); // should the assertions fail: a test that fails must not hang the file too
    }
  });
});
