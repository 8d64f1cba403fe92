import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import postgres from 'postgres';
import { createApp } from '../src/app.ts';
import type { Config } from '../src/config.ts';
import { closeAll, connectAll, createRedis, createSql, type Sql } from '../src/connections.ts';
import { VARIANT_NAMES } from '../src/orders/variants/index.ts';
import { findPgBouncer, PGBOUNCER_INSTALL, startOwnPgBouncer, type OwnPgBouncer } from '../servers/own-pgbouncer.ts';
import {
  assertUnitsConserved, createTestEnv, holdRow, hostileDefaults, json, setDatabaseDefaults, type TestEnv,
} from './helpers.ts';
import { placeReadPayCancel, replayOnce } from './order-paths.ts';

// Through a real PgBouncer in transaction pooling, with nothing of the service's accommodated
// (startup parameters refused), four server connections shared by pools of 16, and a database
// whose defaults are hostile: the settings the service pins must hold in every transaction
// whatever server connection it lands on, none may leak to other clients, and a failure must
// never leave a server connection in a transaction.

const binary = findPgBouncer();
const skip = binary ? false : `no pgbouncer on this machine (${PGBOUNCER_INSTALL}): the pooler tests did not run`;
if (skip) console.log(`# ${skip}`);

const SERVER_CONNECTIONS = 4;
let env: TestEnv;
let pooler: OwnPgBouncer;
let pooledConfig: Config;
const opened: { sql: Sql; redis: ReturnType<typeof createRedis> }[] = [];

before(async () => {
  if (!binary) return;
  env = await createTestEnv();
  await setDatabaseDefaults(env.config.databaseUrl, hostileDefaults());
  pooler = await startOwnPgBouncer(binary, env.config.databaseUrl, { poolSize: SERVER_CONNECTIONS });
  pooledConfig = { ...env.config, databaseUrl: pooler.urlFor(env.config.databaseUrl), pooler: 'transaction' };
});
after(async () => {
  // Some instances failed before their Redis client connected: closeAll leaves those unconnected.
  await Promise.all(opened.map((o) => closeAll(o.sql, o.redis)));
  await pooler?.remove();
  await env?.close();
});
beforeEach(async () => { if (binary) await env.reset(); });

/** A service instance reaching PostgreSQL through the pooler, as `npm start` would make it. */
async function instance(config: Config = pooledConfig) {
  const sql = createSql(config);
  const redis = createRedis(config);
  opened.push({ sql, redis });
  await connectAll(sql, redis, config);
  return { sql, app: createApp({ sql, redis, config }) };
}

/** Server connections of this test's database still inside a transaction. */
async function serverConnectionsInTransaction(): Promise<string[]> {
  const rows = await env.sql<{ state: string }[]>`
    select state from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid() and state like 'idle in transaction%'`;
  return rows.map((r) => r.state);
}

describe('through a transaction-pooling PgBouncer', { skip }, () => {
  test('settings sent at connect are refused by the pooler, and the service says what to do', async () => {
    const config: Config = { ...pooledConfig, pooler: 'none' };
    const sql = createSql(config);
    const redis = createRedis(config);
    try {
      await assert.rejects(connectAll(sql, redis, config), (err: Error) => {
        assert.match(err.message, /refused the connection: unsupported startup parameter/);
        assert.match(err.message, /DATABASE_POOLER=transaction/);
        assert.doesNotMatch(err.message, /unreachable/);
        return true;
      });
    } finally {
      await sql.end({ timeout: 1 });
      redis.disconnect();
    }
  });

  for (const variant of VARIANT_NAMES) {
    test(`${variant}: place, read, pay, cancel, and an idempotent replay`, async () => {
      const { app } = await instance();
      await placeReadPayCancel(app, env, variant);
      await env.reset();
      await replayOnce(app, env, variant);
      assert.deepEqual(await serverConnectionsInTransaction(), []);
    });
  }

  test('ordinary traffic over every variant: no 500, nothing left in a transaction, no setting leaked', async () => {
    const { app } = await instance();
    const answers = await Promise.all(Array.from({ length: 280 }, async (_, i) => {
      const variant = VARIANT_NAMES[i % VARIANT_NAMES.length]!;
      return Promise.resolve(app.request(`/orders/${variant}`, {
        method: 'POST',
        headers: { Authorization: `Bearer seed-${1 + (i % 50)}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(env.body([{ productId: 1 + (i % 10), count: 1 }])),
      })).then(async (r) => `${variant} ${r.status}${r.status === 201 ? '' : ` ${(await json(r)).error.code}`}`);
    }));
    // `serializable` answers a conflict with 40001 by design; nothing else may fail.
    const expected = (a: string) => a.endsWith(' 201') || a === 'serializable 409 SERIALIZATION_FAILURE';
    assert.deepEqual(answers.filter((a) => !expected(a)), []);
    await assertUnitsConserved(env.sql, 1_000, answers.filter((a) => a.endsWith(' 201')).length);
    assert.deepEqual(await serverConnectionsInTransaction(), []);

    // Another client of the same pooler, which pins nothing, still gets the database's own
    // defaults on every server connection the service used: no session SET leaked to it. Its
    // transactions are held open together, so that each gets a server connection of its own.
    const plain = postgres(pooledConfig.databaseUrl, { max: SERVER_CONNECTIONS, prepare: false, fetch_types: false, onnotice: () => {} });
    try {
      const rows = await Promise.all(Array.from({ length: SERVER_CONNECTIONS }, () => plain.begin(async (tx) => {
        const [row] = await tx`
          select pg_backend_pid() as pid, current_setting('lock_timeout') as lock,
                 current_setting('default_transaction_isolation') as isolation,
                 current_setting('IntervalStyle') as interval, current_setting('search_path') as path`;
        await tx`select pg_sleep(0.3)`;
        return row!;
      })));
      assert.equal(new Set(rows.map((r) => r.pid)).size, SERVER_CONNECTIONS, 'every server connection of the pool seen');
      for (const { pid: _, ...settings } of rows) {
        assert.deepEqual(settings, { lock: '0', isolation: 'serializable', interval: 'sql_standard', path: 'nowhere' });
      }
    } finally {
      await plain.end();
    }
  });

  test('a statement outside a transaction runs as its own pinned transaction; failing, it leaves none open', async () => {
    const { sql } = await instance({ ...pooledConfig, db: { ...pooledConfig.db, lockTimeoutMs: 300 } });
    // Twice each: the second time postgres.js sends the unnamed statement with the parameter types
    // it was told the first time (one flight); the values must still arrive as they were sent.
    for (let i = 0; i < 2; i++) {
      const [row] = await sql<{ lock: string; isolation: string; path: string; ids: number[]; total: string; note: string | null }[]>`
        select current_setting('lock_timeout') as lock, current_setting('transaction_isolation') as isolation,
               current_setting('search_path') as path, ${[3, 1, 2]}::int[] as ids, ${'12.30'}::numeric + 1 as total,
               ${null}::text as note`;
      assert.deepEqual({ ...row }, { lock: '300ms', isolation: 'read committed', path: 'public', ids: [3, 1, 2], total: '13.30', note: null });
      await assert.rejects(sql`select 1 / ${0}::int`, /division by zero/);
    }
    assert.deepEqual(await serverConnectionsInTransaction(), []);
  });

  test('a statement failing mid-transaction leaves no server connection in a transaction', async () => {
    const { sql } = await instance();
    await assert.rejects(sql.begin(async (tx) => {
      await tx`select 1`;
      await tx`select 1 / 0`;
    }), /division by zero/);
    // An order refused halfway (its coupon used meanwhile is found under lock): rolled back.
    const { app } = await instance();
    const body = env.body([{ productId: 1, count: 1 }, { productId: 2, count: 1 }], { couponId: 1, total: '25.48' });
    const first = await app.request('/orders/row-lock', {
      method: 'POST', headers: { Authorization: 'Bearer seed-1' }, body: JSON.stringify(body),
    });
    assert.equal(first.status, 201, await first.clone().text());
    const again = await app.request('/orders/row-lock', {
      method: 'POST', headers: { Authorization: 'Bearer seed-1' }, body: JSON.stringify(body),
    });
    assert.equal((await json(again)).error.code, 'COUPON_INVALID');
    assert.deepEqual(await serverConnectionsInTransaction(), []);
    const [row] = await sql`select count(*)::int as orders from orders`;
    assert.equal(row!.orders, 1);
  });

  test('a row held by another session: 503 TIMEOUT within the configured bound (the database default has none)', async () => {
    // Lock waits end after 300 ms here, whatever the database's default (0: no limit).
    const { app } = await instance({ ...pooledConfig, db: { ...pooledConfig.db, lockTimeoutMs: 300 } });
    const release = await holdRow(env.sql, 1);
    try {
      for (const variant of ['row-lock', 'one-round-trip', 'batched']) {
        const started = performance.now();
        const res = await app.request(`/orders/${variant}`, {
          method: 'POST', headers: { Authorization: 'Bearer seed-1' }, body: JSON.stringify(env.body([{ productId: 1, count: 1 }])),
        });
        const elapsed = performance.now() - started;
        const answer = await json(res);
        assert.equal(res.status, 503, JSON.stringify(answer));
        assert.equal(answer.error.code, 'TIMEOUT');
        assert.ok(elapsed >= 250 && elapsed < 2_000, `${variant}: answered after ${Math.round(elapsed)} ms (lock_timeout 300 ms)`);
      }
    } finally {
      await release();
    }
    assert.deepEqual(await serverConnectionsInTransaction(), []);
    const [row] = await env.sql`select stock from product where id = 1`;
    assert.equal(row!.stock, 1_000, 'nothing written');
  });

  test('two service instances through one pooler, batching and one round trip on the same products', async () => {
    const [a, b] = [await instance(), await instance()];
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) =>
      Promise.resolve((i % 2 ? a : b).app.request(`/orders/${i % 4 < 2 ? 'batched' : 'one-round-trip'}`, {
        method: 'POST',
        headers: { Authorization: `Bearer seed-${1 + (i % 40)}` },
        body: JSON.stringify(env.body([{ productId: 1 + (i % 3), count: 1 }, { productId: 4, count: 1 }])),
      })).then((r) => r.status)));
    assert.deepEqual(answers.filter((s) => s !== 201), []);
    await assertUnitsConserved(env.sql, 1_000, 200);
    assert.deepEqual(await serverConnectionsInTransaction(), []);
  });
});

describe('a database that closes idle sessions sooner than the pooler (its own database and PgBouncer)', { skip }, () => {
  // PostgreSQL closes every server connection PgBouncer leaves idle for 20 ms (PgBouncer would
  // keep it 600 s), so server connections keep dying as they are handed out: without the retry
  // about one transaction in a hundred failed here with "server conn crashed?" (08P01) or
  // CONNECTION_CLOSED, and the service answered 503 or did not start.
  let own: TestEnv;
  let ownPooler: OwnPgBouncer;
  let sql: Sql;
  const retried: string[] = [];
  before(async () => {
    if (!binary) return;
    own = await createTestEnv();
    await own.sql`create table tick (id serial primary key, worker int not null)`;
    await setDatabaseDefaults(own.config.databaseUrl, { idle_session_timeout: '20ms' });
    ownPooler = await startOwnPgBouncer(binary, own.config.databaseUrl, { poolSize: SERVER_CONNECTIONS });
    sql = createSql({ ...own.config, databaseUrl: ownPooler.urlFor(own.config.databaseUrl), pooler: 'transaction' },
      { onStaleBegin: (err) => retried.push((err as { code: string }).code) });
  });
  after(async () => {
    await sql?.end({ timeout: 1 });
    await ownPooler?.remove();
    await own?.close();
  });

  test('a transaction whose BEGIN meets a closed server connection is begun again: none fails, each written once', async () => {
    const failures: string[] = [];
    let committed = 0;
    // Until the race was met a few times (usually within a second), for at most 20 s.
    const until = Date.now() + 20_000;
    await Promise.all(Array.from({ length: 8 }, async (_, worker) => {
      for (let i = 0; retried.length < 5 && Date.now() < until; i++) {
        // Idle for about as long as the server allows: the connection is handed out as it closes.
        await new Promise((resolve) => setTimeout(resolve, 15 + Math.random() * 10));
        try {
          // Both shapes the service uses: a transaction, and a statement on its own (which the
          // pooler mode turns into a transaction of its own).
          if (i % 2) await sql.begin((tx) => tx`insert into tick (worker) values (${worker})`);
          else await sql`insert into tick (worker) values (${worker})`;
          committed++;
        } catch (err) {
          failures.push(`${(err as { code?: string }).code} ${(err as Error).message}`);
        }
      }
    }));
    assert.deepEqual(failures, []);
    assert.ok(retried.length > 0, `the race was not met in 20 s (${committed} transactions): the test proves nothing here`);
    const [row] = await own.sql<{ ticks: number }[]>`select count(*)::int as ticks from tick`;
    assert.equal(row!.ticks, committed, 'every transaction written exactly once');
  });

  test('a connection lost after the transaction began is not begun again: its function ran once, nothing written', async () => {
    await own.sql`truncate tick`;
    let calls = 0;
    await assert.rejects(sql.begin(async (tx) => {
      calls++;
      await tx`insert into tick (worker) values (0)`;
      await tx`select pg_terminate_backend(pg_backend_pid())`;
    }), (err: { code?: string }) => {
      // The very failure that is retried when it comes before the function was called.
      assert.ok(['CONNECTION_CLOSED', '08P01'].includes(err.code!), String(err.code));
      return true;
    });
    assert.equal(calls, 1);
    const [row] = await own.sql<{ ticks: number }[]>`select count(*)::int as ticks from tick`;
    assert.equal(row!.ticks, 0);
  });
});
