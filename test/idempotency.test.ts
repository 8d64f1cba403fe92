import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { readMirroredStock } from '../src/orders/redis-stock.ts';
import { reconcileStockMirrors } from '../src/orders/stock-reconciler.ts';
import { TRANSACTIONAL_VARIANTS, VARIANT_NAMES } from '../src/orders/variants/index.ts';
import { createTestEnv, dbState, holdRow, json, productRow, untilSomeoneWaitsForALock, type TestEnv } from './helpers.ts';

// Idempotency-Key on POST /orders/:variant: a repeat gets the first outcome back and creates
// nothing; the same key with another body, or while the first is still running, is refused.

let env: TestEnv;
// Long enough that an order queued behind a row held by a test outlives the test's steps.
before(async () => { env = await createTestEnv({ db: { ...loadConfig().db, lockTimeoutMs: 5_000 } }); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

async function send(variant: string, body: unknown, key?: string, userId = 1): Promise<Response> {
  return env.app.request(`/orders/${variant}`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer seed-${userId}`, 'Content-Type': 'application/json',
      ...(key === undefined ? {} : { 'Idempotency-Key': key }),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

// Product 2 costs 19.99: 2 units = 39.98.
const twoOfProduct2 = () => env.body([{ productId: 2, count: 2 }]);
const threeOfProduct2 = () => env.body([{ productId: 2, count: 3 }]);

for (const variant of VARIANT_NAMES) {
  describe(`${variant}: Idempotency-Key`, () => {
    test('a repeat replays the first 201 and creates nothing', async () => {
      const first = await send(variant, twoOfProduct2(), 'key-1');
      const created = await json(first);
      assert.equal(first.status, 201, JSON.stringify(created));
      assert.equal(first.headers.get('Idempotent-Replayed'), null);
      const after1 = await dbState(env.sql);

      // Sent as the draft's structured-field string this time: the same key.
      const again = await send(variant, twoOfProduct2(), '"key-1"');
      assert.equal(again.status, 201);
      assert.equal(again.headers.get('Idempotent-Replayed'), 'true');
      assert.equal(await again.text(), JSON.stringify(created), 'the same body, byte for byte');
      assert.deepEqual(created, { orderNo: created.orderNo, totalAmount: '39.98', pointsUsed: 0, status: 'pending_payment' });

      assert.deepEqual(await dbState(env.sql), after1);
      assert.equal(after1.orders, 1);
      assert.deepEqual(await productRow(env.sql, 2), { stock: 998, sales: 2 });
      if (variant === 'redis') assert.equal((await readMirroredStock(env.redis, [2])).get(2), 998, 'one Redis take');
    });

    test('the same key with another body is refused and writes nothing', async () => {
      assert.equal((await send(variant, twoOfProduct2(), 'key-2')).status, 201);
      const before = await dbState(env.sql);
      const res = await send(variant, threeOfProduct2(), 'key-2');
      assert.equal(res.status, 422);
      assert.equal((await json(res)).error.code, 'IDEMPOTENCY_KEY_REUSED');
      // ... and through another variant: a different request too.
      const other = variant === 'row-lock' ? 'serializable' : 'row-lock';
      assert.equal((await send(other, twoOfProduct2(), 'key-2')).status, 422);
      assert.deepEqual(await dbState(env.sql), before);
    });

    test('a final refusal is replayed too; a validation refusal stores nothing', async () => {
      await env.reset({ stock: 1 });
      const refused = await send(variant, twoOfProduct2(), 'key-3');
      const body = await json(refused);
      assert.equal(refused.status, 409);
      assert.equal(body.error.code, 'OUT_OF_STOCK');
      // Restocked meanwhile: the key still answers what the first submission got.
      await env.sql`update product set stock = 10 where id = 2`;
      await reconcileStockMirrors(env.sql, env.redis);
      const again = await send(variant, twoOfProduct2(), 'key-3');
      assert.equal(again.status, 409);
      assert.equal(again.headers.get('Idempotent-Replayed'), 'true');
      assert.equal(await again.text(), JSON.stringify(body));
      assert.equal((await dbState(env.sql)).orders, 0);

      const invalid = await send(variant, { items: [] }, 'key-4');
      assert.equal(invalid.status, 422);
      assert.equal((await json(invalid)).error.code, 'VALIDATION_FAILED');
      const valid = await send(variant, twoOfProduct2(), 'key-4');
      assert.equal(valid.status, 201, 'the key was not taken by the invalid request');
      assert.deepEqual(await productRow(env.sql, 2), { stock: 8, sales: 2 });
    });

    test('keys are per user, and an expired key is free again', async () => {
      const mine = await json(await send(variant, twoOfProduct2(), 'shared', 1));
      const theirs = await json(await send(variant, twoOfProduct2(), 'shared', 2));
      assert.notEqual(mine.orderNo, theirs.orderNo);
      await env.sql`update idempotency_key set expires_at = now() - interval '1 second'`;
      const anew = await send(variant, threeOfProduct2(), 'shared', 1);
      assert.equal(anew.status, 201, 'an expired key does not refuse another body');
      assert.deepEqual(await productRow(env.sql, 2), { stock: 1000 - 2 - 2 - 3, sales: 7 });
      assert.equal((await dbState(env.sql)).orders, 3);
    });

    test('a key that is not 1-255 visible ASCII characters is refused before anything is done', async () => {
      for (const key of ['x'.repeat(256), 'two words', '"unterminated', 'back\\slash', '""']) {
        const res = await send(variant, twoOfProduct2(), key);
        assert.equal(res.status, 422, key);
        assert.equal((await json(res)).error.code, 'VALIDATION_FAILED');
      }
      assert.equal((await dbState(env.sql)).orders, 0);
      assert.equal((await send(variant, twoOfProduct2(), 'x'.repeat(255))).status, 201);
    });
  });
}

// no-tx runs each statement on its own: a key's lock ends with the statement that takes it, so it
// cannot turn away a repeat that arrives while the first is running (both may take stock; the
// key's uniqueness then refuses the second order row). What it does promise is above: a repeat
// after the first finished is replayed.
for (const variant of TRANSACTIONAL_VARIANTS) {
  describe(`${variant}: repeats while the first is running`, () => {
    test('a repeat while the first waits is turned away at once with 409 and Retry-After', async () => {
      const unlock = await holdRow(env.sql, 2);
      let first: Promise<Response> | undefined;
      let second: Response | undefined;
      try {
        first = send(variant, twoOfProduct2(), 'busy');
        await untilSomeoneWaitsForALock(env.sql);
        const secondSent = send(variant, twoOfProduct2(), 'busy');
        // A batching variant may queue the repeat behind the first's batch instead: then it is
        // answered once the row is free, with the first's outcome.
        second = await Promise.race([secondSent, sleep(1_000).then(() => undefined)]);
        if (!second) {
          assert.equal(variant, 'batched', 'the repeat waited for the first');
          await unlock();
          second = await secondSent;
        }
      } finally {
        await unlock();
      }
      const placed = await first!;
      const created = await json(placed);
      assert.equal(placed.status, 201, JSON.stringify(created));
      const answer = await json(second!);
      if (second!.status === 409) {
        assert.equal(answer.error.code, 'IDEMPOTENCY_KEY_IN_USE');
        assert.equal(second!.headers.get('Retry-After'), '1');
      } else {
        assert.equal(second!.status, 201);
        assert.deepEqual(answer, created);
      }
      const third = await send(variant, twoOfProduct2(), 'busy');
      assert.deepEqual(await json(third), created);
      assert.deepEqual(await productRow(env.sql, 2), { stock: 998, sales: 2 });
      assert.equal((await dbState(env.sql)).orders, 1);
      if (variant === 'redis') assert.equal((await readMirroredStock(env.redis, [2])).get(2), 998, 'the refused repeat gave its take back');
    });

    test('ten copies at once: one order, every answer its 201 or 409 in use', async () => {
      const answers = await Promise.all(Array.from({ length: 10 }, () => send(variant, twoOfProduct2(), 'storm')));
      const bodies = await Promise.all(answers.map(json));
      const [order] = await env.sql<{ id: string }[]>`select id from orders`;
      assert.equal((await dbState(env.sql)).orders, 1);
      assert.deepEqual(await productRow(env.sql, 2), { stock: 998, sales: 2 });
      const orderNos = new Set(bodies.filter((_, i) => answers[i]!.status === 201).map((b) => b.orderNo));
      assert.equal(orderNos.size, 1, 'every 201 names the one order');
      assert.ok(order);
      for (const [i, res] of answers.entries()) {
        if (res.status !== 201) assert.deepEqual([res.status, bodies[i].error.code], [409, 'IDEMPOTENCY_KEY_IN_USE']);
      }
      if (variant === 'redis') assert.equal((await readMirroredStock(env.redis, [2])).get(2), 998);
    });
  });
}
