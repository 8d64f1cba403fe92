import type { Redis } from 'ioredis';
import { loadConfig } from '../src/config.ts';
import type { Sql } from '../src/connections.ts';
import { recreateSchema } from '../src/database.ts';
import { createOrderNumbers, type OrderNumbers } from '../src/orders/order-number.ts';
import { QUEUED, type OrderRouteVariant } from '../src/orders/variants/index.ts';
import { clearRedisNamespace } from '../src/redis-namespace.ts';
import { ADMISSION_KEY_PREFIX } from '../src/routes/admission.ts';
import { reseed, sessionIdOf, type SeedOptions } from '../src/seed.ts';
import { audit, type Created } from './audit.ts';
import { orderStream } from './bodies.ts';
import type { LatencySummary } from './latency.ts';
import { httpLoad } from './load.ts';
import { progress } from './progress.ts';
import { settleQueued } from './queued.ts';
import { withSql } from './run.ts';
import { SCENARIOS } from './scenarios.ts';
import { startService } from './service-process.ts';
import { spread, type Spread } from './summary.ts';

// The `bots` scenario: a sale of exactly as many units as the ordinary buyers want, while a few
// bot users flood the same product from many connections each. Without admission control the
// bots take units the buyers wanted; with a per-user limit (src/routes/admission.ts) each bot gets
// its allowance and no more. Three runs per variant: no bots, bots with limits off, bots with
// limits on; every run audited. What counts is the ordinary buyers' success rate and latency.
// For `queued` a success is a 202 whose order was then written (the run waits for the drain), and
// its latency the 202's.

export const BOTS = 'bots';

/** Buyers x orders each (1 unit of the one product), bots x connections each, and the limits of the "on" runs. */
export const BOTS_SHAPE = {
  full: { buyers: 100, ordersPerBuyer: 5, bots: 3, connectionsPerBot: 10 },
  quick: { buyers: 5, ordersPerBuyer: 2, bots: 1, connectionsPerBot: 2 },
};
/** A buyer's whole demand fits the per-user limit within the window; a bot's flood does not. */
export const BOTS_LIMITS = { perUser: 5, overall: 0, windowSeconds: 10 };
export const BOTS_MODES = ['no bots', 'bots, limits off', 'bots, limits on'] as const;
export type BotsMode = (typeof BOTS_MODES)[number];
export type BotsShape = (typeof BOTS_SHAPE)['full'];

export interface BotsRun {
  variant: OrderRouteVariant;
  mode: BotsMode;
  round: number;
  buyers: { requests: number; successes: number; successRate: number; latencyMs: LatencySummary; failures: Record<string, number> };
  bots: { requests: number; successes: number; rateLimited: number };
  clean: boolean;
  problems: string[];
}

export interface BotsCell {
  variant: OrderRouteVariant;
  mode: BotsMode;
  successRate: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  botSuccesses: Spread;
  clean: boolean;
}

export interface BotsResult { shape: BotsShape; limits: typeof BOTS_LIMITS; runs: BotsRun[]; cells: BotsCell[] }

export interface BotsContext {
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  redis: Redis;
  poolSize: number;
  /** The durable redis-server the queued variant's runs use (queue, mirrors, sessions). */
  queue?: { redisUrl: string; redis: Redis };
}

const FLASH = SCENARIOS['flash-sale'];

/** One product with exactly the buyers' demand in stock; the bots are users after the buyers. */
export function botsSeed(shape: BotsShape): SeedOptions {
  return {
    products: 1, stock: shape.buyers * shape.ordersPerBuyer, basePrice: '9.99', priceStep: '10.00',
    users: shape.buyers + shape.bots, couponsPerUser: 0, pointsPerUser: 0,
  };
}

/** Every variant in every mode, `repeat` rounds, modes in another order each round. */
export async function runBots(variants: OrderRouteVariant[], shape: BotsShape, repeat: number, ctx: BotsContext,
  progress: { before(label: string): void; after(): void }): Promise<BotsResult> {
  const runs: BotsRun[] = [];
  for (let round = 1; round <= repeat; round++) {
    const shift = (round - 1) % BOTS_MODES.length;
    const modes = [...BOTS_MODES.slice(shift), ...BOTS_MODES.slice(0, shift)];
    for (const variant of variants) {
      for (const mode of modes) {
        const label = `[bots round ${round}] ${variant} ${mode}`;
        progress.before(label);
        runs.push(await runBotsCell(variant, mode, round, shape, ctx, label));
        progress.after();
      }
    }
  }
  return { shape, limits: BOTS_LIMITS, runs, cells: summarizeBots(runs) };
}

async function runBotsCell(variant: OrderRouteVariant, mode: BotsMode, round: number, shape: BotsShape, cellCtx: BotsContext,
  label: string): Promise<BotsRun> {
  if (variant === QUEUED && !cellCtx.queue) throw new Error('bots: the queued variant needs a durable redis-server (BotsContext.queue)');
  const ctx = variant === QUEUED ? { ...cellCtx, ...cellCtx.queue } : cellCtx;
  const seed = botsSeed(shape);
  const orderNumbers = createOrderNumbers(loadConfig().hashidsSalt);
  await withSql(ctx.databaseUrl, 2, (sql) => recreateSchema(sql));
  return withSql(ctx.databaseUrl, 2, async (admin) => {
    await reseed(admin, ctx.redis, seed);
    // The admission counts of the previous run (same users, a window of seconds) must not carry over.
    await clearRedisNamespace(ctx.redisUrl, `${ctx.redisKeyPrefix}${ADMISSION_KEY_PREFIX}`);
    const limitsOn = mode === 'bots, limits on';
    const limits: Record<string, string> = limitsOn ? {
      ADMISSION_USER_LIMIT: String(BOTS_LIMITS.perUser), ADMISSION_TOTAL_LIMIT: String(BOTS_LIMITS.overall),
      ADMISSION_WINDOW_SECONDS: String(BOTS_LIMITS.windowSeconds),
    } : {};
    const service = await startService({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl, redisKeyPrefix: ctx.redisKeyPrefix,
      poolSize: ctx.poolSize, env: limits });
    let buyersDone = false;
    let flood: Promise<PromiseSettledResult<BotAnswer[]>[]> = Promise.resolve([]);
    try {
      const bar = progress(`${label} buyers`, shape.buyers * shape.ordersPerBuyer);
      const botUsers = Array.from({ length: shape.bots }, (_, b) => shape.buyers + 1 + b);
      // Settled, never rejected: a bot's failure is reported with the run, not as an unhandled rejection.
      if (mode !== 'no bots') {
        flood = Promise.allSettled(botUsers.flatMap((userId) => Array.from({ length: shape.connectionsPerBot },
          () => botConnection(service.url, variant, seed, userId, { done: () => buyersDone, untilRefused: limitsOn }))));
      }
      const buyers = await httpLoad(service.url, variant, {
        streams: Array.from({ length: shape.buyers }, (_, i) => orderStream(FLASH, seed, i + 1)),
        sessionIds: Array.from({ length: shape.buyers }, (_, i) => sessionIdOf(i + 1)),
        ordersPerConnection: shape.ordersPerBuyer,
        onProgress: (done) => bar.update(done),
      }).finally(() => { buyersDone = true; });
      const settled = await flood;
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw new Error(`a bot connection failed: ${String(failed.reason)}`);
      const botAnswers = settled.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
      const created = [...buyers.created, ...botAnswers.flatMap((a) => (a.created ? [a.created] : []))];
      const { problems, successful } = variant === QUEUED
        ? await settleQueuedRun(admin, ctx.redis, seed, orderNumbers, created, `${label} drain`)
        : await auditRun(admin, ctx.redis, seed, orderNumbers, created, variant);
      const buyerSuccesses = buyers.created.filter((c) => successful(c.orderNo)).length;
      const run: BotsRun = {
        variant, mode, round,
        buyers: { requests: buyers.requests, successes: buyerSuccesses, successRate: buyerSuccesses / buyers.requests,
          latencyMs: buyers.latencyMs, failures: buyers.failures },
        bots: { requests: botAnswers.length, successes: botAnswers.filter((a) => a.created && successful(a.created.orderNo)).length,
          rateLimited: botAnswers.filter((a) => a.code === 'RATE_LIMITED').length },
        clean: problems.length === 0, problems,
      };
      bar.finish(`buyers ${run.buyers.successes}/${run.buyers.requests} placed (p99 ${buyers.latencyMs.p99} ms); ` +
        `bots ${run.bots.successes}/${run.bots.requests} placed, ${run.bots.rateLimited} refused 429; audit ${run.clean ? 'clean' : problems.join(', ')}`);
      return run;
    } finally {
      // The bots' requests in flight are answered before the service stops.
      buyersDone = true;
      await flood;
      await service.stop();
    }
  });
}

interface BotAnswer { created?: Created; code?: string }

interface RunVerdict { problems: string[]; successful: (orderNo: string) => boolean }

/** A synchronous variant: every order answered 201 is placed; the audit checks the database. */
async function auditRun(admin: Sql, redis: Redis, seed: SeedOptions, orderNumbers: OrderNumbers, created: Created[],
  variant: OrderRouteVariant): Promise<RunVerdict> {
  const verdict = await audit(admin, redis, { initialStock: seed.stock, initialPoints: seed.pointsPerUser, orderNumbers,
    checkMirrors: variant === 'redis', created });
  return { problems: verdict.problems, successful: () => true };
}

/** queued: waits for the drain; a 202 counts once its order is written (a rejection does not). */
async function settleQueuedRun(admin: Sql, redis: Redis, seed: SeedOptions, orderNumbers: OrderNumbers, accepted: Created[],
  label: string): Promise<RunVerdict> {
  const { outcome, placedOrderNos } = await settleQueued(admin, redis, seed, orderNumbers, accepted, Date.now(), label);
  return { problems: outcome.problems, successful: (orderNo) => placedOrderNos.has(orderNo) };
}

/**
 * One bot connection: orders back to back until the buyers are done; every answer is awaited (the
 * audit needs them all). `untilRefused`: it goes on until refused once, at most an allowance
 * beyond, so that a run with limits on always shows the limit at work, however short.
 */
async function botConnection(url: string, variant: OrderRouteVariant, seed: SeedOptions, userId: number,
  o: { done: () => boolean; untilRefused: boolean }): Promise<BotAnswer[]> {
  const next = orderStream(FLASH, seed, userId);
  const answers: BotAnswer[] = [];
  let extra = 0;
  const more = () => !o.done() ||
    (o.untilRefused && !answers.some((a) => a.code === 'RATE_LIMITED') && extra++ <= BOTS_LIMITS.perUser);
  while (more()) {
    const res = await fetch(`${url}/orders/${variant}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${sessionIdOf(userId)}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(next()),
      signal: AbortSignal.timeout(60_000),
    });
    const body = await res.json() as { orderNo?: string; error?: { code: string } };
    answers.push(body.orderNo ? { created: { userId, orderNo: body.orderNo } } : { code: body.error?.code ?? String(res.status) });
    // A bot told to wait does not: it sends again at once (but yields, so the buyers' loop runs).
    if (res.status === 429) await new Promise((resolve) => setImmediate(resolve));
  }
  return answers;
}

/** Per variant and mode: the medians and ranges of the rounds. */
export function summarizeBots(runs: BotsRun[]): BotsCell[] {
  const variants = [...new Set(runs.map((r) => r.variant))];
  return variants.flatMap((variant) => BOTS_MODES.filter((mode) => runs.some((r) => r.variant === variant && r.mode === mode)).map((mode) => {
    const mine = runs.filter((r) => r.variant === variant && r.mode === mode);
    return {
      variant, mode,
      successRate: spread(mine.map((r) => r.buyers.successRate)),
      p50Ms: spread(mine.map((r) => r.buyers.latencyMs.p50)),
      p99Ms: spread(mine.map((r) => r.buyers.latencyMs.p99)),
      botSuccesses: spread(mine.map((r) => r.bots.successes)),
      clean: mine.every((r) => r.clean),
    };
  }));
}
