import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createApp } from '../src/app.ts';
import type { LogLevel } from '../src/config.ts';
import type { Sql } from '../src/connections.ts';
import { createLogger } from '../src/logger.ts';
import { sessionIdOf } from '../src/seed.ts';
import { createTestEnv, json, type TestEnv } from './helpers.ts';

// GET /metrics read back after orders whose outcomes are known, the pool gauges while requests
// hold and wait for connections, request ids, and the log lines a logger writes into a test stream.

let env: TestEnv;
// Lock waits in these tests end when the test releases the row, not by DB_LOCK_TIMEOUT_MS.
before(async () => { env = await createTestEnv({ db: { lockTimeoutMs: 60_000, statementTimeoutMs: 60_000, idleInTransactionTimeoutMs: 60_000 } }); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset({ stock: 5 }); });

// Seeded prices: product 1 costs 9.99, product 2 19.99 (DEFAULT_SEED: 9.99 plus 10.00 per product).
const ONE_OF_PRODUCT_1 = { items: [{ productId: 1, snapshotId: 1, count: 1, price: '9.99' }], totalAmount: '9.99' };
const ONE_OF_PRODUCT_2 = { items: [{ productId: 2, snapshotId: 2, count: 1, price: '19.99' }], totalAmount: '19.99' };
// 6 x 9.99 = 59.94: the right total, one unit more than the 5 in stock.
const SIX_OF_PRODUCT_1 = { items: [{ productId: 1, snapshotId: 1, count: 6, price: '9.99' }], totalAmount: '59.94' };

interface Built {
  app: ReturnType<typeof createApp>;
  /** Every line the app's logger wrote, parsed. */
  lines: Record<string, any>[];
  order(variant: string, userId: number, body: unknown, headers?: Record<string, string>): Promise<Response>;
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
}

function build(o: { level?: LogLevel; poolSize?: number; metrics?: boolean; sql?: Sql } = {}): Built {
  const lines: Record<string, any>[] = [];
  const logger = createLogger({ level: o.level ?? 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line)); } });
  const config = { ...env.config, poolSize: o.poolSize ?? env.config.poolSize, metrics: o.metrics ?? true };
  const app = createApp({ sql: o.sql ?? env.sql, redis: env.redis, config, logger });
  return {
    app,
    lines,
    order: async (variant, userId, body, headers = {}) => app.request(`/orders/${variant}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${sessionIdOf(userId)}`, 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    }),
    async metric(name, labels = {}) {
      const res = await app.request('/metrics');
      assert.equal(res.status, 200);
      return sampleValue(await res.text(), name, labels);
    },
  };
}

/** The value of the sample `name` whose labels are exactly `labels`, from Prometheus text. */
function sampleValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (JSON.stringify(Object.entries(found).sort()) === JSON.stringify(Object.entries(labels).sort())) return Number(match[3]);
  }
  return undefined;
}

/** Polls `read` until it returns `expected` (a state reached by requests in flight), or fails. */
async function until<T>(what: string, read: () => Promise<T>, expected: T) {
  let last: T | undefined;
  for (let i = 0; i < 250; i++) {
    last = await read();
    if (last === expected) return;
    await sleep(20);
  }
  assert.fail(`${what}: still ${String(last)}, expected ${String(expected)}`);
}

describe('metrics', () => {
  test('orders by variant and outcome, the Redis filter\'s refusals, latency by route', async () => {
    const b = build();
    assert.equal((await b.order('row-lock', 1, ONE_OF_PRODUCT_1)).status, 201);
    const refused = await b.order('row-lock', 2, SIX_OF_PRODUCT_1);
    assert.equal(refused.status, 409);
    assert.equal((await json(refused)).error.code, 'OUT_OF_STOCK');
    // The mirror still says 5 (row-lock does not touch it): 6 units are refused in Redis.
    const filtered = await b.order('redis', 3, SIX_OF_PRODUCT_1);
    assert.equal((await json(filtered)).error.code, 'OUT_OF_STOCK');
    assert.equal((await b.order('no-such-variant', 4, ONE_OF_PRODUCT_1)).status, 404);
    assert.equal((await b.app.request('/products')).status, 200);

    assert.equal(await b.metric('orders_total', { variant: 'row-lock', code: '201' }), 1);
    assert.equal(await b.metric('orders_total', { variant: 'row-lock', code: 'OUT_OF_STOCK' }), 1);
    assert.equal(await b.metric('orders_total', { variant: 'redis', code: 'OUT_OF_STOCK' }), 1);
    // A made-up variant is no label value.
    assert.equal(await b.metric('orders_total', { variant: 'no-such-variant', code: 'UNKNOWN_VARIANT' }), undefined);
    assert.equal(await b.metric('orders_redis_refused_total'), 1);
    assert.equal(await b.metric('orders_serializable_retries_total'), 0);
    // A body over the limit is answered before any handler throws: still counted under its code.
    const tooLarge = await b.order('row-lock', 1, { ...ONE_OF_PRODUCT_1, padding: 'x'.repeat(env.config.bodyLimitBytes) });
    assert.equal(tooLarge.status, 413);
    assert.equal(await b.metric('orders_total', { variant: 'row-lock', code: 'PAYLOAD_TOO_LARGE' }), 1);

    const latency = (labels: Record<string, string>) => b.metric('http_request_duration_seconds_count', labels);
    assert.equal(await latency({ method: 'POST', route: '/orders/:variant', variant: 'row-lock', status: '201' }), 1);
    assert.equal(await latency({ method: 'POST', route: '/orders/:variant', variant: 'row-lock', status: '409' }), 1);
    assert.equal(await latency({ method: 'POST', route: '/orders/:variant', variant: 'redis', status: '409' }), 1);
    assert.equal(await latency({ method: 'POST', route: '/orders/:variant', variant: '', status: '404' }), 1);
    assert.equal(await latency({ method: 'GET', route: '/products', variant: '', status: '200' }), 1);
    // Every finished request lands in the +Inf bucket.
    assert.equal(await b.metric('http_request_duration_seconds_bucket',
      { le: '+Inf', method: 'GET', route: '/products', variant: '', status: '200' }), 1);

    const [{ orders }] = await env.sql`select count(*)::int as orders from orders` as unknown as [{ orders: number }];
    assert.equal(orders, 1, 'one order written, by the 201');
  });

  test('a serializable conflict is retried and counted; the pool gauges show busy and waiting requests', async () => {
    // One pool connection: a second order has to wait for the first.
    const b = build({ poolSize: 1 });
    assert.equal(await b.metric('db_pool_connections_busy'), 0);
    assert.equal(await b.metric('db_pool_requests_waiting'), 0);

    // Another session changes product 1 and keeps its transaction open. The SERIALIZABLE order
    // locks product 1 and waits; when that change commits, the order's snapshot is stale:
    // 40001, and serializable-retry runs it again, once, successfully.
    let release!: () => void;
    const released = new Promise<void>((resolve) => { release = resolve; });
    let changed!: () => void;
    const isChanged = new Promise<void>((resolve) => { changed = resolve; });
    const holder = env.sql.begin(async (tx) => {
      await tx`update product set name = 'Product 1 renamed' where id = 1`;
      changed();
      await released;
    });
    await isChanged;
    const first = b.order('serializable-retry', 1, ONE_OF_PRODUCT_1);
    await until('orders waiting on a row lock', async () => {
      const [row] = await env.sql`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`;
      return row!.n as number;
    }, 1);
    assert.equal(await b.metric('db_pool_connections_busy'), 1);
    const second = b.order('row-lock', 2, ONE_OF_PRODUCT_2);
    await until('requests waiting for a connection', () => b.metric('db_pool_requests_waiting'), 1);
    assert.equal(await b.metric('db_pool_connections_busy'), 1);

    release();
    await holder;
    const [firstRes, secondRes] = await Promise.all([first, second]);
    assert.equal(firstRes.status, 201, JSON.stringify(await firstRes.clone().json()));
    assert.equal(secondRes.status, 201);

    assert.equal(await b.metric('orders_serializable_retries_total'), 1);
    assert.equal(await b.metric('orders_total', { variant: 'serializable-retry', code: '201' }), 1);
    assert.equal(await b.metric('orders_total', { variant: 'row-lock', code: '201' }), 1);
    assert.equal(await b.metric('db_pool_connections_busy'), 0);
    assert.equal(await b.metric('db_pool_requests_waiting'), 0);
    const [row] = await env.sql`select stock from product where id = 1`;
    assert.equal(row!.stock, 4, 'the retried order took its unit once');
  });

  test('METRICS=off: no /metrics, orders still served', async () => {
    const b = build({ metrics: false });
    assert.equal((await b.order('row-lock', 1, ONE_OF_PRODUCT_1)).status, 201);
    const res = await b.app.request('/metrics');
    assert.equal(res.status, 404);
    assert.equal((await json(res)).error.code, 'NOT_FOUND');
  });
});

describe('request ids and logs', () => {
  test('a sane X-Request-Id is echoed; a missing or odd one is replaced by a generated one', async () => {
    const b = build();
    const echoed = await b.app.request('/products', { headers: { 'X-Request-Id': 'checkout-42.a_b' } });
    assert.equal(echoed.headers.get('X-Request-Id'), 'checkout-42.a_b');
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const generated = [
      await b.app.request('/products'),
      await b.app.request('/products', { headers: { 'X-Request-Id': 'two words' } }),
      await b.app.request('/products', { headers: { 'X-Request-Id': 'x'.repeat(129) } }),
      await b.app.request('/products', { headers: { 'X-Request-Id': 'caf\u00e9' } }),
    ].map((res) => res.headers.get('X-Request-Id')!);
    for (const id of generated) assert.match(id, uuid);
    assert.equal(new Set(generated).size, 4, 'a new id each time');
    // Errors carry it too.
    const unauthorized = await b.app.request('/orders/row-lock', { method: 'POST', headers: { 'X-Request-Id': 'r-1' } });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.headers.get('X-Request-Id'), 'r-1');
  });

  test('at debug, one line per request with its id, variant, status, code and duration', async () => {
    const b = build({ level: 'debug' });
    await b.order('row-lock', 1, ONE_OF_PRODUCT_1, { 'X-Request-Id': 'order-ok' });
    await b.order('row-lock', 2, SIX_OF_PRODUCT_1, { 'X-Request-Id': 'order-refused' });
    assert.equal(b.lines.length, 2);
    const [ok, refused] = b.lines;
    const { time, pid, hostname, durationMs, ...fields } = ok!;
    assert.deepEqual(fields, {
      level: 'debug', requestId: 'order-ok', method: 'POST', path: '/orders/row-lock', variant: 'row-lock', status: 201, msg: 'request',
    });
    assert.equal(typeof durationMs, 'number');
    assert.ok(!Number.isNaN(Date.parse(time)));
    assert.equal(pid, process.pid);
    assert.equal(typeof hostname, 'string');
    assert.deepEqual([refused!.requestId, refused!.level, refused!.status, refused!.code, refused!.variant],
      ['order-refused', 'debug', 409, 'OUT_OF_STOCK', 'row-lock']);
  });

  test('at info (the default), answered requests write nothing', async () => {
    const b = build({ level: 'info' });
    assert.equal((await b.order('row-lock', 1, ONE_OF_PRODUCT_1)).status, 201);
    assert.equal((await b.order('row-lock', 2, SIX_OF_PRODUCT_1)).status, 409);
    assert.equal((await b.app.request('/nowhere')).status, 404);
    assert.deepEqual(b.lines, []);
  });

  test('a 500 is logged at error with its stack and request id', async () => {
    // A driver whose every query fails in a way nothing maps: a bug as far as the app can tell.
    const brokenSql = (() => Promise.reject(new TypeError('driver exploded'))) as unknown as Sql;
    const b = build({ level: 'info', sql: brokenSql });
    const res = await b.app.request('/products', { headers: { 'X-Request-Id': 'broken-1' } });
    assert.equal(res.status, 500);
    assert.equal((await json(res)).error.code, 'INTERNAL');
    assert.equal(b.lines.length, 1);
    const [line] = b.lines;
    assert.deepEqual([line!.level, line!.requestId, line!.status, line!.code, line!.path], ['error', 'broken-1', 500, 'INTERNAL', '/products']);
    assert.equal(line!.err.type, 'TypeError');
    assert.equal(line!.err.message, 'driver exploded');
    assert.match(line!.err.stack, /^TypeError: driver exploded\n\s+at /);
  });
});

describe('the service with two workers', () => {
  test('/metrics sums every worker; every line it prints is JSON', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: env.config.databaseUrl, REDIS_URL: env.config.redisUrl,
        REDIS_KEY_PREFIX: env.config.redisKeyPrefix, PORT: '0', WEB_CONCURRENCY: '2', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (d) => { output += d; });
    child.stderr!.on('data', (d) => { output += d; });
    const exited = once(child, 'exit');
    try {
      let url: string | undefined;
      for (let i = 0; i < 600 && !url; i++) {
        const listening = [...output.matchAll(/listening on (http:\/\/[\d.]+:\d+)/g)];
        if (listening.length === 2) url = listening[0]![1];
        else await sleep(50);
      }
      assert.ok(url, `two workers listening:\n${output}`);
      // A connection each, so that the supervisor spreads them over both workers.
      for (let userId = 1; userId <= 4; userId++) {
        const res: Response = await fetch(`${url}/orders/row-lock`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${sessionIdOf(userId)}`, 'Content-Type': 'application/json', Connection: 'close' },
          body: JSON.stringify(ONE_OF_PRODUCT_1),
        });
        assert.equal(res.status, 201);
      }
      for (let scrape = 0; scrape < 2; scrape++) {
        const text = await (await fetch(`${url}/metrics`, { headers: { Connection: 'close' } })).text();
        assert.equal(sampleValue(text, 'orders_total', { variant: 'row-lock', code: '201' }), 4, text);
        // Process metrics come from every worker too (CPU seconds summed).
        assert.ok(sampleValue(text, 'process_cpu_seconds_total', {})! > 0);
      }
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const lines = output.trim().split('\n');
    assert.ok(lines.length >= 3, output);
    for (const line of lines) {
      const parsed = JSON.parse(line);
      assert.equal(typeof parsed.level, 'string', line);
    }
    assert.ok(lines.some((l) => /"msg":"SIGTERM: draining/.test(l)), output);
  });
});
