import { loadConfig } from '../../src/config.ts';
import { createOrderNumbers } from '../../src/orders/order-number.ts';
import { QUEUED, type OrderRouteVariant } from '../../src/orders/variants/index.ts';
import { DEFAULT_SEED } from '../../src/seed.ts';
import { describeMachine } from '../machine.ts';
import type { OwnServices } from '../../servers/services.ts';
import { runFaultCell, type FaultCell, type Timings } from './cell.ts';
import { FAULTS, type FaultName } from './faults.ts';
import { findPgBouncer, PGBOUNCER_INSTALL } from '../../servers/own-pgbouncer.ts';
import { writeFaultReport } from './report.ts';

// `bench --faults`: every chosen fault under every chosen variant, one after another on the
// bench's own servers, then the report. Exit code 1 when any cell failed.

export interface FaultBenchOptions {
  faults: FaultName[];
  variants: OrderRouteVariant[];
  clients: number;
  pool: number;
  workers: number;
  timings: Timings;
  quick: boolean;
  out: string;
}

export async function runFaultBench(o: FaultBenchOptions, env: { services: OwnServices; databaseUrl: string; redisKeyPrefix: string;
  log: (line: string) => void }): Promise<number> {
  const started = Date.now();
  const machine = await describeMachine(env.databaseUrl, o.pool, env.services.origin);
  env.log(`fault bench: ${o.faults.length} faults x ${o.variants.length} variants, ${o.clients} clients, pool ${o.pool}, ` +
    `${o.workers} workers, PostgreSQL ${machine.postgres.version} (${env.services.origin.postgres}), Redis (${env.services.origin.redis})`);
  // Stock and points far beyond what the run can use: every refusal comes from the fault.
  const seed = { ...DEFAULT_SEED, users: o.clients, stock: 10_000_000, pointsPerUser: 10_000_000 };
  // The salt the service uses: it reads the same environment.
  const numbers = createOrderNumbers(loadConfig().hashidsSalt);

  // Faults run through a pooler need one: without it they are left out, and said so.
  const pgbouncer = findPgBouncer();
  const faults = o.faults.filter((f) => pgbouncer || !FAULTS[f].throughPooler);
  const skipped = o.faults.filter((f) => !faults.includes(f));
  if (skipped.length) env.log(`fault bench: ${skipped.join(', ')} did not run: no pgbouncer on PATH (${PGBOUNCER_INSTALL})`);
  const cells: FaultCell[] = [];
  // The queue is Redis's data: a server that loses its data loses the orders it accepted, by
  // definition. What a durable one does is redis-kill's to show.
  const runs = (fault: FaultName, variant: OrderRouteVariant) => !(variant === QUEUED && fault === 'redis-restart-empty');
  const notRun = faults.flatMap((f) => o.variants.filter((v) => !runs(f, v)).map((v) => `${f}/${v}`));
  if (notRun.length) env.log(`fault bench: ${notRun.join(', ')} not run: the queue is the data Redis loses`);
  const total = faults.reduce((n, f) => n + o.variants.filter((v) => runs(f, v)).length, 0);
  for (const fault of faults) {
    for (const variant of o.variants.filter((v) => runs(fault, v))) {
      cells.push(await runFaultCell(fault, variant, {
        services: env.services, pgbouncer, databaseUrl: env.databaseUrl, redisKeyPrefix: env.redisKeyPrefix,
        poolSize: o.pool, workers: o.workers, clients: o.clients, seed, timings: o.timings, numbers,
        label: `[${cells.length + 1}/${total}] ${fault} ${variant}`, salt: cells.length,
      }));
    }
  }

  const written = await writeFaultReport({
    cells, machine, quick: o.quick, outDir: o.out, durationSec: (Date.now() - started) / 1000,
    settings: { clients: o.clients, pool: o.pool, workers: o.workers, timings: o.timings },
  });
  process.stdout.write(`\n${written.console}\n`);
  env.log(`written: ${written.files.join(', ')}`);
  const failed = cells.filter((c) => c.failures.length);
  if (failed.length) {
    env.log(`FAULT BENCH FAILED for ${failed.map((c) => `${c.fault}/${c.variant}`).join(', ')}`);
    return 1;
  }
  return 0;
}
