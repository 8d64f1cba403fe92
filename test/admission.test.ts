import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createApp } from '../src/app.ts';
import type { Config } from '../src/config.ts';
import { createRedis } from '../src/connections.ts';
import { sessionIdOf } from '../src/seed.ts';
import { createTestEnv, dbState, json, type TestEnv } from './helpers.ts';

// Admission control of POST /orders/:variant (src/routes/admission.ts): per-user and overall
// limits counted in Redis, 429 with Retry-After and the IETF RateLimit fields beyond them, nothing
// written for a refused order, counts shared by every app on the same Redis.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

/** An app of the test's database and Redis with these limits, on the given Redis client (default: the test's). */
const appWith = (admission: Config['admission'], redis = env.redis) =>
  createApp({ sql: env.sql, redis, config: { ...env.config, admission } });

/** One unit of product 1 (9.99) for `userId`, through `app`. */
async function order(app: ReturnType<typeof createApp>, userId: number): Promise<Response> {
  return app.request('/orders/row-lock', {
    method: 'POST',
    headers: { Authorization: `Bearer ${sessionIdOf(userId)}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(env.body([{ productId: 1, count: 1 }])),
  });
}

async function orders(app: ReturnType<typeof createApp>, userIds: number[]): Promise<Response[]> {
  const answers: Response[] = [];
  for (const userId of userIds) answers.push(await order(app, userId));
  return answers;
}

/** A 429's parts: status, code, policy, Retry-After within the window. */
async function assertLimited(res: Response, policy: string, windowSeconds: number) {
  const body = await json(res);
  assert.equal(res.status, 429, JSON.stringify(body));
  assert.equal(body.error.code, 'RATE_LIMITED');
  assert.equal(body.error.policy, policy);
  const retryAfter = Number(res.headers.get('Retry-After'));
  assert.ok(retryAfter >= 1 && retryAfter <= windowSeconds, `Retry-After ${retryAfter}`);
  assert.match(res.headers.get('RateLimit')!, new RegExp(`"${policy}";r=0;t=${retryAfter}$`));
}

describe('admission control', () => {
  test('per user: 3 orders in the window pass with the remaining count, the 4th is 429 and writes nothing; others unaffected', async () => {
    const app = appWith({ perUser: 3, overall: 0, windowSeconds: 30 });
    const passed = await orders(app, [1, 1, 1]);
    assert.deepEqual(passed.map((r) => r.status), [201, 201, 201]);
    assert.deepEqual(passed.map((r) => r.headers.get('RateLimit-Policy')), Array(3).fill('"per-user";q=3;w=30'));
    assert.deepEqual(passed.map((r) => r.headers.get('RateLimit')!.replace(/t=\d+/, 't=T')),
      ['"per-user";r=2;t=T', '"per-user";r=1;t=T', '"per-user";r=0;t=T']);

    const before = await dbState(env.sql);
    await assertLimited(await order(app, 1), 'per-user', 30);
    assert.deepEqual(await dbState(env.sql), before, 'a refused order writes nothing');
    // 3 units of product 1 sold, by the three orders that passed.
    assert.equal(before.sales, 3);

    assert.equal((await order(app, 2)).status, 201, 'another user has an allowance of their own');
  });

  test('overall: the 5th order in the window is refused whoever sends it', async () => {
    const app = appWith({ perUser: 0, overall: 4, windowSeconds: 30 });
    assert.deepEqual((await orders(app, [1, 2, 3, 4])).map((r) => r.status), [201, 201, 201, 201]);
    const before = await dbState(env.sql);
    await assertLimited(await order(app, 5), 'overall', 30);
    assert.deepEqual(await dbState(env.sql), before);
    assert.equal(before.orders, 4);
  });

  test('a user flooding spends their own allowance, not the overall one', async () => {
    const app = appWith({ perUser: 2, overall: 5, windowSeconds: 30 });
    // User 1 sends 10: 2 pass, 8 are refused by their own limit before the overall count.
    const flood = await orders(app, Array(10).fill(1));
    assert.deepEqual(flood.map((r) => r.status), [201, 201, ...Array(8).fill(429)]);
    // Overall 5: 2 used by user 1, 3 left for users 2, 3 and 4; user 5 is refused by the overall limit.
    const others = await orders(app, [2, 3, 4]);
    assert.deepEqual(others.map((r) => r.status), [201, 201, 201]);
    assert.equal(others[2]!.headers.get('RateLimit')!.replace(/t=\d+/g, 't=T'), '"per-user";r=1;t=T, "overall";r=0;t=T');
    await assertLimited(await order(app, 5), 'overall', 30);
    assert.equal((await dbState(env.sql)).orders, 5);
  });

  test('an order the overall limit refuses gives its user\'s count back: retries into a full window cost no allowance', async () => {
    const app = appWith({ perUser: 2, overall: 3, windowSeconds: 30 });
    assert.deepEqual((await orders(app, [1, 2, 3])).map((r) => r.status), [201, 201, 201]);
    // User 4 retries 5 times into the full window: refused by the overall limit each time, and
    // their own allowance stays whole (r=2 of 2) instead of running out after the second.
    for (const res of await orders(app, [4, 4, 4, 4, 4])) {
      await assertLimited(res, 'overall', 30);
      assert.match(res.headers.get('RateLimit')!, /^"per-user";r=2;t=\d+, "overall";r=0;t=\d+$/);
    }
    assert.equal((await dbState(env.sql)).orders, 3);
  });

  test('two service instances on one Redis share the counts', async () => {
    const other = createRedis(env.config);
    await other.connect();
    try {
      const limits = { perUser: 2, overall: 0, windowSeconds: 30 };
      const [a, b] = [appWith(limits), appWith(limits, other)];
      assert.equal((await order(a, 1)).status, 201);
      assert.equal((await order(b, 1)).status, 201);
      await assertLimited(await order(a, 1), 'per-user', 30);
      await assertLimited(await order(b, 1), 'per-user', 30);
      assert.equal((await dbState(env.sql)).orders, 2);
    } finally {
      await other.quit();
    }
  });

  test('off by default: no limit, no RateLimit fields', async () => {
    const answers = await orders(env.app, Array(12).fill(1));
    assert.ok(answers.every((r) => r.status === 201));
    assert.equal(answers[0]!.headers.get('RateLimit'), null);
    assert.equal(answers[0]!.headers.get('RateLimit-Policy'), null);
    assert.equal((await dbState(env.sql)).orders, 12);
  });

  test('Redis lost while counting: 503 SERVICE_UNAVAILABLE with Retry-After, nothing written', async () => {
    const own = createRedis(env.config);
    await own.connect();
    // Sessions cached for a minute: after the first order the user is known without Redis, so the
    // second order's first Redis command is the admission count.
    const app = createApp({ sql: env.sql, redis: own,
      config: { ...env.config, sessionCacheMs: 60_000, admission: { perUser: 5, overall: 0, windowSeconds: 30 } } });
    assert.equal((await order(app, 1)).status, 201);
    own.disconnect();
    const before = await dbState(env.sql);
    const res = await order(app, 1);
    const body = await json(res);
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.equal(body.error.code, 'SERVICE_UNAVAILABLE');
    assert.equal(res.headers.get('Retry-After'), '1');
    assert.deepEqual(await dbState(env.sql), before);
  });
});
