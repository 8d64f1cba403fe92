import type { Redis } from 'ioredis';
import { cpus } from 'node:os';
import type { Sql } from '../src/connections.ts';
import { recreateSchema } from '../src/database.ts';
import { reseed, type SeedOptions } from '../src/seed.ts';
import { initPgbenchTables, runPgbench } from './pgbench.ts';
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
//
// Beside it, in the same round with the same clients and length, pgbench's built-in "simple update"
// (-N: one account update, one read and one history insert per transaction, on pgbench's own tables
// in a schema of their own): what a minimal write transaction does on this database and machine, so
// that the order's own cost in the database reads as a share of it.

/** Where pgbench's own tables live in the bench's database, and their scale factor (100,000 accounts each). */
export const SIMPLE_UPDATE_SCHEMA = 'pgbench_builtin';
const SIMPLE_UPDATE_SCALE = 10;

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
  /** pgbench -N transactions/s, same clients and length (null: the flash sale, or it failed). */
  simpleUpdateTps: number | null;
  simpleUpdateCommand: string | null;
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
    processed: null, committedOrders: null, durationSec: null, ordersPerSec: null, error: null, simpleUpdateTps: null, simpleUpdateCommand: null };
  const bar = progress(ctx.label, 1);

  await withSql(ctx.databaseUrl, 2, (sql) => recreateSchema(sql));
  return withSql(ctx.databaseUrl, 2, async (admin) => {
    await reseed(admin, ctx.redis, seed);
    try {
      const result = await runPgbench({
        databaseUrl: ctx.databaseUrl, workload: { script: pgbenchScript(scenario, seed) }, clients, threads: Math.min(clients, cpus().length),
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
    if (!sellsOut(scenario) && run.error === null) await runSimpleUpdate(run, admin, ctx);
    return run;
  });
}

const tablesMade = new Map<string, Promise<void>>();

/** pgbench -N beside the ceiling: its figure on `run`, or a line saying why there is none (the ceiling stands). */
async function runSimpleUpdate(run: CeilingRun, admin: Sql, ctx: CeilingContext) {
  const bar = progress(`${ctx.label} (pgbench -N)`, 1);
  try {
    // pgbench's tables once per database: -N's updates leave them as valid for the next round.
    const made = tablesMade.get(ctx.databaseUrl) ?? admin.unsafe(`create schema if not exists ${SIMPLE_UPDATE_SCHEMA}`)
      .then(() => initPgbenchTables(ctx.databaseUrl, SIMPLE_UPDATE_SCHEMA, SIMPLE_UPDATE_SCALE));
    tablesMade.set(ctx.databaseUrl, made);
    await made.catch((err: unknown) => { tablesMade.delete(ctx.databaseUrl); throw err; });
    const result = await runPgbench({
      databaseUrl: ctx.databaseUrl, workload: { builtin: 'simple-update', schema: SIMPLE_UPDATE_SCHEMA }, clients: run.clients,
      threads: Math.min(run.clients, cpus().length), length: { durationSec: ctx.durationSec },
    });
    Object.assign(run, { simpleUpdateTps: result.tps, simpleUpdateCommand: result.command });
    bar.finish(`${Math.round(result.tps)} tps; the ceiling is ${((run.ordersPerSec! / result.tps) * 100).toFixed(0)}% of it`);
  } catch (err) {
    bar.finish(`n/a: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
  }
}
