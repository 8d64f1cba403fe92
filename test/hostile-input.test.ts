import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { serve } from '@hono/node-server';
import Hashids from 'hashids';
import { createOrderNumbers, dateStamp } from '../src/orders/order-number.ts';
import { money } from '../src/orders/request.ts';
import { DEFAULT_SEED } from '../src/seed.ts';
import { createTestEnv, dbState, json, productRow, type TestEnv } from './helpers.ts';

// Input no client should be able to turn into a 5xx or a write: order numbers that decode to
// huge ids, bodies too large to read, session values that are not user ids, odd money strings.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

const asUser1 = { headers: { Authorization: 'Bearer seed-1' } };

describe('order numbers', () => {
  const today = dateStamp(new Date());
  const hashids = () => new Hashids(env.config.hashidsSalt, 6);

  for (const [name, value] of [['2^53', 2n ** 53n], ['2^63', 2n ** 63n], ['10^21', 10n ** 21n]] as const) {
    test(`the hashid of ${name} -> 404 NOT_FOUND, never sent to PostgreSQL`, async () => {
      const res = await env.app.request(`/orders/${today}${hashids().encode(value)}`, asUser1);
      const body = await json(res);
      assert.equal(res.status, 404, JSON.stringify(body));
      assert.equal(body.error.code, 'NOT_FOUND');
    });
  }

  test('a 16 KB order number -> 404 NOT_FOUND, refused without decoding it', async () => {
    // No separator or guard character: hashids decodes it as one 16 K-digit number (the slow case).
    const huge = today + 'a'.repeat(16 * 1024);
    const res = await env.app.request(`/orders/${huge}`, asUser1);
    assert.equal(res.status, 404);
    assert.equal((await json(res)).error.code, 'NOT_FOUND');
    // Decoding it took hundreds of ms of event loop; a refusal by length takes microseconds.
    const t0 = performance.now();
    assert.equal(createOrderNumbers(env.config.hashidsSalt).parse(huge), null);
    const ms = performance.now() - t0;
    assert.ok(ms < 20, `parse took ${ms.toFixed(1)} ms`);
  });

  test('the largest id we accept still parses: 2^53 - 1', () => {
    const numbers = createOrderNumbers(env.config.hashidsSalt);
    const orderNo = numbers.format(Number.MAX_SAFE_INTEGER, new Date('2026-11-24T12:00:00Z'));
    assert.deepEqual(numbers.parse(orderNo), { id: 9_007_199_254_740_991, date: '20261124' });
  });
});

describe('413 on a kept-alive connection', () => {
  // Content-Length is refused before reading; a chunked body once 16 KB of it have been read.
  for (const framing of ['content-length', 'chunked'] as const) {
    test(`a 3 MB body (${framing}) -> 413 with Connection: close; the client's next request succeeds`, async () => {
      const server = serve({ fetch: env.app.fetch, port: 0, hostname: '127.0.0.1' });
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const send = (method: string, path: string, body?: Buffer) =>
        new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method, path, agent,
            headers: { Authorization: 'Bearer seed-1', 'Content-Type': 'application/json' } }, (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (d: string) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
          });
          req.on('error', reject);
          if (body && framing === 'chunked') {
            for (let at = 0; at < body.length; at += 64 * 1024) req.write(body.subarray(at, at + 64 * 1024));
            req.end();
          } else {
            req.end(body);
          }
        });
      try {
        const tooLarge = await send('POST', '/orders/row-lock', Buffer.alloc(3 * 1024 * 1024, 'x'));
        assert.equal(tooLarge.status, 413, tooLarge.body);
        assert.equal(JSON.parse(tooLarge.body).error.code, 'PAYLOAD_TOO_LARGE');
        assert.equal(tooLarge.headers.connection, 'close');
        const next = await send('GET', '/products');
        assert.equal(next.status, 200, next.body);
      } finally {
        agent.destroy();
        server.close();
        (server as http.Server).closeAllConnections();
      }
    });
  }
});

describe('bodies through the Node adapter, as clients send them', () => {
  // The body limit is checked on the declared length, and a body that is not marked as JSON is
  // marked in place: both on the adapter's own request, which app.request() never exercises.
  const cases = [
    { name: 'Content-Length, no Content-Type', chunked: false, contentType: undefined },
    { name: 'Content-Length, text/plain', chunked: false, contentType: 'text/plain' },
    { name: 'chunked, no Content-Type', chunked: true, contentType: undefined },
    { name: 'chunked, application/json', chunked: true, contentType: 'application/json' },
  ];
  for (const c of cases) {
    test(`a valid order (${c.name}) is placed: 201 and its row, units taken`, async () => {
      const server = serve({ fetch: env.app.fetch, port: 0, hostname: '127.0.0.1' });
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      try {
        const body = Buffer.from(JSON.stringify(env.body([{ productId: 2, count: 3 }])));
        const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/orders/one-round-trip',
            headers: { Authorization: 'Bearer seed-1', ...(c.contentType ? { 'Content-Type': c.contentType } : {}),
              ...(c.chunked ? {} : { 'Content-Length': body.length }) } }, (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (d: string) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode!, body: text }));
          });
          req.on('error', reject);
          if (c.chunked) {
            req.write(body.subarray(0, 10));
            req.end(body.subarray(10));
          } else {
            req.end(body);
          }
        });
        assert.equal(answer.status, 201, answer.body);
        const [row] = await env.sql<{ userId: number; items: number; units: number }[]>`
          select o.user_id, count(*)::int as items, sum(i.count)::int as units
          from orders o join order_item i on i.order_id = o.id group by o.user_id`;
        assert.deepEqual({ ...row }, { userId: 1, items: 1, units: 3 });
        assert.deepEqual({ ...(await productRow(env.sql, 2)) }, { stock: DEFAULT_SEED.stock - 3, sales: 3 });
      } finally {
        server.close();
        (server as http.Server).closeAllConnections();
      }
    });
  }
});

describe('session values', () => {
  const valid = () => env.body([{ productId: 1, count: 1 }]);
  const sendAs = (sessionId: string) => env.app.request('/orders/row-lock', {
    method: 'POST', headers: { Authorization: `Bearer ${sessionId}` }, body: JSON.stringify(valid()),
  });

  const notUserIds = ['abc', '1.5', '', '-1', '0', '0x2', '1e3', ' 7', '7 ', '07', '+7', '2147483648', '99999999999'];
  notUserIds.forEach((value, n) => {
    test(`session value ${JSON.stringify(value)} -> 401 UNAUTHORIZED, nothing written`, async () => {
      await env.redis.set(`session:bad-${n}`, value);
      const before = await dbState(env.sql);
      const res = await sendAs(`bad-${n}`);
      const body = await json(res);
      assert.equal(res.status, 401, JSON.stringify(body));
      assert.equal(body.error.code, 'UNAUTHORIZED');
      assert.deepEqual(await dbState(env.sql), before);
    });
  });

  test('a session key holding a hash (WRONGTYPE) -> 401 UNAUTHORIZED, nothing written', async () => {
    await env.redis.hset('session:bad-hash', 'userId', '1');
    const before = await dbState(env.sql);
    const res = await sendAs('bad-hash');
    const body = await json(res);
    assert.equal(res.status, 401, JSON.stringify(body));
    assert.equal(body.error.code, 'UNAUTHORIZED');
    assert.deepEqual(await dbState(env.sql), before);
  });

  test('the largest user id, 2147483647, is a valid session', async () => {
    await env.redis.set('session:max-user', '2147483647');
    const res = await sendAs('max-user');
    assert.equal(res.status, 201, JSON.stringify(await json(res)));
  });
});

describe('money strings', () => {
  for (const price of ['09.99', '009.99', '00.99', '9.', '.99', '9.999', '-9.99', '+9.99', '1e1', ' 9.99', '9,99', '123456789.00']) {
    test(`price ${JSON.stringify(price)} -> 422 VALIDATION_FAILED, nothing written`, async () => {
      const body = env.body([{ productId: 1, count: 1 }]);
      const before = await dbState(env.sql);
      const res = await env.order('row-lock', 1, { ...body, items: [{ ...body.items[0], price }] });
      const answer = await json(res);
      assert.equal(res.status, 422, JSON.stringify(answer));
      assert.equal(answer.error.code, 'VALIDATION_FAILED');
      assert.deepEqual(await dbState(env.sql), before);
    });
  }

  test('canonical decimals are accepted', () => {
    for (const value of ['0', '0.5', '0.05', '9.99', '10', '10.00', '12345678.99']) {
      assert.ok(money.safeParse(value).success, value);
    }
  });
});
