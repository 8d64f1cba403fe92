import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_QUEUE } from '../src/config.ts';
import { startQueueConsumer } from '../src/orders/queue/queue-consumer.ts';
import { queueLength } from '../src/orders/queue/queue-store.ts';
import { readMirroredStock } from '../src/orders/redis-stock.ts';
import { sessionIdOf } from '../src/seed.ts';
import { boundedPool } from '../src/transaction.ts';
import { startOwnRedis, type OwnRedis } from '../servers/own-redis.ts';
import { createTestEnv, json, listeningUrl, productRow, type TestEnv } from './helpers.ts';

// Nothing the queued variant answered 202 for is lost or doubled when its queue's server is killed
// (a redis-server of this test's own, with an append-only file synced on every write) or when the
// service is killed between accepting orders and writing them.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let server: OwnRedis;
let env: TestEnv;
before(async () => {
  server = await startOwnRedis('redis-server', { durable: true });
  env = await createTestEnv({ redisUrl: server.url });
});
after(async () => {
  await env?.close();
  await server?.remove();
});
beforeEach(async () => { await env.reset(); });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}

/** 20 orders of 1 unit of product 1 and 2 of product 2, from users 1-20: their order numbers. */
async function acceptTwenty(post: (userId: number, body: unknown) => Promise<Response>) {
  const orderNos: string[] = [];
  for (let userId = 1; userId <= 20; userId++) {
    const res = await post(userId, env.body([{ productId: 1, count: 1 }, { productId: 2, count: 2 }]));
    assert.equal(res.status, 202);
    orderNos.push((await json(res)).orderNo);
  }
  return orderNos;
}

/** All 20 written once each: 20 units of product 1 and 40 of product 2 sold, in the database and the mirrors. */
async function assertTwentyPlaced() {
  const [{ n }] = await env.sql`select count(*)::int as n from orders` as unknown as [{ n: number }];
  assert.equal(n, 20);
  assert.deepEqual(await productRow(env.sql, 1), { stock: 980, sales: 20 });
  assert.deepEqual(await productRow(env.sql, 2), { stock: 960, sales: 40 });
  const mirrors = await readMirroredStock(env.redis, [1, 2]);
  assert.deepEqual([mirrors.get(1), mirrors.get(2)], [980, 960]);
  assert.equal(await queueLength(env.redis), 0);
}

test('the queue\'s server killed (SIGKILL) after 202s and restarted: every accepted order is written once', async () => {
  const orderNos = await acceptTwenty((userId, body) => env.order('queued', userId, body));
  await server.kill();
  await server.start();
  await until('the client reconnects', async () => (await env.redis.ping()) === 'PONG');
  assert.equal(await queueLength(env.redis), 20, 'the queue survived');

  const consumer = await startQueueConsumer({
    db: boundedPool(env.sql, { poolSize: 2, requestTimeoutMs: 10_000 }), redis: env.redis,
    config: { ...DEFAULT_QUEUE, requestTimeoutMs: 10_000 }, log: () => {},
  });
  try {
    await until('the queue drains', async () => (await queueLength(env.redis)) === 0);
  } finally {
    await consumer.stop();
  }
  await assertTwentyPlaced();
  for (const [i, orderNo] of orderNos.entries()) {
    const res = await env.app.request(`/orders/${orderNo}`, { headers: { Authorization: `Bearer ${sessionIdOf(i + 1)}` } });
    assert.equal((await json(res)).status, 'pending_payment');
  }
});

interface Service { child: ChildProcess; url: string; output: () => string }

/** `npm start`'s command, in a process group of its own so that SIGKILL reaches every process of the service. */
async function startService(extraEnv: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DATABASE_URL: env.config.databaseUrl, REDIS_URL: env.config.redisUrl,
      REDIS_KEY_PREFIX: env.config.redisKeyPrefix, PORT: '0', ...extraEnv },
  });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  const url = await listeningUrl(() => output);
  return { child, url, output: () => output };
}

async function killGroup(service: Service, signal: NodeJS.Signals) {
  const exited = once(service.child, 'exit');
  try { process.kill(-service.child.pid!, signal); } catch { /* gone already */ }
  await exited;
}

test('the service killed (SIGKILL) between the 202s and the writes: a new start writes every accepted order once', async () => {
  const first = await startService({ QUEUE_CONSUMER: 'off' });
  let orderNos: string[];
  try {
    orderNos = await acceptTwenty((userId, body) => fetch(`${first.url}/orders/queued`, {
      method: 'POST', headers: { Authorization: `Bearer ${sessionIdOf(userId)}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    }));
    assert.doesNotMatch(first.output(), /not durable/, 'this Redis syncs every write');
  } finally {
    await killGroup(first, 'SIGKILL');
  }
  const [{ n }] = await env.sql`select count(*)::int as n from orders` as unknown as [{ n: number }];
  assert.equal(n, 0, 'nothing written before the kill');

  const second = await startService({ QUEUE_CONSUMER: 'on', WEB_CONCURRENCY: '2' });
  try {
    await until('the queue drains', async () => (await queueLength(env.redis)) === 0);
    for (const [i, orderNo] of orderNos.entries()) {
      const res = await fetch(`${second.url}/orders/${orderNo}`, { headers: { Authorization: `Bearer ${sessionIdOf(i + 1)}` } });
      assert.equal((await json(res)).status, 'pending_payment', second.output());
    }
  } finally {
    await killGroup(second, 'SIGTERM');
  }
  await assertTwentyPlaced();
});
