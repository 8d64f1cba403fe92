import type { VariantName } from '../src/orders/variants/index.ts';
import { runHttpWith, type CellContext } from './run.ts';
import type { Scenario, ScenarioName } from './scenarios.ts';
import { spread, type Spread } from './summary.ts';

// The concurrency sweep: the same scenario's orders over HTTP at several user counts (16, 100,
// 300 by default), interleaved round by round. A strategy that collapses as buyers arrive (many
// small batches locking the same hot rows at once, a hot row's lock queue growing with every
// client) shows as orders/s falling with the users; group commit should hold its rate or gain.
// Every run places about the same number of orders (users x orders each), so that runs with many
// users are not shorter; every run is audited.

/** The users of a full run's sweep. */
export const DEFAULT_SWEEP_CONNECTIONS = [16, 100, 300];
/** Scenarios and variants the full run sweeps: the hot-row shapes, group commit against one order per transaction. */
export const SWEEP_SCENARIOS: ScenarioName[] = ['mixed-100', 'hot-100'];
export const SWEEP_VARIANTS: VariantName[] = ['one-round-trip', 'batched'];
/** Orders of one run in total, and warm-up orders in total (full run). */
export const SWEEP_ORDERS = 3000;
export const SWEEP_WARMUP = 600;

export interface SweepRun {
  scenario: ScenarioName;
  variant: VariantName;
  connections: number;
  round: number;
  /** Measured requests (users x orders each). */
  requests: number;
  ordersPerSec: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  internalErrors: number;
  clean: boolean;
}

export interface SweepCell {
  scenario: ScenarioName;
  variant: VariantName;
  connections: number;
  ordersPerSec: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  /** Median orders/s over the same variant's at the sweep's fewest users. */
  vsFewest: number | null;
  /** Median orders/s over one-round-trip's at the same users (null for one-round-trip, or when it did not run). */
  vsOneRoundTrip: number | null;
  internalErrors: number;
  clean: boolean;
}

export interface ConcurrencySweep {
  connections: number[];
  runs: SweepRun[];
  cells: SweepCell[];
}

/** Orders per user and warm-up orders per user for a run of `connections` users placing about `orders` and `warmup` in total. */
export function sweepScale(connections: number, orders: number, warmup: number) {
  return {
    scale: { connections, ordersPerConnection: Math.max(1, Math.ceil(orders / connections)) },
    warmupOrdersPerConnection: Math.max(1, Math.ceil(warmup / connections)),
  };
}

/**
 * Runs scenarios x variants x connections, `repeat` rounds; each round walks the user counts and
 * the variants in the other direction, so that neither end and neither variant always runs first.
 */
export async function runConcurrencySweep(scenarios: Scenario[], variants: VariantName[], connections: number[],
  o: { orders: (users: number) => number; warmup: (users: number) => number; repeat: number },
  ctx: Omit<CellContext, 'round' | 'label' | 'warmupOrdersPerConnection'>,
  progress: { before(label: string): void; after(users: number): void }): Promise<ConcurrencySweep> {
  const runs: SweepRun[] = [];
  for (let round = 1; round <= o.repeat; round++) {
    const order = round % 2 ? connections : [...connections].reverse();
    for (const scenario of scenarios) {
      for (const n of order) {
        for (const variant of round % 2 ? variants : [...variants].reverse()) {
          const label = `[sweep round ${round}] ${scenario.name} ${variant} ${n} users`;
          progress.before(label);
          const { scale, warmupOrdersPerConnection } = sweepScale(n, o.orders(n), o.warmup(n));
          const { http } = await runHttpWith(scenario, variant, scale, { ...ctx, round, label, warmupOrdersPerConnection }, {});
          progress.after(n);
          runs.push({
            scenario: scenario.name, variant, connections: n, round, requests: http.requests, ordersPerSec: http.ordersPerSec,
            p50Ms: http.latencyMs.p50, p99Ms: http.latencyMs.p99, failed: http.requests - http.successes,
            internalErrors: http.failures.INTERNAL ?? 0, clean: http.audit.clean,
          });
        }
      }
    }
  }
  return { connections, runs, cells: summarizeSweep(runs, connections) };
}

/** Per scenario, variant and user count: medians and ranges of the rounds, and the ratios of their medians. */
export function summarizeSweep(runs: SweepRun[], connections: number[]): SweepCell[] {
  const of = (s: ScenarioName, v: VariantName, n: number) => runs.filter((r) => r.scenario === s && r.variant === v && r.connections === n);
  const median = (rs: SweepRun[]) => (rs.length ? spread(rs.map((r) => r.ordersPerSec)).median : null);
  const fewest = Math.min(...connections);
  const keys = [...new Map(runs.map((r) => [`${r.scenario}/${r.variant}`, r])).values()];
  return keys.flatMap(({ scenario, variant }) => connections.filter((n) => of(scenario, variant, n).length).map((n) => {
    const mine = of(scenario, variant, n);
    const own = median(mine)!;
    const base = median(of(scenario, variant, fewest));
    const oneTrip = variant === 'one-round-trip' ? null : median(of(scenario, 'one-round-trip', n));
    return {
      scenario, variant, connections: n,
      ordersPerSec: spread(mine.map((r) => r.ordersPerSec)),
      p50Ms: spread(mine.map((r) => r.p50Ms)),
      p99Ms: spread(mine.map((r) => r.p99Ms)),
      vsFewest: base ? own / base : null,
      vsOneRoundTrip: oneTrip ? own / oneTrip : null,
      internalErrors: mine.reduce((k, r) => k + r.internalErrors, 0),
      clean: mine.every((r) => r.clean),
    };
  }));
}
