import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, test } from 'node:test';
import { saveSessions } from '../src/sessions.ts';
import { createTestEnv, json, productRow, type TestEnv } from './helpers.ts';

// The in-process session cache (SESSION_CACHE_MS): what it saves is a Redis round trip per
// request; what it costs, and the bound tested here, is that a deleted session keeps working for
// at most that long.

const CACHE_MS = 300;
let env: TestEnv;
before(async () => { env = await createTestEnv({ sessionCacheMs: CACHE_MS }); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

const order = (sessionId: string) => env.app.request('/orders/row-lock', {
  method: 'POST',
  headers: { Authorization: `Bearer ${sessionId}`, 'Content-Type': 'application/json' },
  body: JSON.stringify(env.body([{ productId: 1, count: 1 }])),
});

test(`a deleted session stops working within SESSION_CACHE_MS (${CACHE_MS} ms)`, async () => {
  assert.equal((await order('seed-1')).status, 201);
  await env.redis.del('session:seed-1');
  await sleep(CACHE_MS + 50);
  const res = await order('seed-1');
  assert.equal(res.status, 401);
  assert.equal((await json(res)).error.code, 'UNAUTHORIZED');
  assert.deepEqual(await productRow(env.sql, 1), { stock: 999, sales: 1 }, 'only the first order was placed');
});

test('an unknown session is not remembered: once saved, it works at once', async () => {
  assert.equal((await order('new-session')).status, 401);
  await saveSessions(env.redis, [{ sessionId: 'new-session', userId: 7 }]);
  assert.equal((await order('new-session')).status, 201);
  const [row] = await env.sql`select user_id from orders`;
  assert.equal(row!.userId, 7);
});

test('SESSION_CACHE_MS=0: every request asks Redis', async () => {
  const uncached = await createTestEnv({ sessionCacheMs: 0 });
  try {
    await uncached.reset();
    const send = () => uncached.order('row-lock', 1, uncached.body([{ productId: 1, count: 1 }]));
    assert.equal((await send()).status, 201);
    await uncached.redis.del('session:seed-1');
    assert.equal((await send()).status, 401);
  } finally {
    await uncached.close();
  }
});
