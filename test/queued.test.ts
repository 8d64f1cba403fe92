import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { createApp } from '../src/app.ts';
import { DEFAULT_QUEUE, type QueueConfig } from '../src/config.ts';
import { placeOrdersCall } from '../src/orders/order-functions.ts';
import { prepareForVerification } from '../src/orders/prepare-order.ts';
import { startQueueConsumer, type QueueConsumer } from '../src/orders/queue/queue-consumer.ts';
import { acceptQueued, QUEUE_GROUP, QUEUE_KEY, queueLength, recordRejected, type QueuedOrder } from '../src/orders/queue/queue-store.ts';
import { giveBackReservation, readMirroredStock, RESERVATIONS_KEY } from '../src/orders/redis-stock.ts';
import { couponIdsOf, DEFAULT_SEED, sessionIdOf } from '../src/seed.ts';
import { boundedPool } from '../src/transaction.ts';
import { createTestEnv, json, productRow, type TestEnv } from './helpers.ts';

// The queued variant: 202 at once with the order's number, the order written (or rejected, its
// units given back once) by consumers of the durable queue; redelivery never writes twice.

let env: TestEnv;
const consumers: QueueConsumer[] = [];
before(async () => { env = await createTestEnv(); });
after(async () => {
  await Promise.all(consumers.splice(0).map((c) => c.stop()));
  await env?.close();
});
beforeEach(async () => {
  await Promise.all(consumers.splice(0).map((c) => c.stop()));
  await env.reset();
});

async function startConsumer(queue: Partial<QueueConfig> = {}, name?: string) {
  const db = boundedPool(env.sql, { poolSize: 4, requestTimeoutMs: 10_000 });
  const consumer = await startQueueConsumer({
    db, redis: env.redis, config: { ...DEFAULT_QUEUE, ...queue, requestTimeoutMs: 10_000 }, log: () => {}, name,
  });
  consumers.push(consumer);
  return consumer;
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function send(path: string, userId: number, init: RequestInit = {}, app = env.app): Promise<Response> {
  return app.request(path, { ...init, headers: { Authorization: `Bearer ${sessionIdOf(userId)}`, 'Content-Type': 'application/json', ...init.headers } });
}
const getOrder = async (orderNo: string, userId: number) => json(await send(`/orders/${orderNo}`, userId));
const statusOf = async (orderNo: string, userId: number) => (await getOrder(orderNo, userId)).status as string;
const mirrorOf = async (productId: number) => (await readMirroredStock(env.redis, [productId])).get(productId);

test('202 with the order number and Location; queued, then pending_payment, then paid', async () => {
  // 2 x 9.99 + 1 x 19.99 = 39.97
  const body = env.body([{ productId: 1, count: 2 }, { productId: 2, count: 1 }]);
  const res = await env.order('queued', 1, body);
  assert.equal(res.status, 202);
  const accepted = await json(res);
  assert.equal(accepted.status, 'queued');
  assert.match(accepted.orderNo, /^\d{8}[0-9a-zA-Z]{6,}$/);
  assert.equal(res.headers.get('Location'), `/orders/${accepted.orderNo}`);

  // Units taken in Redis at once, nothing written yet.
  assert.equal(await mirrorOf(1), 998);
  assert.equal(await mirrorOf(2), 999);
  assert.deepEqual(await productRow(env.sql, 1), { stock: 1000, sales: 0 });
  const queued = await getOrder(accepted.orderNo, 1);
  assert.equal(queued.status, 'queued');
  assert.equal(queued.totalAmount, '39.97');
  assert.deepEqual(queued.items.map((i: { productId: number; count: number }) => [i.productId, i.count]), [[1, 2], [2, 1]]);
  // Someone else asking is told there is no such order.
  assert.equal((await send(`/orders/${accepted.orderNo}`, 2)).status, 404);

  // Not payable nor cancellable before it is written; asked again after Retry-After.
  for (const action of ['pay', 'cancel']) {
    const early = await send(`/orders/${accepted.orderNo}/${action}`, 1, { method: 'POST' });
    assert.equal(early.status, 409);
    assert.equal(early.headers.get('Retry-After'), '1');
    assert.deepEqual((await json(early)).error, { code: 'ORDER_NOT_PENDING', message: 'the order is queued: it can be paid or cancelled once it is placed', status: 'queued' });
  }

  await startConsumer();
  await until('the order is placed', async () => (await statusOf(accepted.orderNo, 1)) === 'pending_payment');
  // The row commits before the consumer settles the entry in Redis.
  await until('the entry is settled', async () => (await queueLength(env.redis)) === 0);
  const placed = await getOrder(accepted.orderNo, 1);
  assert.equal(placed.totalAmount, '39.97');
  assert.equal(placed.createdAt, queued.createdAt, 'created at the 202');
  assert.deepEqual(await productRow(env.sql, 1), { stock: 998, sales: 2 });
  assert.deepEqual(await productRow(env.sql, 2), { stock: 999, sales: 1 });
  // The units stay taken in Redis; the reservation is settled and the entry gone.
  assert.equal(await mirrorOf(1), 998);
  assert.equal(await env.redis.hlen(RESERVATIONS_KEY), 0);
  assert.equal(await queueLength(env.redis), 0);

  const paid = await send(`/orders/${accepted.orderNo}/pay`, 1, { method: 'POST' });
  assert.equal(paid.status, 200);
  assert.equal((await json(paid)).status, 'paid');
});

test('a coupon used meanwhile: rejected with its code, units given back exactly once', async () => {
  const [coupon] = couponIdsOf(DEFAULT_SEED, 2) as [number];
  // 39.99 x 0.85 = 33.9915 -> 33.99
  const body = env.body([{ productId: 4, count: 1 }], { couponId: coupon, total: '33.99' });
  const res = await env.order('queued', 2, body);
  assert.equal(res.status, 202);
  const { orderNo } = await json(res);
  assert.equal(await mirrorOf(4), 999);
  // The same coupon spent by a synchronous order before the queued one is written.
  assert.equal((await env.order('row-lock', 2, body)).status, 201);
  const [entry] = await rawEntries();

  await startConsumer();
  await until('the order is rejected', async () => (await statusOf(orderNo, 2)) === 'rejected');
  const rejected = await getOrder(orderNo, 2);
  assert.deepEqual(rejected.rejection, { code: 'COUPON_INVALID', message: `coupon ${coupon} has already been used`, couponId: coupon, reason: 'used' });
  assert.equal(await mirrorOf(4), 1000, 'the queued order\'s unit given back');
  assert.deepEqual(await productRow(env.sql, 4), { stock: 999, sales: 1 }, 'only the row-lock order written');
  assert.equal(await queueLength(env.redis), 0);

  // Recording the rejection again, or giving the reservation back again, gives nothing back.
  assert.equal(await recordRejected(env.redis, entry!, 'anyone', { code: 'X', message: 'x' }, 60), false);
  assert.equal(await giveBackReservation(env.redis, { id: entry!.order.requestKey, lines: [{ productId: 4, count: 1 }], deadline: 0 }), false);
  assert.equal(await mirrorOf(4), 1000);
  const paid = await send(`/orders/${orderNo}/pay`, 2, { method: 'POST' });
  assert.equal(paid.status, 409);
  assert.equal((await json(paid)).error.status, 'rejected');
});

test('a price changed while queued: rejected PRICE_CHANGED, its unit given back', async () => {
  const stale = await json(await env.order('queued', 3, env.body([{ productId: 1, count: 1 }])));
  await env.sql`update product set price = 10.49 where id = 1`;
  await startConsumer();
  await until('decided', async () => (await statusOf(stale.orderNo, 3)) === 'rejected');
  assert.deepEqual((await getOrder(stale.orderNo, 3)).rejection,
    { code: 'PRICE_CHANGED', message: 'product 1 now costs 10.49', productId: 1, price: '10.49', snapshotId: 1 });
  assert.equal(await mirrorOf(1), 1000);
  assert.equal((await env.sql`select count(*)::int as n from orders`)[0]!.n, 0);
});

test('a total that does not add up (no coupon): 409 TOTAL_MISMATCH at once, nothing taken or queued', async () => {
  // 1 x 19.99 is 19.99, not 1.00.
  const res = await env.order('queued', 3, { ...env.body([{ productId: 2, count: 1 }]), totalAmount: '1.00' });
  assert.equal(res.status, 409);
  assert.deepEqual((await json(res)).error,
    { code: 'TOTAL_MISMATCH', message: 'the order total is 19.99, not 1.00', expected: '19.99', received: '1.00', pointsUsed: 0 });
  assert.equal(await mirrorOf(2), 1000);
  assert.equal(await queueLength(env.redis), 0);
});

test('an order that cannot be written for a reason of the moment does not hold up the others; after a few tries it is rejected with it', async () => {
  // Every write of user 10's orders fails as a serialization failure would (a reason of the moment).
  await env.sql.unsafe(`
    create function refuse_user_10() returns trigger language plpgsql as $$
    begin
      if new.user_id = 10 then raise exception 'not now' using errcode = 'serialization_failure'; end if;
      return new;
    end $$;
    create trigger refuse_user_10 before insert on orders for each row execute function refuse_user_10();`);
  const held = await json(await env.order('queued', 10, env.body([{ productId: 4, count: 1 }])));
  const next = await json(await env.order('queued', 11, env.body([{ productId: 5, count: 1 }])));
  await startConsumer();
  await until('the next order is placed', async () => (await statusOf(next.orderNo, 11)) === 'pending_payment');
  await until('the held order is rejected', async () => (await statusOf(held.orderNo, 10)) === 'rejected');
  assert.equal((await getOrder(held.orderNo, 10)).rejection.code, 'SERIALIZATION_FAILURE');
  assert.equal(await mirrorOf(4), 1000, 'its unit given back');
  assert.deepEqual(await productRow(env.sql, 4), { stock: 1000, sales: 0 });
  assert.deepEqual(await productRow(env.sql, 5), { stock: 999, sales: 1 });
});

test('a queued order written already is not written again, even where verifying it again would now refuse it', async () => {
  const { orderNo } = await json(await env.order('queued', 12, env.body([{ productId: 8, count: 3 }])));
  const [entry] = await rawEntries();
  const order = entry!.order;
  const db = boundedPool(env.sql, { poolSize: 2, requestTimeoutMs: 10_000 });
  const write = async () => {
    const prepared = await prepareForVerification(db, order.userId, order.request, Date.now() + 10_000);
    prepared.input.requestKey = order.requestKey;
    prepared.input.accepted = { orderId: order.orderId, createdAt: new Date(order.createdAt), reservationId: order.requestKey };
    return [...(await placeOrdersCall(env.sql, [{ input: prepared.input, verifyOnly: false }])).values()][0]!;
  };
  const first = await write();
  // Its 3 units were the last: written again it would be OUT_OF_STOCK.
  await env.sql`update product set stock = 0 where id = 8`;
  const again = await write();
  assert.deepEqual([Number(again.orderId), again.refusal], [order.orderId, null]);
  assert.equal(again.createdAt!.getTime(), first.createdAt!.getTime());
  assert.equal((await env.sql`select count(*)::int as n from orders`)[0]!.n, 1);
  // The step resent after the order was decided takes nothing again.
  await startConsumer();
  // The row exists already (written above), so its status reads pending_payment at once: wait for the
  // consumer to settle and remove the entry instead.
  await until('the consumer settles the entry', async () => (await queueLength(env.redis)) === 0);
  assert.equal(await statusOf(orderNo, 12), 'pending_payment');
  assert.equal(await mirrorOf(8), 997);
  const resent = await acceptQueued(env.redis, { order, reservationDeadline: Date.now() + 60_000, maxQueued: 10, recordTtlSeconds: 60 });
  assert.deepEqual(resent, { accepted: true });
  assert.equal(await mirrorOf(8), 997, 'no unit taken twice');
  assert.equal(await queueLength(env.redis), 0, 'no second entry');
});

test('a status record left under the same order id by another acceptance (ids started over) does not stop an acceptance', async () => {
  const request = env.body([{ productId: 10, count: 2 }]);
  const order: QueuedOrder = { orderId: 424242, createdAt: Date.now(), userId: 14, requestKey: '00000000-0000-4000-8000-000000000001', request };
  await env.redis.set('queued-order:424242', JSON.stringify({ status: 'placed', requestKey: '00000000-0000-4000-8000-000000000002', userId: 3 }));
  assert.deepEqual(await acceptQueued(env.redis, { order, reservationDeadline: Date.now() + 60_000, maxQueued: 10, recordTtlSeconds: 60 }), { accepted: true });
  assert.equal(await mirrorOf(10), 998, 'its units taken');
  assert.equal(await queueLength(env.redis), 1, 'its entry queued');
  assert.equal(JSON.parse((await env.redis.get('queued-order:424242'))!).requestKey, order.requestKey);
});

test('GET: the order row wins over a status record that says otherwise', async () => {
  const { orderNo } = await json(await env.order('queued', 13, env.body([{ productId: 9, count: 1 }])));
  await startConsumer();
  await until('placed', async () => (await statusOf(orderNo, 13)) === 'pending_payment');
  await until('the entry is settled', async () => (await queueLength(env.redis)) === 0);
  const id = (await env.sql<{ id: string }[]>`select id from orders`)[0]!.id;
  const key = `queued-order:${id}`;
  const record = JSON.parse((await env.redis.get(key))!);
  await env.redis.set(key, JSON.stringify({ ...record, status: 'rejected', error: { code: 'X', message: 'x' } }));
  assert.equal(await statusOf(orderNo, 13), 'pending_payment');
  assert.equal((await send(`/orders/${orderNo}/pay`, 13, { method: 'POST' })).status, 200);
});

test('backpressure: beyond QUEUE_MAX_LENGTH waiting orders, 503 with Retry-After and nothing taken', async () => {
  const app = createApp({ sql: env.sql, redis: env.redis, config: { ...env.config, queue: { ...DEFAULT_QUEUE, maxLength: 2 } } });
  const body = JSON.stringify(env.body([{ productId: 5, count: 1 }]));
  assert.equal((await send('/orders/queued', 4, { method: 'POST', body }, app)).status, 202);
  assert.equal((await send('/orders/queued', 4, { method: 'POST', body }, app)).status, 202);
  const full = await send('/orders/queued', 4, { method: 'POST', body }, app);
  assert.equal(full.status, 503);
  assert.equal(full.headers.get('Retry-After'), '1');
  assert.equal((await json(full)).error.code, 'SERVICE_BUSY');
  assert.equal(await mirrorOf(5), 998, 'the refused order took nothing');
  assert.equal(await queueLength(env.redis), 2);
  // Drained, the queue takes orders again.
  await startConsumer();
  await until('the queue drains', async () => (await queueLength(env.redis)) === 0);
  assert.equal((await send('/orders/queued', 4, { method: 'POST', body }, app)).status, 202);
});

test('sold out in Redis: 409 OUT_OF_STOCK at once, nothing queued', async () => {
  await env.redis.set('stock:6', '1');
  const res = await env.order('queued', 5, env.body([{ productId: 6, count: 2 }]));
  assert.equal(res.status, 409);
  assert.equal((await json(res)).error.code, 'OUT_OF_STOCK');
  assert.equal(await mirrorOf(6), 1);
  assert.equal(await queueLength(env.redis), 0);
});

test('an Idempotency-Key accepts once: a repeat answers the same order, another body with it is refused', async () => {
  const body = JSON.stringify(env.body([{ productId: 3, count: 1 }]));
  const post = (b: string) => send('/orders/queued', 6, { method: 'POST', body: b, headers: { 'Idempotency-Key': 'k-1' } });
  const first = await post(body);
  const again = await post(body);
  assert.equal(first.status, 202);
  assert.equal(again.status, 202);
  assert.equal(again.headers.get('Idempotent-Replayed'), 'true');
  assert.equal((await json(again)).orderNo, (await json(first)).orderNo);
  assert.equal(await queueLength(env.redis), 1);
  assert.equal(await mirrorOf(3), 999);
  const other = await post(JSON.stringify(env.body([{ productId: 3, count: 2 }])));
  assert.equal(other.status, 422);
  assert.equal((await json(other)).error.code, 'IDEMPOTENCY_KEY_REUSED');
});

/** The queue's entries, read as a consumer named `as` would read them (without finishing them). */
async function rawEntries(as?: string) {
  const reply = as
    ? await env.redis.xreadgroup('GROUP', QUEUE_GROUP, as, 'COUNT', 100, 'STREAMS', QUEUE_KEY, '>')
    : await env.redis.xrange(QUEUE_KEY, '-', '+').then((entries) => [[QUEUE_KEY, entries]]);
  const entries = ((reply ?? []) as [string, [string, string[]][]][])[0]?.[1] ?? [];
  return entries.map(([entryId, fields]) => ({ entryId, order: JSON.parse(fields[1]!) as QueuedOrder }));
}

test('a consumer that died mid-batch: another claims its entries, and one it had committed is not written again', async () => {
  const accepted = [];
  for (const userId of [7, 8, 9]) accepted.push((await json(await env.order('queued', userId, env.body([{ productId: 7, count: 1 }])))).orderNo);
  await env.redis.xgroup('CREATE', QUEUE_KEY, QUEUE_GROUP, '0', 'MKSTREAM').catch(() => {});
  const taken = await rawEntries('died');
  assert.equal(taken.length, 3);
  // It wrote the first order and died before recording the outcome.
  const first = taken[0]!.order;
  const db = boundedPool(env.sql, { poolSize: 2, requestTimeoutMs: 10_000 });
  const prepared = await prepareForVerification(db, first.userId, first.request, Date.now() + 10_000);
  prepared.input.requestKey = first.requestKey;
  prepared.input.accepted = { orderId: first.orderId, createdAt: new Date(first.createdAt), reservationId: first.requestKey };
  const [written] = [...(await placeOrdersCall(env.sql, [{ input: prepared.input, verifyOnly: false }])).values()];
  assert.equal(Number(written!.orderId), first.orderId);

  await new Promise((r) => setTimeout(r, 300));
  await startConsumer({ claimIdleMs: 250 }, 'heir');
  await until('the queue drains', async () => (await queueLength(env.redis)) === 0);
  for (const [i, orderNo] of accepted.entries()) assert.equal(await statusOf(orderNo, 7 + i), 'pending_payment');
  const orders = await env.sql<{ n: number; ids: number }[]>`select count(*)::int as n, count(distinct id)::int as ids from orders`;
  assert.deepEqual({ ...orders[0] }, { n: 3, ids: 3 });
  assert.deepEqual(await productRow(env.sql, 7), { stock: 997, sales: 3 });
  assert.equal(await mirrorOf(7), 997, 'no unit given back');
  assert.equal(await env.redis.hlen(RESERVATIONS_KEY), 0);
});

test('two consumers at once: 200 orders, each written exactly once, units conserved', async () => {
  const accepted: { orderNo: string; userId: number }[] = [];
  await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    const userId = 1 + (i % 100);
    // Products 1-3 in an order that differs between orders: batches lock them sorted.
    const lines = [{ productId: 1 + (i % 3), count: 1 }, { productId: 1 + ((i + 1) % 3), count: 2 }];
    const res = await env.order('queued', userId, env.body(lines));
    assert.equal(res.status, 202);
    accepted.push({ orderNo: (await json(res)).orderNo, userId });
  }));
  await Promise.all([startConsumer({ batchMax: 16 }, 'one'), startConsumer({ batchMax: 16 }, 'two')]);
  await until('the queue drains', async () => (await queueLength(env.redis)) === 0, 30_000);
  const [counts] = await env.sql<{ n: number; keys: number }[]>`select count(*)::int as n, count(distinct request_key)::int as keys from orders`;
  assert.deepEqual({ ...counts }, { n: 200, keys: 200 });
  // Order i takes 1 unit of product 1 + i%3 and 2 of product 1 + (i+1)%3. Of i = 0..199, 67 have
  // i%3 = 0, 67 have 1, 66 have 2: product 1 sells 67 + 2 x 66 = 199, product 2 67 + 2 x 67 = 201,
  // product 3 66 + 2 x 67 = 200 (600 units in all, 3 per order).
  for (const [p, sold] of [[1, 199], [2, 201], [3, 200]] as const) {
    assert.deepEqual(await productRow(env.sql, p), { stock: 1000 - sold, sales: sold }, `product ${p}`);
    assert.equal(await mirrorOf(p), 1000 - sold);
  }
  for (const { orderNo, userId } of accepted.slice(0, 20)) assert.equal(await statusOf(orderNo, userId), 'pending_payment');
});
