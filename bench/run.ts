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
  /** The warm-up's least length in seconds (default WARMUP_MIN_SEC): see warmThenMeasure. */
  warmupMinSec?: number;
  round: number;
  label: string;
}

export const WARMUP_SALT = 1_000_003;

/**
 * A fresh service process runs its first thousands of requests before V8 has optimised them. On a
 * 2-vCPU AMD EPYC machine, batched in mixed-100 and hot-100 spent 0.39-0.43 ms of service CPU per
 * measured order after the 1,000 warm-up orders of --warmup 10 alone, 0.27-0.35 after at least 3 s
 * of warm-up and 0.21-0.27 after 8 s (wrk, after 3 s of 100 connections: 0.14-0.18). So the warm-up
 * drives load for at least this long, repeated on fresh seed data: seconds, not orders, because a
 * fast variant needs more orders to warm and a slow one would take minutes to place them. Only the
 * time under load counts: neither reseeding between loops nor autocannon's wait for its next
 * 1-second tick after the last answer warms anything, and counting them let four loops of 1,000
 * hot-100 orders (a third of a second of load each) end the warm-up after about 1.3 s of load.
 */
export const WARMUP_MIN_SEC = 5;
/** Warm-up loops at most, however short each is (a sold-out flash sale answers in milliseconds). */
const WARMUP_MAX_LOOPS = 10;

/**
 * Runs `load` (the k-th warm-up loop, from 1; it answers the seconds it kept the service under
 * load) then `reset` (fresh data for what follows), again until the loads have lasted `minSec`
 * seconds in all or run WARMUP_MAX_LOOPS times; at least once.
 */
export async function warmUp(load: (k: number) => Promise<number>, reset: () => Promise<unknown>, minSec: number): Promise<void> {
  let underLoadSec = 0;
  for (let k = 1; k <= WARMUP_MAX_LOOPS; k++) {
    underLoadSec += await load(k);
    await reset();
    if (underLoadSec >= minSec) return;
  }
}

/** A warm-up loop's progress label: the k-th repetition numbered from the second on. */
export const warmUpLabel = (label: string, k: number) => `${label} warm-up${k > 1 ? ` ${k}` : ''}`;

/** How one cell's loops are made: its users' order streams and sessions, with a progress bar. */
export function loopsFor(scenario: Scenario, seed: SeedOptions, scale: Scale) {
  return (ordersPerConnection: number, salt: number, label: string): Loop => {
    const bar = progress(label, scale.connections * ordersPerConnection);
    return {
      streams: Array.from({ length: scale.connections }, (_, i) => orderStream(scenario, seed, i + 1, salt)),
      sessionIds: Array.from({ length: scale.connections }, (_, i) => sessionIdOf(i + 1)),
      ordersPerConnection,
      onProgress: (done) => bar.update(done),
    };
  };
}

interface Measurement {
  admin: Sql;
  redis: Redis;
  seed: SeedOptions;
  variant: VariantName;
  loop: ReturnType<typeof loopsFor>;
  warmupOrdersPerConnection: number;
  warmupMinSec: number;
  ordersPerConnection: number;
  label: string;
  orderNumbers: OrderNumbers;
}

/**
 * Warm up on seeded data (the warm-up loop again on fresh seed data until its loads have lasted
 * `warmupMinSec`, at most WARMUP_MAX_LOOPS times), seed again, run the measured loop, audit.
 * `sampleCpu` is read right before and after the measured loop alone: the warm-up, seeding and
 * audit are not order work.
 */
async function warmThenMeasure(m: Measurement, drive: (loop: Loop) => Promise<LoadResult>,
  sampleCpu: () => CpuSample | null = () => null): Promise<{ m: Measured; cpu: CpuUsed | null }> {
  await warmUp(async (k) => (await drive(m.loop(m.warmupOrdersPerConnection, WARMUP_SALT, warmUpLabel(m.label, k)))).durationSec,
    () => reseed(m.admin, m.redis, m.seed), m.warmupMinSec);
  const before = sampleCpu();
  const result = await drive(m.loop(m.ordersPerConnection, 0, m.label));
  const after = sampleCpu();
  const cpu = before && after ? cpuBetween(before, after) : null;
  return { cpu, m: await measured(result, m.admin, m.redis, { seed: m.seed, variant: m.variant, label: m.label, orderNumbers: m.orderNumbers }) };
}

function serviceCpuOf(cpu: CpuUsed | null, http: Measured): ServiceCpu | null {
  return cpu && {
    ...cpu,
    perOrderMs: http.successes ? cpu.totalMs / http.successes : null,
    perRequestMs: http.requests ? cpu.totalMs / http.requests : null,
  };
}

/** The HTTP half of a cell: the service started on seeded data (with `env` added to its environment), warmed up, measured, stopped. */
async function httpRun(m: Omit<Measurement, 'label'>, ctx: CellContext, env?: Record<string, string>) {
  // Seeded before the service starts: it loads the Redis stock mirrors at start-up.
  await reseed(m.admin, m.redis, m.seed);
  const service = await startService({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl,
    redisKeyPrefix: ctx.redisKeyPrefix, poolSize: ctx.poolSize, env });
  const { m: http, cpu } = await warmThenMeasure({ ...m, label: `${ctx.label} http` },
    (l) => httpLoad(service.url, m.variant, l), () => sampleServiceCpu(service.pid))
    .finally(() => service.stop());
  return { http, serviceCpu: serviceCpuOf(cpu, http) };
}

/** Fresh schema for a run; the admin pool is made after it so that no plan predates it. */
async function onFreshSchema<T>(databaseUrl: string, fn: (admin: Sql) => Promise<T>): Promise<T> {
  await withSql(databaseUrl, 2, (sql) => recreateSchema(sql));
  return withSql(databaseUrl, 2, fn);
}

export async function runCell(scenario: Scenario, variant: VariantName, scale: Scale, ctx: CellContext): Promise<Cell> {
  const seed = seedFor(scenario, scale);
  // The service's own order numbers: it runs with the same environment.
  const config = loadConfig();
  const orderNumbers = createOrderNumbers(config.hashidsSalt);
  return onFreshSchema(ctx.databaseUrl, async (admin) => {
    const m = { admin, redis: ctx.redis, seed, variant, loop: loopsFor(scenario, seed, scale), orderNumbers,
      warmupOrdersPerConnection: ctx.warmupOrdersPerConnection, warmupMinSec: ctx.warmupMinSec ?? WARMUP_MIN_SEC,
      ordersPerConnection: scale.ordersPerConnection };
    const { http, serviceCpu } = await httpRun(m, ctx);

    // The direct run's sessions get the service's timeouts too: the same transactions on both sides.
    const direct = await withSql(ctx.databaseUrl, ctx.poolSize, async (pool) => {
      const db = boundedPool(pool, { poolSize: ctx.poolSize, requestTimeoutMs: config.requestTimeoutMs });
      const placeOrder = createVariants({ db, redis: ctx.redis, config })[variant];
      await reseed(admin, ctx.redis, seed);
      // The bench's own process has run orders already: only a fresh service process needs the warm-up's least length.
      return (await warmThenMeasure({ ...m, warmupMinSec: 0, label: `${ctx.label} direct` }, (l) => directLoad(placeOrder, l, orderNumbers))).m;
    }, config.db);

    return {
      round: ctx.round, pool: ctx.poolSize, scenario: scenario.name, variant, scale, stock: seed.stock, http, direct,
      httpToDirect: direct.requestsPerSec ? http.requestsPerSec / direct.requestsPerSec : 0,
      serviceCpu,
    };
  });
}

/** One HTTP run of a variant under a scenario with more environment for the service (e.g. METRICS=off): what a setting costs. */
export async function runHttpWith(scenario: Scenario, variant: VariantName, scale: Scale, ctx: CellContext,
  env: Record<string, string>): Promise<{ http: Measured; serviceCpu: ServiceCpu | null }> {
  const seed = seedFor(scenario, scale);
  const orderNumbers = createOrderNumbers(loadConfig().hashidsSalt);
  return onFreshSchema(ctx.databaseUrl, (admin) => httpRun({ admin, redis: ctx.redis, seed, variant, loop: loopsFor(scenario, seed, scale),
    orderNumbers, warmupOrdersPerConnection: ctx.warmupOrdersPerConnection, warmupMinSec: ctx.warmupMinSec ?? WARMUP_MIN_SEC,
    ordersPerConnection: scale.ordersPerConnection }, ctx, env));
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
