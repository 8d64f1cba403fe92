import type { Redis } from 'ioredis';
import { cpus } from 'node:os';
import { recreateSchema } from '../src/database.ts';
import { reseed, type SeedOptions } from '../src/seed.ts';
import { runPgbench } from './pgbench.ts';
import { pgbenchScript } from './pgbench-script.ts';
import { progress } from './progress.ts';
import { withSql } from './run.ts';
import { seedFor, type Scale, type Scenario, type ScenarioName } from './scenarios.ts';

// The database ceiling of a scenario: pgbench placing the scenario's orders through the
// one-round-trip function (sql/place-order.sql), with no service in front: what this database on
// this machine does with the same orders, measured in the same run as the variants.
//
// Clients: as many as transactions the service can have open at once, the scenario's users capped
// at the pool (times the workers, each has a pool): a pooled service never has more orders inside
// the database, and more clients on a hot row only lengthen its lock queue.
//
// Length: -T seconds of orders on ample stock and points (so that none is refused). The flash sale
// instead answers exactly the scenario's attempts (-t), as the service does: its successes are the
// units on sale whatever the length, so only the time the storm takes compares.
//
// Successes are counted from the order rows afterwards, not from pgbench's tps: pgbench counts a
// refused order (sold out) as a transaction like any other.

export interface CeilingRun {
  round: number;
  pool: number;
  scenario: ScenarioName;
  clients: number;
  command: string | null;
  /** pgbench's transactions per second, connection set-up excluded: orders answered, refused or not. */
  tps: number | null;
  /** Transactions pgbench completed. */
  processed: number | null;
  /** Orders committed: rows in `orders` afterwards. */
  committedOrders: number | null;
  /** Seconds the transactions took (processed / tps). */
  durationSec: number | null;
  /** Committed orders per second: the ceiling the variants' HTTP orders/s are a share of. */
  ordersPerSec: number | null;
  /** Why there is no figure (pgbench failed). */
  error: string | null;
}

export interface CeilingContext {
  databaseUrl: string;
  redis: Redis;
  poolSize: number;
  /** Service processes, each with a pool of poolSize. */
  workers: number;
  durationSec: number;
  round: number;
  label: string;
}

/** Stock and points no run of a few seconds can exhaust (integer columns). */
const AMPLE = 1_000_000_000;

export const sellsOut = (scenario: Scenario) => scenario.name === 'flash-sale';

export function ceilingSeed(scenario: Scenario, scale: Scale): SeedOptions {
  const seed = seedFor(scenario, scale);
  return sellsOut(scenario) ? seed : { ...seed, stock: AMPLE, pointsPerUser: AMPLE };
}

export function ceilingClients(scale: Scale, poolSize: number, workers: number): number {
  return Math.max(1, Math.min(scale.connections, poolSize * workers));
}

export async function runCeiling(scenario: Scenario, scale: Scale, ctx: CeilingContext): Promise<CeilingRun> {
  const seed = ceilingSeed(scenario, scale);
  const clients = ceilingClients(scale, ctx.poolSize, ctx.workers);
  const attempts = scale.connections * scale.ordersPerConnection;
  const run: CeilingRun = { round: ctx.round, pool: ctx.poolSize, scenario: scenario.name, clients, command: null, tps: null,
    processed: null, committedOrders: null, durationSec: null, ordersPerSec: null, error: null };
  const bar = progress(ctx.label, 1);

  await withSql(ctx.databaseUrl, 2, (sql) => recreateSchema(sql));
  return withSql(ctx.databaseUrl, 2, async (admin) => {
    await reseed(admin, ctx.redis, seed);
    try {
      const result = await runPgbench({
        databaseUrl: ctx.databaseUrl, script: pgbenchScript(scenario, seed), clients, threads: Math.min(clients, cpus().length),
        length: sellsOut(scenario) ? { transactionsPerClient: Math.ceil(attempts / clients) } : { durationSec: ctx.durationSec },
      });
      const [{ n }] = await admin<[{ n: number }]>`select count(*)::int as n from orders`;
      const durationSec = result.tps > 0 ? result.processed / result.tps : 0;
      Object.assign(run, { command: result.command, tps: result.tps, processed: result.processed, committedOrders: n, durationSec,
        ordersPerSec: durationSec > 0 ? n / durationSec : 0 });
      bar.finish(`${Math.round(run.ordersPerSec!)} orders/s (${n} committed of ${result.processed} in ${durationSec.toFixed(1)} s, ` +
        `${Math.round(result.tps)} tps), ${result.command}`);
    } catch (err) {
      run.error = err instanceof Error ? err.message : String(err);
      bar.finish(`n/a: ${run.error.split('\n')[0]}`);
    }
    return run;
  });
}
