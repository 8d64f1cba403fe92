import type { Redis } from 'ioredis';
import { loadConfig } from '../src/config.ts';
import { recreateSchema } from '../src/database.ts';
import { createOrderNumbers } from '../src/orders/order-number.ts';
import type { VariantName } from '../src/orders/variants/index.ts';
import { reseed, sessionIdOf } from '../src/seed.ts';
import { audit, type AuditResult, type Created } from './audit.ts';
import { orderStream } from './bodies.ts';
import { orderSender } from './http-orders.ts';
import type { LatencySummary } from './latency.ts';
import { httpLoad } from './load.ts';
import { openLoop } from './open-loop.ts';
import { progress } from './progress.ts';
import { seedFor, type Scenario } from './scenarios.ts';
import { startService } from './service-process.ts';
import { withSql } from './run.ts';

// One variant under a scenario's order mix, driven over HTTP by an open loop at each offered rate
// in turn (lowest first), on one service process after a warm-up, from a fresh seed before every
// rate, audited after every rate. The scenario's users share the arrivals round-robin.

export interface OpenPoint {
  scenario: Scenario['name'];
  variant: VariantName;
  /** Users the arrivals are spread over, round-robin. */
  users: number;
  /** Requests per second sent (due), whatever the answers. */
  offeredPerSec: number;
  /** The share of the variant's closed-loop capacity this rate is, when rates were given as shares. */
  share: number | null;
  durationSec: number;
  scheduled: number;
  late: number;
  unsent: number;
  maxSendLagMs: number;
  requests: number;
  successes: number;
  failures: Record<string, number>;
  /** Successful orders per second over the run (from the start to the last answer). */
  ordersPerSec: number;
  /** From each request's due time (coordinated omission corrected). */
  latencyMs: LatencySummary;
  /** From each request's actual send, for comparison only. */
  serviceLatencyMs: LatencySummary;
  audit: AuditResult;
}

export interface OpenStep { ratePerSec: number; share: number | null }

export interface OpenContext {
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  redis: Redis;
  poolSize: number;
  users: number;
  durationSec: number;
  warmupOrdersPerConnection: number;
  label: string;
}

/** Connections (hence requests in flight) at most; beyond that arrivals wait in the generator and count as late. */
const MAX_IN_FLIGHT = 512;
const WARMUP_SALT = 1_000_003;

export async function runOpenLoop(scenario: Scenario, variant: VariantName, steps: OpenStep[], ctx: OpenContext): Promise<OpenPoint[]> {
  const config = loadConfig();
  const orderNumbers = createOrderNumbers(config.hashidsSalt);
  // One seed large enough for the highest rate, used afresh for every rate.
  const most = Math.max(...steps.map((s) => s.ratePerSec));
  const seed = seedFor(scenario, { connections: ctx.users, ordersPerConnection: Math.ceil((most * ctx.durationSec) / ctx.users) + 1 });
  await withSql(ctx.databaseUrl, 2, (sql) => recreateSchema(sql));
  return withSql(ctx.databaseUrl, 2, async (admin) => {
    await reseed(admin, ctx.redis, seed);
    const service = await startService({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl,
      redisKeyPrefix: ctx.redisKeyPrefix, poolSize: ctx.poolSize });
    const sender = orderSender(service.url, variant, MAX_IN_FLIGHT);
    try {
      const sessionIds = Array.from({ length: ctx.users }, (_, i) => sessionIdOf(i + 1));
      const warm = progress(`${ctx.label} warm-up`, ctx.users * ctx.warmupOrdersPerConnection);
      await httpLoad(service.url, variant, {
        streams: sessionIds.map((_, i) => orderStream(scenario, seed, i + 1, WARMUP_SALT)), sessionIds,
        ordersPerConnection: ctx.warmupOrdersPerConnection, onProgress: (d) => warm.update(d),
      });
      const points: OpenPoint[] = [];
      for (const step of [...steps].sort((a, b) => a.ratePerSec - b.ratePerSec)) {
        await reseed(admin, ctx.redis, seed);
        const streams = sessionIds.map((_, i) => orderStream(scenario, seed, i + 1));
        const label = `${ctx.label} ${Math.round(step.ratePerSec)}/s${step.share === null ? '' : ` (${Math.round(step.share * 100)}%)`}`;
        const bar = progress(label, Math.round(step.ratePerSec * ctx.durationSec));
        const failures: Record<string, number> = {};
        const created: Created[] = [];
        const run = await openLoop({
          ratePerSec: step.ratePerSec, durationSec: ctx.durationSec, maxInFlight: MAX_IN_FLIGHT,
          giveUpAfterSec: 2 * ctx.durationSec + 5, onProgress: (d) => bar.update(d),
        }, async (i) => {
          const user = i % ctx.users;
          const answer = await sender.send(sessionIds[user]!, streams[user]!());
          if ('orderNo' in answer) created.push({ userId: user + 1, orderNo: answer.orderNo });
          else failures[answer.code] = (failures[answer.code] ?? 0) + 1;
        });
        const verdict = await audit(admin, ctx.redis, { initialStock: seed.stock, initialPoints: seed.pointsPerUser, created,
          orderNumbers, checkMirrors: variant === 'redis' });
        const point: OpenPoint = {
          scenario: scenario.name, variant, users: ctx.users, offeredPerSec: step.ratePerSec, share: step.share, durationSec: run.durationSec,
          scheduled: run.scheduled, late: run.late, unsent: run.unsent, maxSendLagMs: run.maxSendLagMs,
          requests: run.sent, successes: created.length, failures, ordersPerSec: created.length / Math.max(run.durationSec, 1e-3),
          latencyMs: run.latency, serviceLatencyMs: run.serviceLatency, audit: verdict,
        };
        bar.finish(`${Math.round(point.ordersPerSec)} orders/s, p50 ${run.latency.p50} ms, p99 ${run.latency.p99} ms, ` +
          `p99.9 ${run.latency.p999} ms, ${run.late} late, ${run.unsent} unsent, ${point.successes}/${run.scheduled} ok, ` +
          `audit ${verdict.clean ? 'clean' : verdict.problems.join(', ')}`);
        points.push(point);
      }
      return points;
    } finally {
      sender.close();
      await service.stop();
    }
  });
}
