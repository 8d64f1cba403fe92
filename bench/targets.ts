import { TRANSACTIONAL_VARIANTS, type VariantName } from '../src/orders/variants/index.ts';
import type { ScenarioName } from './scenarios.ts';
import type { BotsResult } from './bots.ts';
import type { CeilingRun } from './ceiling.ts';
import type { ConcurrencySweep } from './concurrency.ts';
import type { QueuedResult } from './queued.ts';
import type { ScaleOut } from './scale-out.ts';
import { spread, type CellSummary } from './summary.ts';

// What the project claims, checked on every run and stated in the report. A target is never
// lowered to pass: a miss is reported as a miss. Figures are judged on the median of the
// repeats; correctness (audits, units sold) on every single run.

export interface Target { name: string; met: boolean | null; detail: string }

const isTransactional = (c: CellSummary) => (TRANSACTIONAL_VARIANTS as string[]).includes(c.variant);

/** HTTP successful orders/s the best transactional variant must reach in a scenario (median; full scale only). */
export const THROUGHPUT_TARGETS: Partial<Record<ScenarioName, number>> = { 'mixed-100': 2500, 'hot-100': 3000, 'hot-10': 2500 };
/** mixed-100's best transactional variant, as a share of the database ceiling measured in the same run. */
export const CEILING_SHARE_TARGET = 0.5;
/** The one-round-trip variant's service CPU per successful order, in ms. */
export const CPU_PER_ORDER_TARGET_MS = 0.35;
/** Each transactional variant's HTTP orders/s as a share of its direct run, in these scenarios. */
export const HTTP_SHARE_TARGET = 0.85;
export const HTTP_SHARE_SCENARIOS: ScenarioName[] = ['mixed-100', 'hot-10', 'hot-100'];
/** Service CPU per successful order as a multiple of the HTTP floor's CPU per request (same round). */
export const FLOOR_MULTIPLE_TARGETS: Partial<Record<VariantName, number>> = { 'one-round-trip': 4, batched: 3, 'row-lock': 6 };
/** The sold-out storm: the variants that refuse before the database, and their CPU per request as a multiple of the floor's. */
export const SOLD_OUT_VARIANTS: VariantName[] = ['redis', 'batched'];
export const SOLD_OUT_FLOOR_MULTIPLE = 2;
/** The sold-out storm's HTTP requests/s as a share of the floor's. */
export const STORM_FLOOR_SHARE = 0.4;
/** batched over HTTP in hot-100, as a multiple of the one-order-per-transaction ceiling (group commit beats one commit per order). */
export const BATCHED_HOT_CEILING_MULTIPLE = 1.5;
/** The place_order ceiling as a share of pgbench's built-in simple update (-N) at the same clients, same round. */
export const SIMPLE_UPDATE_SHARE_TARGET = 0.6;
/** The concurrency sweep: batched at more users, as a share of its rate at the fewest; and over one-round-trip at these users. */
export const SWEEP_HOLD_SHARE = 0.9;
export const SWEEP_BATCHED_OVER_ONE_TRIP = { users: 100, multiple: 1.3 } as const;
/** batched with 2 service processes, as a share of its one-process rate (directly). */
export const BATCHED_TWO_PROCESSES_SHARE = 0.95;

/** Throughput and CPU figures mean little at a reduced scale: there they are reported, not judged. */
function judgedAt(fullScale: boolean) {
  return (met: boolean, detail: string): Omit<Target, 'name'> =>
    (fullScale ? { met, detail } : { met: null, detail: `${detail} (not judged: reduced scale)` });
}

/**
 * Every target, per pool when the run swept several (each pool's figures are judged on their own,
 * and the targets' names say which pool).
 */
export function evaluateTargets(cells: CellSummary[], o: { fullScale: boolean }): Target[] {
  const pools = [...new Set(cells.map((c) => c.pool))];
  return pools.flatMap((pool) => {
    const targets = poolTargets(cells.filter((c) => c.pool === pool), o);
    return pools.length > 1 ? targets.map((t) => ({ ...t, name: `pool ${pool}: ${t.name}` })) : targets;
  });
}

function poolTargets(cells: CellSummary[], { fullScale }: { fullScale: boolean }): Target[] {
  const targets: Target[] = [];
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const add = (name: string, relevant: CellSummary[], check: () => Omit<Target, 'name'>) => {
    if (relevant.length) targets.push({ name, ...check() });
  };
  const judged = judgedAt(fullScale);
  const runs = (cs: CellSummary[]) => cs.reduce((n, c) => n + c.runs.length, 0);
  const best = (cs: CellSummary[]) => cs.reduce((a, b) => (b.http.ordersPerSec.median > a.http.ordersPerSec.median ? b : a));

  const transactional = cells.filter(isTransactional);
  add('no oversold or leaked unit, no order without its success, in any transactional variant (every run audited)', transactional, () => {
    const bad = transactional.filter((c) => !c.http.clean || !c.direct.clean);
    return { met: bad.length === 0, detail: bad.length ? `damage in ${bad.map((c) => `${c.scenario}/${c.variant}`).join(', ')}` : `${runs(transactional)} runs x2 audited clean` };
  });

  const retry = cells.filter((c) => c.variant === 'serializable-retry');
  add('serializable-retry fails <= 1% of orders in every scenario (median)', retry, () => {
    const worst = Math.max(...retry.map((c) => c.http.failureRate.median));
    return { met: worst <= 0.01, detail: retry.map((c) => `${c.scenario} ${pct(c.http.failureRate.median)}`).join(', ') };
  });

  for (const [scenario, target] of Object.entries(THROUGHPUT_TARGETS) as [ScenarioName, number][]) {
    const tx = transactional.filter((c) => c.scenario === scenario);
    add(`best transactional variant in ${scenario} >= ${target.toLocaleString('en')} successful orders/s over HTTP (median)`, tx, () => {
      const b = best(tx);
      return judged(b.http.ordersPerSec.median >= target, `${b.variant}: ${Math.round(b.http.ordersPerSec.median)} orders/s`);
    });
  }

  const mixed = transactional.filter((c) => c.scenario === 'mixed-100');
  add(`best transactional variant in mixed-100 >= ${CEILING_SHARE_TARGET * 100}% of the database ceiling measured in the same run ` +
    '(pgbench, one-round-trip order; median)', mixed, () => {
    const b = best(mixed);
    if (!b.ceilingShare || !b.ceilingOrdersPerSec) return { met: null, detail: 'n/a: no ceiling measured (no pgbench on PATH, or it failed)' };
    return judged(b.ceilingShare.median >= CEILING_SHARE_TARGET, `${b.variant}: ${Math.round(b.http.ordersPerSec.median)} orders/s = ` +
      `${pct(b.ceilingShare.median)} of ${Math.round(b.ceilingOrdersPerSec.median)} orders/s`);
  });

  const hotBatched = cells.filter((c) => c.variant === 'batched' && c.scenario === 'hot-100');
  add(`batched in hot-100 >= ${BATCHED_HOT_CEILING_MULTIPLE}x the one-order-per-transaction ceiling over HTTP (median)`, hotBatched, () => {
    const b = hotBatched[0]!;
    if (!b.ceilingShare) return { met: null, detail: 'n/a: no ceiling measured (no pgbench on PATH, or it failed)' };
    return judged(b.ceilingShare.median >= BATCHED_HOT_CEILING_MULTIPLE, `${Math.round(b.http.ordersPerSec.median)} orders/s = ` +
      `${b.ceilingShare.median.toFixed(2)}x ${Math.round(b.ceilingOrdersPerSec!.median)}`);
  });

  // Not judged on the flash sale: there nearly every request is a refusal, and its cost falls on 100 successes.
  const oneTrip = cells.filter((c) => c.variant === 'one-round-trip' && c.scenario !== 'flash-sale');
  add(`one-round-trip: service CPU <= ${CPU_PER_ORDER_TARGET_MS} ms per successful order in every scenario but the flash sale (median)`, oneTrip, () => {
    const measured = oneTrip.filter((c) => c.serviceCpuMsPerOrder);
    if (!measured.length) return { met: null, detail: 'n/a: no /proc to read the service\'s CPU time from' };
    const worst = Math.max(...measured.map((c) => c.serviceCpuMsPerOrder!.median));
    return judged(worst <= CPU_PER_ORDER_TARGET_MS && measured.length === oneTrip.length,
      oneTrip.map((c) => `${c.scenario} ${c.serviceCpuMsPerOrder ? `${c.serviceCpuMsPerOrder.median.toFixed(3)} ms` : 'n/a'}`).join(', '));
  });

  const ordered = transactional.filter((c) => HTTP_SHARE_SCENARIOS.includes(c.scenario));
  add(`every transactional variant's HTTP orders/s >= ${HTTP_SHARE_TARGET * 100}% of its direct run in ${HTTP_SHARE_SCENARIOS.join(', ')} (median)`, ordered, () => {
    const low = ordered.filter((c) => c.httpToDirect.median < HTTP_SHARE_TARGET);
    return judged(low.length === 0, low.length ? `below: ${low.map((c) => `${c.scenario}/${c.variant} ${pct(c.httpToDirect.median)}`).join(', ')}` : 'all at or above');
  });

  // The service's own cost as a multiple of the HTTP floor (a bare app of the same framework
  // answering the same bodies, same round): what the service adds to HTTP and JSON.
  for (const [variant, limit] of Object.entries(FLOOR_MULTIPLE_TARGETS)) {
    const own = cells.filter((c) => c.variant === variant && c.scenario !== 'flash-sale');
    add(`${variant}: service CPU per order <= ${limit}x the HTTP floor's CPU per request in every scenario but the flash sale (median)`, own,
      () => floorVerdict(own, limit, (c) => c.scenario));
  }
  const storm = cells.filter((c) => c.scenario === 'flash-sale' && (SOLD_OUT_VARIANTS as string[]).includes(c.variant));
  add(`flash-sale: ${SOLD_OUT_VARIANTS.join(' and ')} spend <= ${SOLD_OUT_FLOOR_MULTIPLE}x the HTTP floor's CPU per request on the sold-out storm (median)`, storm,
    () => floorVerdict(storm, SOLD_OUT_FLOOR_MULTIPLE, (c) => c.variant));
  add(`flash-sale: ${SOLD_OUT_VARIANTS.join(' and ')} answer the storm at >= ${STORM_FLOOR_SHARE * 100}% of the HTTP floor's requests/s (median)`, storm, () => {
    const measured = storm.filter((c) => c.floorShare);
    if (measured.length < storm.length) return { met: null, detail: 'n/a: no HTTP floor measured' };
    return judged(measured.every((c) => c.floorShare!.median >= STORM_FLOOR_SHARE),
      measured.map((c) => `${c.variant} ${pct(c.floorShare!.median)}`).join(', '));
  });

  function floorVerdict(cs: CellSummary[], limit: number, name: (c: CellSummary) => string): Omit<Target, 'name'> {
    const measured = cs.filter((c) => c.floorMultiple);
    if (measured.length < cs.length) return { met: null, detail: 'n/a: no HTTP floor or no /proc to read CPU time from' };
    return judged(measured.every((c) => c.floorMultiple!.median <= limit),
      measured.map((c) => `${name(c)} ${c.floorMultiple!.median.toFixed(1)}x`).join(', '));
  }

  const flash = cells.filter((c) => c.scenario === 'flash-sale');
  const flashTx = flash.filter(isTransactional);
  add('flash-sale: every transactional variant sells exactly the units on sale (every run)', flashTx, () => {
    const off = flashTx.filter((c) => c.runs.some((r) => r.http.successes !== c.stock || r.direct.successes !== c.stock));
    return { met: off.length === 0, detail: off.length
      ? off.map((c) => `${c.variant}: ${c.runs.map((r) => `${r.http.successes}/${r.direct.successes}`).join(', ')} of ${c.stock}`).join('; ')
      : `exactly ${flashTx[0]!.stock} each` };
  });

  const redis = flash.find((c) => c.variant === 'redis');
  const dbOnly = flashTx.filter((c) => c.variant !== 'redis');
  if (redis && dbOnly.length) {
    const best = dbOnly.reduce((a, b) => (b.http.requestsPerSec.median > a.http.requestsPerSec.median ? b : a));
    const ratio = redis.http.requestsPerSec.median / best.http.requestsPerSec.median;
    targets.push({ name: 'flash-sale: redis serves the sold-out storm >= 3x faster than the best database-only variant (median)',
      met: ratio >= 3, detail: `redis ${Math.round(redis.http.requestsPerSec.median)} req/s vs ${best.variant} ${Math.round(best.http.requestsPerSec.median)} req/s (${ratio.toFixed(2)}x)` });
  }
  return targets;
}

/** Through the pooler, each variant's orders/s as a share of its direct rate at the same processes. */
export const POOLER_SHARE_TARGET = 0.9;
/** one-round-trip and batched at 2 and 4 processes, as a share of their one-process rate. */
export const SCALE_OUT_TARGETS = { 2: 1.0, 4: 0.95 } as const;

/** The scale-out targets: the pooler costs little, more processes cost no throughput, no 500, every audit clean. */
export function scaleOutTargets(s: ScaleOut, { fullScale }: { fullScale: boolean }): Target[] {
  const judged = judgedAt(fullScale);
  const ran = s.cells.filter((c) => c.ordersPerSec);
  const pooled = s.cells.filter((c) => c.path === 'pooler');
  const ratio = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(2)}x`);
  const targets: Target[] = [{
    name: 'scale-out: no 500 and every audit clean, directly and through the pooler',
    met: ran.every((c) => c.clean && c.internalErrors === 0),
    detail: `${s.runs.length} runs; ${ran.filter((c) => !c.clean || c.internalErrors).map((c) => `${c.variant} x${c.processes} ${c.path}`).join(', ') || 'none failed'}`,
  }];
  targets.push({
    name: `scale-out: through the pooler, each variant >= ${POOLER_SHARE_TARGET * 100}% of its direct orders/s at the same processes (median)`,
    ...(s.poolerMissing ? { met: null, detail: `n/a: ${s.poolerMissing}` }
      : judged(pooled.every((c) => (c.vsDirect ?? 0) >= POOLER_SHARE_TARGET),
        pooled.map((c) => `${c.variant} x${c.processes} ${ratio(c.vsDirect)}`).join(', '))),
  });
  const twoBatched = ran.find((c) => c.variant === 'batched' && c.processes === 2 && c.path === 'direct');
  if (twoBatched) {
    targets.push({
      name: `scale-out: batched with 2 processes >= ${BATCHED_TWO_PROCESSES_SHARE * 100}% of its one-process orders/s, directly (median)`,
      ...judged((twoBatched.vsOneProcess ?? 0) >= BATCHED_TWO_PROCESSES_SHARE, ratio(twoBatched.vsOneProcess)),
    });
  }
  for (const [processes, share] of Object.entries(SCALE_OUT_TARGETS)) {
    const cells = ran.filter((c) => ['one-round-trip', 'batched'].includes(c.variant) && c.processes === Number(processes));
    if (!cells.length) continue;
    targets.push({
      name: `scale-out: one-round-trip and batched at ${processes} processes >= ${share.toFixed(2)}x their one-process orders/s (median, each path)`,
      ...judged(cells.every((c) => (c.vsOneProcess ?? 0) >= share), cells.map((c) => `${c.variant} ${c.path} ${ratio(c.vsOneProcess)}`).join(', ')),
    });
  }
  return targets;
}

/**
 * The database's side: the order function's ceiling as a share of pgbench -N, per pool and scenario
 * that have both (median of the rounds); one target per pool, named by it when several ran.
 */
export function ceilingTargets(ceilings: CeilingRun[], { fullScale }: { fullScale: boolean }): Target[] {
  const both = ceilings.filter((c) => c.ordersPerSec && c.simpleUpdateTps);
  const pools = [...new Set(both.map((c) => c.pool))];
  return pools.map((pool) => {
    const mine = both.filter((c) => c.pool === pool);
    const scenarios = [...new Set(mine.map((c) => c.scenario))];
    const shares = scenarios.map((s) => ({ s, share: spread(mine.filter((c) => c.scenario === s).map((c) => c.ordersPerSec! / c.simpleUpdateTps!)).median }));
    const met = shares.every((x) => x.share >= SIMPLE_UPDATE_SHARE_TARGET);
    const detail = shares.map((x) => `${x.s} ${(x.share * 100).toFixed(0)}%`).join(', ');
    const name = `the place_order ceiling >= ${SIMPLE_UPDATE_SHARE_TARGET * 100}% of pgbench's built-in simple update (-N) at the same clients (median)`;
    return { name: pools.length > 1 ? `pool ${pool}: ${name}` : name,
      ...judgedAt(fullScale)(met, detail) };
  });
}

/** The concurrency sweep: batched holds its rate as users grow, and beats one-round-trip at 100 users. */
export function sweepTargets(s: ConcurrencySweep, { fullScale }: { fullScale: boolean }): Target[] {
  const judged = judgedAt(fullScale);
  const ran = s.cells;
  const targets: Target[] = [{
    name: 'concurrency sweep: no 500 and every audit clean',
    met: ran.every((c) => c.clean && c.internalErrors === 0),
    detail: `${s.runs.length} runs; ${ran.filter((c) => !c.clean || c.internalErrors).map((c) => `${c.scenario}/${c.variant} ${c.connections} users`).join(', ') || 'none failed'}`,
  }];
  const fewest = Math.min(...s.connections);
  const batched = ran.filter((c) => c.variant === 'batched' && c.connections > fewest);
  if (batched.length) {
    targets.push({
      name: `concurrency sweep: batched at every user count >= ${SWEEP_HOLD_SHARE * 100}% of its ${fewest}-user orders/s (median)`,
      ...judged(batched.every((c) => (c.vsFewest ?? 0) >= SWEEP_HOLD_SHARE),
        batched.map((c) => `${c.scenario} ${c.connections} ${c.vsFewest === null ? 'n/a' : `${c.vsFewest.toFixed(2)}x`}`).join(', ')),
    });
  }
  const { users, multiple } = SWEEP_BATCHED_OVER_ONE_TRIP;
  const at = ran.filter((c) => c.variant === 'batched' && c.connections === users && c.vsOneRoundTrip !== null);
  if (at.length) {
    targets.push({
      name: `concurrency sweep: batched >= ${multiple}x one-round-trip at ${users} users (median)`,
      ...judged(at.every((c) => c.vsOneRoundTrip! >= multiple), at.map((c) => `${c.scenario} ${c.vsOneRoundTrip!.toFixed(2)}x`).join(', ')),
    });
  }
  return targets;
}

/** With limits on, the ordinary buyers' success rate (median) at most this far below the no-bots run's. */
export const BOTS_SUCCESS_POINTS = 0.05;

/** The bots scenario: admission control keeps the ordinary buyers' successes; every audit clean. */
export function botsTargets(b: BotsResult, { fullScale }: { fullScale: boolean }): Target[] {
  const variants = [...new Set(b.cells.map((c) => c.variant))];
  const rate = (v: string, mode: string) => b.cells.find((c) => c.variant === v && c.mode === mode)?.successRate.median;
  const compared = variants.flatMap((v) => {
    const [none, on] = [rate(v, 'no bots'), rate(v, 'bots, limits on')];
    return none === undefined || on === undefined ? [] : [{ v, none, on }];
  });
  const targets: Target[] = [];
  // no-tx's damage is what it exists to show; every other variant, queued included, must be clean.
  const audited = b.cells.filter((c) => c.variant !== 'no-tx');
  if (audited.length) {
    targets.push({ name: 'bots: every run of every variant but no-tx audited clean', met: audited.every((c) => c.clean),
      detail: audited.filter((c) => !c.clean).map((c) => `${c.variant} (${c.mode})`).join(', ') || `${b.runs.length} runs` });
  }
  if (compared.length) {
    const pts = (x: number) => `${(x * 100).toFixed(1)}%`;
    const detail = compared.map((c) => `${c.v} ${pts(c.on)} vs ${pts(c.none)}`).join(', ');
    const met = compared.every((c) => c.on >= c.none - BOTS_SUCCESS_POINTS);
    targets.push({ name: `bots: with limits on, the ordinary buyers' success rate within ${BOTS_SUCCESS_POINTS * 100} points of the no-bots run (median)`,
      ...judgedAt(fullScale)(met, detail) });
  }
  return targets;
}

/** queued: its accepted requests/s in the flash sale over the redis variant's sold-out requests/s. */
export const QUEUED_STORM_SHARE = 0.9;
/** queued: its accepted orders/s in hot-100 over the best synchronous variant's orders/s. */
export const QUEUED_HOT_MULTIPLE = 2;
/** queued: time to placed p99 (ms) in hot-100's open loop at this share of its accepted rate. */
export const QUEUED_OPEN_SHARE = 0.75;
export const QUEUED_TIME_TO_PLACED_P99_MS = 1_000;

export function queuedTargets(q: QueuedResult, cells: CellSummary[], { fullScale }: { fullScale: boolean }): Target[] {
  const judged = judgedAt(fullScale);
  const targets: Target[] = [{
    name: 'queued: every run audited clean once drained (each 202 one order or one rejection, queue and reservations empty)',
    met: q.broken.length === 0 && q.summaries.every((s) => s.clean) && q.open.every((p) => p.problems.length === 0),
    detail: [...q.broken.map((b) => `broke off: ${b}`), ...q.summaries.flatMap((s) => s.problems), ...q.open.flatMap((p) => p.problems)].join('; ') ||
      `${q.runs.length + q.open.length} runs`,
  }];
  const flash = q.summaries.find((s) => s.scenario === 'flash-sale');
  const redisStorm = cells.find((c) => c.scenario === 'flash-sale' && c.variant === 'redis')?.http.requestsPerSec.median;
  if (flash && redisStorm) {
    const ratio = flash.requestsPerSec.median / redisStorm;
    const soldExactly = q.runs.filter((r) => r.scenario === 'flash-sale').every((r) => r.placed === r.stock);
    targets.push({ name: `queued: flash sale answered at >= ${QUEUED_STORM_SHARE * 100}% of redis's sold-out requests/s, exactly the units on sale sold`,
      ...judged(ratio >= QUEUED_STORM_SHARE && soldExactly,
        `${Math.round(flash.requestsPerSec.median)} vs ${Math.round(redisStorm)} req/s (${(ratio * 100).toFixed(0)}%), ${soldExactly ? 'sold exactly the stock' : 'NOT the stock sold'}`) });
  }
  const hot = q.summaries.find((s) => s.scenario === 'hot-100');
  const sync = cells.filter((c) => c.scenario === 'hot-100' && isTransactional(c)).sort((a, b) => b.http.ordersPerSec.median - a.http.ordersPerSec.median)[0];
  if (hot && sync) {
    const ratio = hot.acceptedPerSec.median / sync.http.ordersPerSec.median;
    targets.push({ name: `queued: hot-100 accepted orders/s >= ${QUEUED_HOT_MULTIPLE}x the best synchronous variant's orders/s`,
      ...judged(ratio >= QUEUED_HOT_MULTIPLE, `${Math.round(hot.acceptedPerSec.median)} vs ${sync.variant} ${Math.round(sync.http.ordersPerSec.median)} (${ratio.toFixed(2)}x)`) });
  }
  const open = q.open.find((p) => p.scenario === 'hot-100' && Math.abs(p.share - QUEUED_OPEN_SHARE) < 1e-9);
  if (open) {
    targets.push({ name: `queued: hot-100 open loop at ${QUEUED_OPEN_SHARE * 100}% of its accepted rate, time to placed p99 <= ${QUEUED_TIME_TO_PLACED_P99_MS} ms`,
      ...judged(open.timeToPlacedMs.p99 <= QUEUED_TIME_TO_PLACED_P99_MS,
        `${Math.round(open.offeredPerSec)}/s offered: p99 ${open.timeToPlacedMs.p99} ms (p50 ${open.timeToPlacedMs.p50}, p99.9 ${open.timeToPlacedMs.p999})`) });
  }
  return targets;
}
