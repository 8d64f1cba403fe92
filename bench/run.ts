import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '../src/config.ts';
import { createSql, type Sql } from '../src/connections.ts';
import { recreateSchema } from '../src/database.ts';
import { boundedPool } from '../src/transaction.ts';
import { createVariants, type VariantName } from '../src/orders/variants/index.ts';
import { createOrderNumbers, type OrderNumbers } from '../src/orders/order-number.ts';
import { reseed, sessionIdOf, type SeedOptions } from '../src/seed.ts';
import { audit, type AuditResult } from './audit.ts';
import { orderStream } from './bodies.ts';
import { directLoad, httpLoad, type LoadResult, type Loop } from './load.ts';
import { progress } from './progress.ts';
import { cpuBetween, sampleServiceCpu, type CpuSample, type CpuUsed } from './proc-cpu.ts';
import { seedFor, type Scale, type Scenario } from './scenarios.ts';
import { startService } from './service-process.ts';

// One cell of the matrix: a variant under a scenario, driven over HTTP and then directly, each
// time from freshly seeded data, after a warm-up, and audited afterwards.

export interface Measured extends Omit<LoadResult, 'created'> {
  ordersPerSec: number;
  requestsPerSec: number;
  audit: AuditResult;
}

/** The service's CPU time over the measured HTTP run (supervisor and workers), and per success / request. */
export interface ServiceCpu extends CpuUsed {
  /** null when nothing succeeded. */
  perOrderMs: number | null;
  perRequestMs: number | null;
}

export interface Cell {
  /** Which repeat of this variant x scenario (1-based). */
  round: number;
  /** Database connections of the service and of the direct run. */
  pool: number;
  scenario: Scenario['name'];
  variant: VariantName;
  scale: Scale;
  /** Units on sale (the flash sale) or per product. */
  stock: number;
  http: Measured;
  direct: Measured;
  /** HTTP requests/s over direct requests/s: what the HTTP layer costs. */
  httpToDirect: number;
  /** The service's CPU over the measured HTTP run; null where /proc is missing. */
  serviceCpu: ServiceCpu | null;
}

export interface CellContext {
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  redis: Redis;
  poolSize: number;
  warmupOrdersPerConnection: number;
  round: number;
  label: string;
}

const WARMUP_SALT = 1_000_003;

export async function runCell(scenario: Scenario, variant: VariantName, scale: Scale, ctx: CellContext): Promise<Cell> {
  const seed = seedFor(scenario, scale);
  // The service's own order numbers: it runs with the same environment.
  const config = loadConfig();
  const orderNumbers = createOrderNumbers(config.hashidsSalt);
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
    /**
     * Warm up on seeded data, seed again, run the measured loop, audit. `sampleCpu` is read right
     * before and after the measured loop alone: the warm-up, seeding and audit are not order work.
     */
    const warmThenMeasure = async (mode: 'http' | 'direct', drive: (loop: Loop) => Promise<LoadResult>,
      sampleCpu: () => CpuSample | null = () => null) => {
      await drive(loop(ctx.warmupOrdersPerConnection, WARMUP_SALT, `${ctx.label} ${mode} warm-up`));
      await reseed(admin, ctx.redis, seed);
      const label = `${ctx.label} ${mode}`;
      const before = sampleCpu();
      const result = await drive(loop(scale.ordersPerConnection, 0, label));
      const after = sampleCpu();
      const cpu = before && after ? cpuBetween(before, after) : null;
      return { cpu, m: await measured(result, admin, ctx.redis, { seed, variant, label, orderNumbers }) };
    };

    // Seeded before the service starts: it loads the Redis stock mirrors at start-up.
    await reseed(admin, ctx.redis, seed);
    const service = await startService({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl,
      redisKeyPrefix: ctx.redisKeyPrefix, poolSize: ctx.poolSize });
    const { m: http, cpu } = await warmThenMeasure('http', (l) => httpLoad(service.url, variant, l), () => sampleServiceCpu(service.pid))
      .finally(() => service.stop());

    // The direct run's sessions get the service's timeouts too: the same transactions on both sides.
    const direct = await withSql(ctx.databaseUrl, ctx.poolSize, async (pool) => {
      const db = boundedPool(pool, { poolSize: ctx.poolSize, requestTimeoutMs: config.requestTimeoutMs });
      const placeOrder = createVariants({ db, redis: ctx.redis, config })[variant];
      await reseed(admin, ctx.redis, seed);
      return (await warmThenMeasure('direct', (l) => directLoad(placeOrder, l, orderNumbers))).m;
    }, config.db);

    return {
      round: ctx.round, pool: ctx.poolSize, scenario: scenario.name, variant, scale, stock: seed.stock, http, direct,
      httpToDirect: direct.requestsPerSec ? http.requestsPerSec / direct.requestsPerSec : 0,
      serviceCpu: cpu && {
        ...cpu,
        perOrderMs: http.successes ? cpu.totalMs / http.successes : null,
        perRequestMs: http.requests ? cpu.totalMs / http.requests : null,
      },
    };
  });
}


export interface AuditContext { seed: SeedOptions; variant: VariantName; label: string; orderNumbers: OrderNumbers }

/** Audits a run and prints its one-line summary; the order numbers are not kept past the audit. */
export async function measured({ created, ...result }: LoadResult, sql: Sql, redis: Redis, a: AuditContext): Promise<Measured> {
  const verdict = await audit(sql, redis, {
    initialStock: a.seed.stock, initialPoints: a.seed.pointsPerUser, created, orderNumbers: a.orderNumbers, checkMirrors: a.variant === 'redis',
  });
  const m = {
    ...result,
    ordersPerSec: result.successes / result.durationSec,
    requestsPerSec: result.requests / result.durationSec,
    audit: verdict,
  };
  progress(a.label, result.requests).finish(
    `${Math.round(m.ordersPerSec)} orders/s, ${Math.round(m.requestsPerSec)} req/s, p50 ${m.latencyMs.p50} ms, p99 ${m.latencyMs.p99} ms, ` +
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
