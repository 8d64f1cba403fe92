import type { Redis } from 'ioredis';
import { loadConfig } from '../src/config.ts';
import type { Sql } from '../src/connections.ts';
import { recreateSchema } from '../src/database.ts';
import { createOrderNumbers, type OrderNumbers } from '../src/orders/order-number.ts';
import { queueLength, readQueuedRecords } from '../src/orders/queue/queue-store.ts';
import { RESERVATIONS_KEY } from '../src/orders/redis-stock.ts';
import { reseed, sessionIdOf, type SeedOptions } from '../src/seed.ts';
import { audit, type AuditResult, type Created } from './audit.ts';
import { orderStream } from './bodies.ts';
import { orderSender } from './http-orders.ts';
import { latencyRecorder, type LatencySummary } from './latency.ts';
import { httpLoad, type LoadResult } from './load.ts';
import { openLoop } from './open-loop.ts';
import { cpuBetween, sampleServiceCpu } from './proc-cpu.ts';
import { progress } from './progress.ts';
import { loopsFor, warmUp, warmUpLabel, WARMUP_MIN_SEC, WARMUP_SALT, withSql, type CellContext } from './run.ts';
import { seedFor, type Scale, type Scenario } from './scenarios.ts';
import { startService, type ServiceProcess } from './service-process.ts';
import { spread, type Spread } from './summary.ts';

// The queued variant (asynchronous placement) under a scenario: the closed loop measures what
// buyers see (202s per second and their latency), then the bench waits for the queue to drain and
// measures what the buyers wait for after the 202, the time to placed: from the 202 (the order's
// created_at) to the consumer's record of its outcome after the commit. The audit runs on the
// drained queue: every 202 is exactly one order or one rejection, stock, sales, coupons, points
// and mirrors consistent, the queue and the reservations empty.
//
// The queue lives on a redis-server of the bench's own with an append-only file synced on every
// write (`durable`), so that the figures include what durability costs.

export interface QueuedOutcome {
  /** 202s answered. */
  accepted: number;
  placed: number;
  rejected: number;
  /** Rejections by code (a coupon or points spent meanwhile, ...). */
  rejections: Record<string, number>;
  /** From the 202 to the outcome recorded, placed orders only. */
  timeToPlacedMs: LatencySummary;
  /** From the end of the load to an empty queue. */
  drainSec: number;
  /** Orders placed per second from the first 202 to the last outcome. */
  placedPerSec: number;
  /** 202s with no outcome, with two, or whose outcome disagrees with the database; entries left. */
  problems: string[];
  audit: AuditResult;
}

export interface QueuedRun extends QueuedOutcome {
  round: number;
  scenario: Scenario['name'];
  scale: Scale;
  stock: number;
  requests: number;
  failures: Record<string, number>;
  /** 202s per second over the closed loop, and all answers per second. */
  acceptedPerSec: number;
  requestsPerSec: number;
  latencyMs: LatencySummary;
  /** The service's CPU per request over the closed loop (ms), null without /proc. */
  cpuPerRequestMs: number | null;
}

export interface QueuedOpenPoint extends QueuedOutcome {
  scenario: Scenario['name'];
  offeredPerSec: number;
  /** Share of the closed loop's accepted rate. */
  share: number;
  late: number;
  unsent: number;
  /** From each request's due time to its answer (coordinated omission corrected). */
  latencyMs: LatencySummary;
}

/** A cell's context, with `redisUrl` and `redis` naming the durable redis-server the queue runs on. */
export type QueuedContext = CellContext;

/** Longest wait for the queue to drain after a run. */
const DRAIN_TIMEOUT_MS = 120_000;

/** Closed loop (and, with `openShares`, open-loop points at those shares of its accepted rate). */
export async function runQueued(scenario: Scenario, scale: Scale, ctx: QueuedContext,
  openShares: number[] = [], openDurationSec = 10): Promise<{ run: QueuedRun; open: QueuedOpenPoint[] }> {
  const seed = seedFor(scenario, scale);
  const orderNumbers = createOrderNumbers(loadConfig().hashidsSalt);
  await withSql(ctx.databaseUrl, 2, (sql) => recreateSchema(sql));
  return withSql(ctx.databaseUrl, 2, async (admin) => {
    await freshData(admin, ctx.redis, seed);
    const service = await startService({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl,
      redisKeyPrefix: ctx.redisKeyPrefix, poolSize: ctx.poolSize });
    try {
      const loop = loopsFor(scenario, seed, scale);
      // As long a warm-up as the synchronous variants' runs get (run.ts), each loop drained first.
      await warmUp(async (k) => {
        const warm = await httpLoad(service.url, 'queued', loop(ctx.warmupOrdersPerConnection, WARMUP_SALT, warmUpLabel(ctx.label, k)));
        const drainStarted = performance.now();
        const warmLeft = await queueDrained(ctx.redis, DRAIN_TIMEOUT_MS);
        if (warmLeft) throw new Error(`the warm-up's orders did not drain within ${DRAIN_TIMEOUT_MS / 1000} s (${warmLeft} left)`);
        // Under load: accepting the orders, then placing what was still queued.
        return warm.durationSec + (performance.now() - drainStarted) / 1000;
      }, () => freshData(admin, ctx.redis, seed), ctx.warmupMinSec ?? WARMUP_MIN_SEC);
      const before = sampleServiceCpu(service.pid);
      const started = Date.now();
      const load = await httpLoad(service.url, 'queued', loop(scale.ordersPerConnection, 0, ctx.label));
      const after = sampleServiceCpu(service.pid);
      const { outcome } = await settleQueued(admin, ctx.redis, seed, orderNumbers, load.created, started, `${ctx.label} drain`);
      const cpu = before && after ? cpuBetween(before, after) : null;
      const run: QueuedRun = {
        round: ctx.round, scenario: scenario.name, scale, stock: seed.stock, ...outcome,
        requests: load.requests, failures: load.failures,
        acceptedPerSec: load.successes / load.durationSec, requestsPerSec: load.requests / load.durationSec,
        latencyMs: load.latencyMs, cpuPerRequestMs: cpu && load.requests ? cpu.totalMs / load.requests : null,
      };
      report(ctx.label, run, load);
      const open: QueuedOpenPoint[] = [];
      for (const share of openShares) {
        open.push(await openPoint(service, admin, ctx, scenario, seed, orderNumbers, run.acceptedPerSec * share, share, openDurationSec));
      }
      return { run, open };
    } finally {
      await service.stop();
    }
  });
}

/** Ids a running service may hold from before a reseed, and more: new ids start this far beyond the last one given. */
const ID_MARGIN = 1_000_000;

/** Seeds afresh, and moves the order ids past any the running service still holds from before. */
async function freshData(admin: Sql, redis: Redis, seed: SeedOptions) {
  // reseed restarts the orders' identity; a service that took a block of ids before must not
  // meet them again (its ids would collide with new orders'), so new ids start far beyond.
  const [{ last }] = await admin<{ last: string }[]>`select last_value as last from orders_id_seq` as unknown as [{ last: string }];
  await reseed(admin, redis, seed);
  await admin`select setval('orders_id_seq', ${Number(last) + ID_MARGIN})`;
}

async function openPoint(service: ServiceProcess, admin: Sql, ctx: QueuedContext, scenario: Scenario, seed: SeedOptions,
  orderNumbers: OrderNumbers, ratePerSec: number, share: number, durationSec: number): Promise<QueuedOpenPoint> {
  await freshData(admin, ctx.redis, seed);
  const users = seed.users;
  const sessionIds = Array.from({ length: users }, (_, i) => sessionIdOf(i + 1));
  const streams = sessionIds.map((_, i) => orderStream(scenario, seed, i + 1));
  const sender = orderSender(service.url, 'queued', 512);
  const label = `${ctx.label} open ${Math.round(ratePerSec)}/s (${Math.round(share * 100)}%)`;
  const bar = progress(label, Math.round(ratePerSec * durationSec));
  const created: Created[] = [];
  const failures: Record<string, number> = {};
  const started = Date.now();
  try {
    const run = await openLoop({ ratePerSec, durationSec, maxInFlight: 512, giveUpAfterSec: 2 * durationSec + 5, onProgress: (d) => bar.update(d) },
      async (i) => {
        const user = i % users;
        const answer = await sender.send(sessionIds[user]!, streams[user]!());
        if ('orderNo' in answer) created.push({ userId: user + 1, orderNo: answer.orderNo });
        else failures[answer.code] = (failures[answer.code] ?? 0) + 1;
      });
    bar.finish(`${created.length}/${run.scheduled} accepted, p99 ${run.latency.p99} ms, ${run.late} late`);
    const { outcome } = await settleQueued(admin, ctx.redis, seed, orderNumbers, created, started, `${label} drain`);
    progress(label, 1).finish(`time to placed p50 ${outcome.timeToPlacedMs.p50} ms, p99 ${outcome.timeToPlacedMs.p99} ms, ` +
      `audit ${outcome.problems.length ? outcome.problems.join(', ') : 'clean'}`);
    return { ...outcome, scenario: scenario.name, offeredPerSec: ratePerSec, share, late: run.late, unsent: run.unsent, latencyMs: run.latency };
  } finally {
    sender.close();
  }
}

/**
 * Resolves once the queue is empty, with 0; after `boundMs`, with the entries left (-1: Redis did
 * not answer). Asks again while the client reconnects (after a Redis fault).
 */
export async function queueDrained(redis: Redis, boundMs: number): Promise<number> {
  const until = Date.now() + boundMs;
  for (;;) {
    const left = await queueLength(redis).catch(() => -1);
    if (left === 0 || Date.now() > until) return left;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Waits for the drain, then reads every 202's outcome and audits the database (seeded with `seed`,
 * every order since then one of `accepted`). `placedOrderNos`: the 202s whose order was written.
 */
export async function settleQueued(admin: Sql, redis: Redis, seed: SeedOptions, orderNumbers: OrderNumbers, accepted: Created[],
  startedAt: number, label: string): Promise<{ outcome: QueuedOutcome; placedOrderNos: Set<string> }> {
  const loadEnd = Date.now();
  const bar = progress(label, 1);
  // Left undrained, the run is reported (its 202s without an outcome counted), not lost.
  const left = await queueDrained(redis, DRAIN_TIMEOUT_MS);
  const drainSec = (Date.now() - loadEnd) / 1000;
  const ids = accepted.map((c) => orderNumbers.parse(c.orderNo)?.id ?? 0);
  const records = await readQueuedRecords(redis, ids);
  const rows = new Set((await admin<{ id: string }[]>`select id from orders where id = any(${ids}::bigint[])`).map((r) => Number(r.id)));
  const timeToPlaced = latencyRecorder();
  const rejections: Record<string, number> = {};
  const placedCreated: Created[] = [];
  const problems: string[] = left ? [`queueNotDrained: ${left} entries after ${DRAIN_TIMEOUT_MS / 1000} s`] : [];
  let noOutcome = 0;
  let contradicted = 0;
  let lastDecided = startedAt;
  accepted.forEach((c, i) => {
    const record = records[i];
    const hasRow = rows.has(ids[i]!);
    if (!record || record.status === 'queued') { noOutcome++; return; }
    lastDecided = Math.max(lastDecided, record.decidedAt ?? 0);
    if (record.status === 'placed') {
      if (!hasRow) contradicted++;
      placedCreated.push(c);
      timeToPlaced.record((record.decidedAt ?? 0) - record.createdAt);
    } else {
      if (hasRow) contradicted++;
      const code = record.error?.code ?? 'unknown';
      rejections[code] = (rejections[code] ?? 0) + 1;
    }
  });
  if (noOutcome) problems.push(`acceptedWithoutOutcome: ${noOutcome}`);
  if (contradicted) problems.push(`outcomeContradictsDatabase: ${contradicted}`);
  const pending = await redis.hlen(RESERVATIONS_KEY);
  if (pending) problems.push(`reservationsLeftOpen: ${pending}`);
  // Every order row must be a placed 202 (ordersWithoutSuccess), mirrors equal to the stock.
  const verdict = await audit(admin, redis, { initialStock: seed.stock, initialPoints: seed.pointsPerUser,
    created: placedCreated, orderNumbers, checkMirrors: true });
  problems.push(...verdict.problems);
  const placed = placedCreated.length;
  bar.finish(`drained in ${drainSec.toFixed(1)} s`);
  const outcome = {
    accepted: accepted.length, placed, rejected: accepted.length - placed - noOutcome, rejections,
    timeToPlacedMs: timeToPlaced.summary(), drainSec,
    placedPerSec: placed / Math.max((lastDecided - startedAt) / 1000, 1e-3),
    problems, audit: verdict,
  };
  return { outcome, placedOrderNos: new Set(placedCreated.map((c) => c.orderNo)) };
}

function report(label: string, r: QueuedRun, load: LoadResult) {
  progress(label, load.requests).finish(
    `${Math.round(r.acceptedPerSec)} accepted/s, ${Math.round(r.requestsPerSec)} req/s, p50 ${r.latencyMs.p50} ms, ` +
    `p99 ${r.latencyMs.p99} ms; ${r.placed} placed (${Math.round(r.placedPerSec)}/s), ${r.rejected} rejected, ` +
    `time to placed p50 ${r.timeToPlacedMs.p50} ms p99 ${r.timeToPlacedMs.p99} ms; ` +
    `audit ${r.problems.length ? r.problems.join(', ') : 'clean'}`);
}

/** Per scenario, over the rounds: medians and ranges of what the report shows. */
export interface QueuedSummary {
  scenario: Scenario['name'];
  runs: number;
  acceptedPerSec: Spread;
  requestsPerSec: Spread;
  placedPerSec: Spread;
  acceptP99Ms: Spread;
  timeToPlacedP50Ms: Spread;
  timeToPlacedP99Ms: Spread;
  timeToPlacedP999Ms: Spread;
  placed: Spread;
  rejected: Spread;
  cpuPerRequestMs: Spread | null;
  clean: boolean;
  problems: string[];
}

export interface QueuedResult {
  summaries: QueuedSummary[];
  runs: QueuedRun[];
  open: QueuedOpenPoint[];
  /** Runs that broke off (the service did not start, the warm-up did not drain), with why. */
  broken: string[];
}

export function summarizeQueued(runs: QueuedRun[], open: QueuedOpenPoint[], broken: string[] = []): QueuedResult {
  const scenarios = [...new Set(runs.map((r) => r.scenario))];
  const summaries = scenarios.map((scenario) => {
    const rs = runs.filter((r) => r.scenario === scenario);
    const cpu = rs.map((r) => r.cpuPerRequestMs).filter((x): x is number => x !== null);
    return {
      scenario, runs: rs.length,
      acceptedPerSec: spread(rs.map((r) => r.acceptedPerSec)), requestsPerSec: spread(rs.map((r) => r.requestsPerSec)),
      placedPerSec: spread(rs.map((r) => r.placedPerSec)), acceptP99Ms: spread(rs.map((r) => r.latencyMs.p99)),
      timeToPlacedP50Ms: spread(rs.map((r) => r.timeToPlacedMs.p50)), timeToPlacedP99Ms: spread(rs.map((r) => r.timeToPlacedMs.p99)),
      timeToPlacedP999Ms: spread(rs.map((r) => r.timeToPlacedMs.p999)),
      placed: spread(rs.map((r) => r.placed)), rejected: spread(rs.map((r) => r.rejected)),
      cpuPerRequestMs: cpu.length ? spread(cpu) : null,
      clean: rs.every((r) => r.problems.length === 0),
      problems: rs.flatMap((r) => r.problems.map((p) => `round ${r.round}: ${p}`)),
    };
  });
  return { summaries, runs, open, broken };
}
