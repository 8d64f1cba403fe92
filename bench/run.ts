import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '../src/config.ts';
import { createSql, type Sql } from '../src/connections.ts';
import { recreateSchema } from '../src/database.ts';
import { boundedPool } from '../src/transaction.ts';
import { createVariants, type VariantName } from '../src/orders/variants/index.ts';
import { reseed, sessionIdOf, type SeedOptions } from '../src/seed.ts';
import { audit, type AuditResult } from './audit.ts';
import { orderStream } from './bodies.ts';
import { directLoad, httpLoad, type LoadResult, type Loop } from './load.ts';
import { progress } from './progress.ts';
import { seedFor, type Scale, type Scenario } from './scenarios.ts';
import { startService } from './service-process.ts';

// One cell of the matrix: a variant under a scenario, driven over HTTP and then directly, each
// time from freshly seeded data, after a warm-up, and audited afterwards.

export interface Measured extends LoadResult {
  ordersPerSec: number;
  requestsPerSec: number;
  audit: AuditResult;
}

export interface Cell {
  scenario: Scenario['name'];
  variant: VariantName;
  scale: Scale;
  /** Units on sale (the flash sale) or per product. */
  stock: number;
  http: Measured;
  direct: Measured;
  /** HTTP requests/s over direct requests/s: what the HTTP layer costs. */
  httpToDirect: number;
}

export interface CellContext {
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  redis: Redis;
  poolSize: number;
  warmupOrdersPerConnection: number;
  label: string;
}

const WARMUP_SALT = 1_000_003;

export async function runCell(scenario: Scenario, variant: VariantName, scale: Scale, ctx: CellContext): Promise<Cell> {
  const seed = seedFor(scenario, scale);
  const loop = (ordersPerConnection: number, salt: number, label: string): Loop => {
    const bar = progress(label, scale.connections * ordersPerConnection);
    return {
      streams: Array.from({ length: scale.connections }, (_, i) => orderStream(scenario, seed, i + 1, salt)),
      sessionIds: Array.from({ length: scale.connections }, (_, i) => sessionIdOf(i + 1)),
      ordersPerConnection,
      onProgress: (done) => bar.update(done),
    };
  };

  // Fresh schema for this cell; the admin pool is made after it so that no plan predates it.
  await withSql(ctx.databaseUrl, 2, (sql) => recreateSchema(sql));
  return withSql(ctx.databaseUrl, 2, async (admin) => {
    /** Warm up on seeded data, seed again, run the measured loop, audit. */
    const warmThenMeasure = async (mode: 'http' | 'direct', drive: (loop: Loop) => Promise<LoadResult>) => {
      await drive(loop(ctx.warmupOrdersPerConnection, WARMUP_SALT, `${ctx.label} ${mode} warm-up`));
      await reseed(admin, ctx.redis, seed);
      const label = `${ctx.label} ${mode}`;
      return measured(await drive(loop(scale.ordersPerConnection, 0, label)), admin, ctx.redis, seed, variant, label);
    };

    // Seeded before the service starts: it loads the Redis stock mirrors at start-up.
    await reseed(admin, ctx.redis, seed);
    const service = await startService({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl,
      redisKeyPrefix: ctx.redisKeyPrefix, poolSize: ctx.poolSize });
    const http = await warmThenMeasure('http', (l) => httpLoad(service.url, variant, l)).finally(() => service.stop());

    // The direct run's sessions get the service's timeouts too: the same transactions on both sides.
    const config = loadConfig();
    const direct = await withSql(ctx.databaseUrl, ctx.poolSize, async (pool) => {
      const db = boundedPool(pool, { poolSize: ctx.poolSize, requestTimeoutMs: config.requestTimeoutMs });
      const placeOrder = createVariants({ db, redis: ctx.redis, config })[variant];
      await reseed(admin, ctx.redis, seed);
      return warmThenMeasure('direct', (l) => directLoad(placeOrder, l));
    }, config.db);

    return {
      scenario: scenario.name, variant, scale, stock: seed.stock, http, direct,
      httpToDirect: direct.requestsPerSec ? http.requestsPerSec / direct.requestsPerSec : 0,
    };
  });
}


async function measured(result: LoadResult, sql: Sql, redis: Redis, seed: SeedOptions, variant: VariantName, label: string): Promise<Measured> {
  const verdict = await audit(sql, redis, {
    initialStock: seed.stock, initialPoints: seed.pointsPerUser, successes: result.successes, checkMirrors: variant === 'redis',
  });
  const m = {
    ...result,
    ordersPerSec: result.successes / result.durationSec,
    requestsPerSec: result.requests / result.durationSec,
    audit: verdict,
  };
  progress(label, result.requests).finish(
    `${Math.round(m.ordersPerSec)} orders/s, ${Math.round(m.requestsPerSec)} req/s, p75 ${m.latencyMs.p75} ms, ` +
    `${result.successes}/${result.requests} ok, audit ${verdict.clean ? 'clean' : verdict.problems.join(', ')}`);
  return m;
}

export async function withSql<T>(url: string, poolSize: number, fn: (sql: Sql) => Promise<T>, db?: Config['db']): Promise<T> {
  const sql = createSql({ databaseUrl: url, poolSize, db });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
