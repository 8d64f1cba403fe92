import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { VARIANT_NAMES } from '../src/orders/variants/index.ts';
import { createTestEnv, json, pointsOf, productRow, type TestEnv } from './helpers.ts';

// GET /openapi.json: a valid OpenAPI 3.1 document that states every route, the bearer auth and
// every error code, and whose example order the service accepts.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

async function apiDocument(): Promise<any> {
  const res = await env.app.request('/openapi.json');
  assert.equal(res.status, 200);
  return json(res);
}

/** The error codes a route's description lists, by status. */
function documentedCodes(operation: any): Record<string, string[]> {
  return Object.fromEntries(Object.entries(operation.responses as Record<string, any>)
    .filter(([status]) => Number(status) >= 400)
    .map(([status, response]) => [status, [...response.content['application/json'].schema.properties.error.properties.code.enum].sort()]));
}

describe('GET /openapi.json', () => {
  test('validates as OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(await apiDocument()));
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    assert.equal(validator.version, '3.1');
  });

  test('lists every route, each order route behind the bearer scheme', async () => {
    const doc = await apiDocument();
    const routes = Object.entries(doc.paths as Record<string, object>)
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`)).sort();
    assert.deepEqual(routes, [
      'GET /health', 'GET /orders/{orderNo}', 'GET /products',
      'POST /orders/{orderNo}/cancel', 'POST /orders/{orderNo}/pay', 'POST /orders/{variant}',
    ]);
    assert.deepEqual(doc.components.securitySchemes, {
      bearer: { type: 'http', scheme: 'bearer', description: 'A session id: `seed-N` for seeded user N' },
    });
    for (const route of routes.filter((r) => r.includes('/orders'))) {
      const [method, path] = route.split(' ') as [string, string];
      assert.deepEqual(doc.paths[path][method.toLowerCase()].security, [{ bearer: [] }], route);
    }
    assert.equal(doc.paths['/products'].get.security, undefined);
    assert.equal(doc.paths['/health'].get.security, undefined);
  });

  test('POST /orders/{variant}: every variant, the Idempotency-Key header, every error code by status', async () => {
    const placeOrder = (await apiDocument()).paths['/orders/{variant}'].post;
    const [variant, key] = placeOrder.parameters;
    assert.deepEqual({ name: variant.name, in: variant.in, enum: variant.schema.enum },
      { name: 'variant', in: 'path', enum: ['no-tx', 'serializable', 'serializable-retry', 'row-lock', 'redis', 'one-round-trip', 'batched', 'queued'] });
    // queued: 202 with the order number and a Location to ask.
    const accepted = placeOrder.responses['202'];
    assert.deepEqual(Object.keys(accepted.headers), ['Location']);
    assert.deepEqual((await apiDocument()).components.schemas.QueuedOrder.properties,
      { orderNo: { type: 'string', example: '20261124Ao6ZoJ' }, status: { type: 'string', enum: ['queued'] } });
    assert.deepEqual({ name: key.name, in: key.in, required: key.required }, { name: 'Idempotency-Key', in: 'header', required: false });
    assert.deepEqual(documentedCodes(placeOrder), {
      400: ['MALFORMED_JSON'],
      401: ['UNAUTHORIZED'],
      404: ['UNKNOWN_VARIANT'],
      409: ['CONFLICT', 'COUPON_INVALID', 'IDEMPOTENCY_KEY_IN_USE', 'OFF_SHELF', 'OUT_OF_STOCK', 'POINTS_INSUFFICIENT',
        'PRICE_CHANGED', 'SERIALIZATION_FAILURE', 'SNAPSHOT_CHANGED', 'TOTAL_MISMATCH'],
      413: ['PAYLOAD_TOO_LARGE'],
      422: ['IDEMPOTENCY_KEY_REUSED', 'UNKNOWN_PRODUCT', 'VALIDATION_FAILED'],
      429: ['RATE_LIMITED'],
      500: ['INTERNAL'],
      503: ['OUTCOME_UNKNOWN', 'SERVICE_BUSY', 'SERVICE_UNAVAILABLE', 'TIMEOUT'],
    });
  });

  test('the other routes\' error codes by status', async () => {
    const { paths } = await apiDocument();
    const unavailable = { 500: ['INTERNAL'], 503: ['SERVICE_BUSY', 'SERVICE_UNAVAILABLE', 'TIMEOUT'] };
    assert.deepEqual(documentedCodes(paths['/orders/{orderNo}'].get), { 401: ['UNAUTHORIZED'], 404: ['NOT_FOUND'], ...unavailable });
    for (const action of ['pay', 'cancel']) {
      assert.deepEqual(documentedCodes(paths[`/orders/{orderNo}/${action}`].post),
        { 401: ['UNAUTHORIZED'], 404: ['NOT_FOUND'], 409: ['ORDER_NOT_PENDING', 'SERIALIZATION_FAILURE'], ...unavailable }, action);
    }
    assert.deepEqual(documentedCodes(paths['/products'].get), unavailable);
    // /health answers 503 with its own body, not an error.
    assert.deepEqual(Object.keys(paths['/health'].get.responses), ['200', '503']);
  });

  test('refusals the service gives are the documented ones', async () => {
    const placeOrder = documentedCodes((await apiDocument()).paths['/orders/{variant}'].post);
    const example = env.body([{ productId: 1, count: 1 }]);
    const refusals = [
      await env.order('row-lock', 1, '{"items": ['),
      await env.order('row-lock', 1, { ...example, items: [] }),
      await env.order('row-lock', 1, { ...example, totalAmount: '1.00' }),
      await env.order('optimistic', 1, example),
      await env.order('row-lock', 1, { ...example, padding: 'x'.repeat(64 * 1024) }),
      await env.app.request('/orders/row-lock', { method: 'POST', body: JSON.stringify(example) }),
    ];
    const answers = await Promise.all(refusals.map(async (res): Promise<[number, string]> => [res.status, (await json(res)).error.code]));
    assert.deepEqual(answers, [
      [400, 'MALFORMED_JSON'], [422, 'VALIDATION_FAILED'], [409, 'TOTAL_MISMATCH'], [404, 'UNKNOWN_VARIANT'],
      [413, 'PAYLOAD_TOO_LARGE'], [401, 'UNAUTHORIZED'],
    ]);
    for (const [status, code] of answers) assert.ok(placeOrder[status]!.includes(code), `${status} ${code}`);
  });

  test('the example order, sent as is through every variant, is placed', async () => {
    const example = (await apiDocument()).components.schemas.OrderRequest.example;
    for (const variant of VARIANT_NAMES) {
      const res = await env.order(variant, 1, example);
      const body = await json(res);
      assert.equal(res.status, 201, `${variant}: ${JSON.stringify(body)}`);
      assert.deepEqual({ ...body, orderNo: undefined }, { orderNo: undefined, totalAmount: '38.97', pointsUsed: 100, status: 'pending_payment' });
    }
    // queued accepts it too (202): written by a consumer later, not here.
    const queued = await env.order('queued', 1, example);
    assert.equal(queued.status, 202, JSON.stringify(await queued.clone().json()));
    // 2 x 9.99 + 1 x 19.99 = 39.97, less 1.00 paid with 100 points: 38.97, seven times.
    const orders = await env.sql`select user_id, total_amount, points_used, status from orders order by id`;
    assert.deepEqual(orders.map((o) => ({ ...o })), Array(7).fill({ userId: 1, totalAmount: '38.97', pointsUsed: 100, status: 'pending_payment' }));
    const items = await env.sql`select product_id, snapshot_id, sum(count)::int as count, min(unit_price) as unit_price
      from order_item group by product_id, snapshot_id order by product_id`;
    assert.deepEqual(items.map((i) => ({ ...i })), [
      { productId: 1, snapshotId: 1, count: 14, unitPrice: '9.99' },
      { productId: 2, snapshotId: 2, count: 7, unitPrice: '19.99' },
    ]);
    assert.deepEqual(await productRow(env.sql, 1), { stock: 986, sales: 14 });
    assert.deepEqual(await productRow(env.sql, 2), { stock: 993, sales: 7 });
    assert.equal(await pointsOf(env.sql, 1), 10_000 - 700);
  });
});

describe('GET /docs', () => {
  test('serves the reference page, which reads /openapi.json', async () => {
    const res = await env.app.request('/docs');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('Content-Type')!, /^text\/html/);
    assert.match(await res.text(), /"url": "\/openapi.json"/);
  });
});
