import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import Hashids from 'hashids';
import { cents, formatCents } from '../bench/bodies.ts';
import { VARIANT_NAMES } from '../src/orders/variants/index.ts';
import { DEFAULT_SEED, productPrice } from '../src/seed.ts';
import { createTestEnv, dbState, type TestEnv } from './helpers.ts';

// Hostile requests, generated: whatever a client sends, the answer is below 500, and a request not
// answered 201 writes nothing. Requests run one at a time, so even no-tx has no race to lose.
// A fixed seed makes every run the same; a failure prints the request that caused it.

const SEED = 20261124;
const NUM_RUNS = 600;

let env: TestEnv;
before(async () => { env = await createTestEnv(); await env.reset(); });
after(async () => { await env?.close(); });

interface Sent { method: 'GET' | 'POST'; path: string; authorization?: string; body?: string }

/** Sends one request and checks it did no harm; the message names the request and the answer. */
async function sendHarmlessly(req: Sent): Promise<number> {
  const before = await dbState(env.sql);
  const headers: Record<string, string> = req.authorization === undefined ? {} : { Authorization: req.authorization };
  const res = await env.app.request(req.path, { method: req.method, headers, body: req.body });
  const answer = await res.text();
  const what = `${JSON.stringify(req).slice(0, 2000)}\n -> ${res.status} ${answer.slice(0, 500)}`;
  assert.ok(res.status < 500, `5xx: ${what}`);
  if (res.status !== 201) assert.deepEqual(await dbState(env.sql), before, `written without a 201: ${what}`);
  return res.status;
}

const run = <T>(arb: fc.Arbitrary<T>, check: (value: T) => Promise<unknown>) =>
  fc.assert(fc.asyncProperty(arb, async (value) => { await check(value); }), { seed: SEED, numRuns: NUM_RUNS });

/** Mostly the valid value, sometimes the hostile one: about half the orders keep every field valid. */
const often = <T, U>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<U>) =>
  fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: hostile });

const INT4_MAX = 2_147_483_647;
const edgeNumbers = fc.constantFrom(0, -1, 0.5, 1.5, INT4_MAX, INT4_MAX + 1, -INT4_MAX - 1, -INT4_MAX - 2,
  2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 1e21, 1e308, -1e308, Number.MIN_VALUE);
const hostileNumber = fc.oneof(edgeNumbers, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
const hostileValue = fc.oneof(hostileNumber, fc.jsonValue());
const oddMoney = fc.oneof(
  fc.constantFrom('09.99', '009.99', '9.990', '9.', '.99', '1e1', ' 9.99', '9.99 ', '9.99\n', '9,99', '-9.99', '+9.99',
    '-0.00', '０.９９', '99999999.99', '100000000.00', '0', '0.00', ''),
  fc.stringMatching(/^-?\d{1,10}(\.\d{0,3})?$/),
  fc.string(),
);
const extraKeys = fc.dictionary(
  fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'productId', 'count', 'price', 'items', 'points'), fc.string()),
  fc.jsonValue(), { maxKeys: 2 });
const anyVariant = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...VARIANT_NAMES) },
  fc.constantFrom('optimistic', 'NO-TX', 'row-lock ', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '..', ''),
  fc.string());
const variantPath = (variant: string) => `/orders/${encodeURIComponent(variant)}`;

/** A line of the seeded catalog (product p: snapshot p, price of p), each field sometimes mutated. */
const nearItem = fc.integer({ min: 1, max: 10 }).chain((p) => fc.tuple(fc.record({
  productId: often(fc.constant<unknown>(p), hostileValue),
  snapshotId: often(fc.constant<unknown>(p), hostileValue),
  count: often(fc.integer({ min: 1, max: 3 }), fc.oneof(fc.constantFrom(99, 100, 1e9, '1'), hostileValue)),
  price: often(fc.constant<unknown>(productPrice(DEFAULT_SEED, p)), fc.oneof(oddMoney, hostileValue)),
}), often(fc.constant(undefined), extraKeys)).map(([item, extra]) => ({ ...item, ...extra })));

const nearOrder = fc.record({
  // mostly 1-3 distinct products; sometimes 0-60 lines, duplicates likely
  items: often(fc.uniqueArray(nearItem, { minLength: 1, maxLength: 3, selector: (i) => i.productId }),
    fc.array(nearItem, { maxLength: 60 })),
  // user 1 owns coupons 1-4, each good once
  couponId: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, often(fc.integer({ min: 1, max: 8 }), hostileValue)),
  points: fc.option(often(fc.integer({ min: 0, max: 500 }), hostileValue), { nil: undefined }),
  // undefined: the total the server will compute, when the lines allow one
  totalAmount: often(fc.constant(undefined), fc.oneof(oddMoney, hostileValue)),
  extra: often(fc.constant(undefined), extraKeys),
});

type NearOrder = typeof nearOrder extends fc.Arbitrary<infer T> ? T : never;

function orderBody({ items, couponId, points, totalAmount, extra }: NearOrder): string {
  return JSON.stringify({ items, couponId, points, totalAmount: totalAmount ?? serverTotal(items, couponId, points), ...extra });
}

const isIntIn = (v: unknown, min: number, max: number): v is number =>
  Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/**
 * The total the server should compute from the seeded catalog and user 1's coupons (odd ids take
 * 15% off, rounded half up; even ids 10.00 off from 100.00), so that some orders succeed; '9.99'
 * when there is none. Worked out in whole cents, independently of the pricing code under test.
 */
function serverTotal(items: Record<string, unknown>[], couponId: unknown, points: unknown): string {
  const lines = items.map((i) => ({ productId: i.productId, count: i.count }));
  if (!lines.length || !lines.every((l) => isIntIn(l.productId, 1, 10) && isIntIn(l.count, 1, 99))) return '9.99';
  const subtotal = (lines as { productId: number; count: number }[])
    .reduce((sum, l) => sum + cents(productPrice(DEFAULT_SEED, l.productId)) * l.count, 0);
  let payable = subtotal;
  if (isIntIn(couponId, 1, 4)) {
    if (couponId % 2 === 1) payable = Math.floor((subtotal * 85 + 50) / 100);
    else if (subtotal >= 10_000) payable = subtotal - 1_000;
    else return '9.99'; // a reduction coupon below its threshold: no total is right
  }
  const total = payable - Math.min(isIntIn(points, 0, Infinity) ? points : 0, payable);
  return formatCents(total);
}

const validBody = () => JSON.stringify(env.body([{ productId: 1, count: 1 }]));

test('arbitrary JSON and strings as order bodies, every variant and unknown ones: < 500, no write', async () => {
  const deep = (n: number) => `{"items":${'['.repeat(n)}${']'.repeat(n)}}`;
  const body = fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string(), fc.string({ unit: 'binary', maxLength: 200 }),
    fc.constantFrom(deep(8000), '['.repeat(16_000), '{"items":[], "totalAmount": "1"}'.repeat(500)));
  await run(fc.tuple(anyVariant, body), ([variant, text]) =>
    sendHarmlessly({ method: 'POST', path: variantPath(variant), authorization: 'Bearer seed-1', body: text }));
});

test('near-valid orders with mutated fields: < 500, no write unless 201', async () => {
  await run(fc.tuple(fc.constantFrom(...VARIANT_NAMES), nearOrder), ([variant, order]) =>
    sendHarmlessly({ method: 'POST', path: variantPath(variant), authorization: 'Bearer seed-1', body: orderBody(order) }));
});

test('arbitrary Authorization headers: < 500, no write unless 201', async () => {
  // Characters a header value can carry (no CR, LF or NUL; Latin-1).
  const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 300 });
  const authorization = fc.oneof(headerText, headerText.map((t) => `Bearer ${t}`),
    fc.constantFrom('Bearer', 'Bearer ', 'bearer seed-1', 'Bearer  seed-1', 'Bearer seed-1 x', 'Bearer seed-0', 'Bearer seed-101',
      'Bearer seed-1\t', `Bearer ${'a'.repeat(201)}`, 'Bearer *', 'Bearer session:seed-1'));
  await run(fc.tuple(fc.constantFrom(...VARIANT_NAMES), authorization), ([variant, auth]) =>
    sendHarmlessly({ method: 'POST', path: variantPath(variant), authorization: auth, body: validBody() }));
});

test('arbitrary strings and hashids of large numbers as order numbers: 200 or 404, nothing else', async () => {
  const hashids = new Hashids(env.config.hashidsSalt, 6);
  const date = fc.oneof(fc.constant('20261124'), fc.stringMatching(/^\d{8}$/));
  const bigId = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 80n }),
    fc.constantFrom(0n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n, 10n ** 21n));
  const severalIds = fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n }), { minLength: 2, maxLength: 3 });
  const orderNo = fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 100 }),
    fc.tuple(date, bigId).map(([d, id]) => d + hashids.encode(id)),
    fc.tuple(date, severalIds).map(([d, ids]) => d + hashids.encode(ids)),
    fc.constant(`20261124${'a'.repeat(16 * 1024)}`));
  await run(orderNo, async (no) => {
    // The caller's own order, or 404 for anything else: not a 422 from a value PostgreSQL refused.
    const path = `/orders/${encodeURIComponent(no)}`;
    const status = await sendHarmlessly({ method: 'GET', path, authorization: 'Bearer seed-1' });
    assert.ok(status === 200 || status === 404, `GET ${path} -> ${status}`);
  });
});

test('arbitrary session values in Redis: 401 unless a user id 1..2147483647, < 500, no write unless 201', async () => {
  const value = fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 50 }),
    fc.integer().map(String), fc.double().map(String), fc.bigInt().map(String),
    fc.constantFrom('1', '2147483647', '2147483648', '01', '1 '));
  const stored = fc.oneof({ weight: 5, arbitrary: value.map((v) => ({ type: 'string' as const, value: v })) },
    fc.constantFrom('hash', 'list', 'set', 'zset').map((type) => ({ type, value: '1' })));
  await run(fc.tuple(fc.constantFrom(...VARIANT_NAMES), stored), async ([variant, { type, value }]) => {
    const key = 'session:prop';
    await env.redis.del(key);
    if (type === 'string') await env.redis.set(key, value);
    else if (type === 'hash') await env.redis.hset(key, 'userId', value);
    else if (type === 'list') await env.redis.rpush(key, value);
    else if (type === 'set') await env.redis.sadd(key, value);
    else await env.redis.zadd(key, 1, value);
    const status = await sendHarmlessly({ method: 'POST', path: variantPath(variant), authorization: 'Bearer prop',
      body: validBody() });
    // Hand-written rule: plain decimal, no leading zero, 1..2^31-1.
    const isUserId = type === 'string' && /^[1-9][0-9]*$/.test(value) && BigInt(value) <= BigInt(INT4_MAX);
    assert.equal(status === 401, !isUserId, `session ${type} ${JSON.stringify(value)} -> ${status}`);
  });
});
