import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { cents, formatCents } from '../bench/bodies.ts';
import { createApp } from '../src/app.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { closeAll, connectAll, createRedis, createSql } from '../src/connections.ts';
import { createDatabase, dropDatabase, recreateSchema, withDatabase } from '../src/database.ts';
import { DEFAULT_SEED, productPrice, seed, sessionIdOf, type SeedOptions } from '../src/seed.ts';
import { clearRedisNamespace } from '../src/redis-namespace.ts';

// Each test file gets its own database and Redis key prefix on the real servers, and drops them after.

export type TestEnv = Awaited<ReturnType<typeof createTestEnv>>;
type Sql = TestEnv['sql'];

export async function createTestEnv(overrides: Partial<Config> = {}) {
  const base = loadConfig();
  const name = `orders_test_${randomBytes(5).toString('hex')}`;
  await createDatabase(base.databaseUrl, name);
  const config: Config = {
    ...base,
    databaseUrl: withDatabase(base.databaseUrl, name),
    redisKeyPrefix: `${name}:`,
    // Enough attempts that 100 orders on the same two rows all get through; short waits keep tests fast.
    retry: { maxAttempts: 100, baseDelayMs: 2, maxDelayMs: 50 },
    // Tests change sessions in Redis and expect the next request to see it; the cache has its own test.
    sessionCacheMs: 0,
    ...overrides,
  };
  let seedOptions: SeedOptions = DEFAULT_SEED;

  const connect = async () => {
    const sql = createSql(config);
    const redis = createRedis(config);
    await connectAll(sql, redis, config);
    // Without a logger of its own the app prints only 500s (bugs), with their stack: next to the
    // failing assertion.
    return { sql, redis, app: createApp({ sql, redis, config }) };
  };
  const disconnect = (c: Awaited<ReturnType<typeof connect>>) => closeAll(c.sql, c.redis);

  const env = {
    ...(await connect()),
    config,
    /**
     * Fresh schema, seed data and Redis keys for one test. The connections are made anew too:
     * plans that postgres.js prepared against the dropped tables and types are no longer valid.
     */
    async reset(options: Partial<SeedOptions> = {}) {
      seedOptions = { ...DEFAULT_SEED, ...options };
      await clearRedisNamespace(config.redisUrl, config.redisKeyPrefix);
      await recreateSchema(env.sql);
      await disconnect(env);
      Object.assign(env, await connect());
      return seed(env.sql, env.redis, seedOptions);
    },
    /** Sends POST /orders/:variant as a seeded user. */
    async order(variant: string, userId: number, body: unknown): Promise<Response> {
      return env.app.request(`/orders/${variant}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${sessionIdOf(userId)}`, 'Content-Type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    },
    /**
     * An order body for the seeded catalog. Its total is worked out here in whole cents (the
     * lines, less the points) — never by the pricing code under test; with a coupon the caller
     * states the total, worked out by hand.
     */
    body(lines: { productId: number; count: number }[], extra: { couponId?: number; points?: number; total?: string } = {}) {
      const items = lines.map((l) => ({ productId: l.productId, snapshotId: l.productId, count: l.count, price: productPrice(seedOptions, l.productId) }));
      if (extra.couponId !== undefined && extra.total === undefined) throw new Error('an order with a coupon needs its total worked out by hand');
      const subtotal = items.reduce((sum, i) => sum + cents(i.price) * i.count, 0);
      const totalAmount = extra.total ?? formatCents(subtotal - Math.min(extra.points ?? 0, subtotal));
      return { items, couponId: extra.couponId, points: extra.points, totalAmount };
    },
    async close() {
      await disconnect(env);
      await clearRedisNamespace(config.redisUrl, config.redisKeyPrefix);
      await dropDatabase(base.databaseUrl, name);
    },
  };
  return env;
}

/**
 * Database defaults an operator could set that break what the service's sessions rely on, all at
 * once: value parsing (DateStyle, IntervalStyle, float output), name resolution, isolation,
 * read-only transactions, idle connections cut, no lock or statement bound; and a time zone whose
 * date is not UTC's right now (UTC-12 before noon UTC, UTC+14 after).
 */
export function hostileDefaults(): Record<string, string> {
  return {
    datestyle: 'German, DMY',
    intervalstyle: 'sql_standard',
    extra_float_digits: '-15',
    search_path: 'nowhere',
    default_transaction_isolation: 'serializable',
    default_transaction_read_only: 'on',
    idle_session_timeout: '300ms',
    statement_timeout: '0',
    lock_timeout: '0',
    timezone: new Date().getUTCHours() < 12 ? 'Etc/GMT+12' : 'Etc/GMT-14',
  };
}

/** `ALTER DATABASE ... SET` each setting as the database's default, from the server's `postgres` database. */
export async function setDatabaseDefaults(databaseUrl: string, settings: Record<string, string>) {
  const name = new URL(databaseUrl).pathname.slice(1);
  const admin = postgres(withDatabase(databaseUrl, 'postgres'), { max: 1, onnotice: () => {} });
  try {
    for (const [setting, value] of Object.entries(settings)) {
      await admin.unsafe(`alter database "${name}" set ${setting} = '${value}'`);
    }
  } finally {
    await admin.end();
  }
}

/** Everything an order can write, summed: equal before and after means nothing was written. */
export async function dbState(sql: Sql) {
  const [row] = await sql`
    select (select coalesce(sum(stock), 0)::int from product) as stock,
           (select coalesce(sum(sales), 0)::int from product) as sales,
           (select count(*)::int from orders) as orders,
           (select count(*)::int from order_item) as items,
           (select count(*)::int from user_coupon where status = 'used') as used_coupons,
           (select coalesce(sum(balance), 0)::int from points) as points`;
  return row as { stock: number; sales: number; orders: number; items: number; usedCoupons: number; points: number };
}

export async function productRow(sql: Sql, id: number) {
  const [row] = await sql<{ stock: number; sales: number }[]>`select stock, sales from product where id = ${id}`;
  return row!;
}

export async function pointsOf(sql: Sql, userId: number) {
  const [row] = await sql<{ balance: number }[]>`select balance from points where user_id = ${userId}`;
  return row!.balance;
}

export async function json(res: Response): Promise<any> {
  return res.json();
}

/**
 * Holds product `id`'s row lock in a transaction of its own (as a stuck session would) until the
 * returned function is called; any order that reaches the row waits behind it.
 */
export async function holdRow(sql: Sql, id: number): Promise<() => Promise<void>> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => { release = resolve; });
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => { locked = resolve; });
  const holder = sql.begin(async (tx) => {
    await tx`select 1 from product where id = ${id} for update`;
    locked();
    await released;
  });
  await isLocked;
  return async () => { release(); await holder; };
}

/** Resolves once a session of this test's database waits for a lock (an order queued behind a held row). */
export async function untilSomeoneWaitsForALock(sql: Sql) {
  for (let tries = 0; ; tries++) {
    const waiting = await sql`
      select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`;
    if (waiting.length) return;
    if (tries >= 400) throw new Error('nobody waited for a lock');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * After a storm of orders: for every product, units in stock plus units on order lines equal the
 * initial stock, its sales counter equals its order lines, and there is one order per success.
 */
export async function assertUnitsConserved(sql: Sql, initialStock: number, successes: number) {
  const rows = await sql<{ id: number; stock: number; sales: number; sold: number }[]>`
    select p.id, p.stock, p.sales, coalesce(sum(i.count), 0)::int as sold
    from product p left join order_item i on i.product_id = p.id group by p.id order by p.id`;
  for (const r of rows) {
    assert.equal(r.stock + r.sold, initialStock, `product ${r.id}: no unit lost or oversold`);
    assert.equal(r.sales, r.sold, `product ${r.id}: sales counter matches order lines`);
  }
  const [{ orders }] = await sql`select count(*)::int as orders from orders` as unknown as [{ orders: number }];
  assert.equal(orders, successes);
}

/** The URL in a starting service's "listening on" line, once `output` has it; rejects after 30 s. */
export function listeningUrl(output: () => string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 30 s:\n${output()}`)), 30_000);
    const poll = setInterval(() => {
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(output());
      if (match) { clearInterval(poll); clearTimeout(timer); resolve(match[1]!); }
    }, 50);
  });
}
