import type { VariantName } from '../src/orders/variants/index.ts';
import type { Scale, ScenarioName } from './scenarios.ts';

// The order in which cells run, and how long that should take. Repeats are interleaved: each
// round runs every scenario's variants once, so the runs of one cell lie minutes apart and share
// the machine's drift with the others; each round starts the variants at another place in their
// list, so that no variant always runs first (cold) or right after the same neighbour.

// A pool sweep (--pool 8,16,32) runs every pool size within each round, for the same reason.

/** The service's database connections when --pool is not given. */
export const DEFAULT_POOL = 16;

export interface PlannedCell { round: number; pool: number; scenario: ScenarioName; variant: VariantName; scale: Scale }

export function planRounds(scenarios: { name: ScenarioName; scale: Scale }[], variants: VariantName[], repeat: number,
  pools: readonly number[] = [DEFAULT_POOL]): PlannedCell[] {
  const step = Math.max(1, Math.round(variants.length / repeat));
  const cells: PlannedCell[] = [];
  for (let r = 0; r < repeat; r++) {
    const shift = (r * step) % variants.length;
    const order = [...variants.slice(shift), ...variants.slice(0, shift)];
    for (const pool of pools) {
      for (const s of scenarios) for (const variant of order) cells.push({ round: r + 1, pool, scenario: s.name, variant, scale: s.scale });
    }
  }
  return cells;
}

/** Whether a planned cell is the first of its round, pool and scenario: where that scenario's ceiling runs. */
export function startsGroup(cells: PlannedCell[], k: number): boolean {
  const [a, b] = [cells[k - 1], cells[k]!];
  return !a || a.round !== b.round || a.pool !== b.pool || a.scenario !== b.scenario;
}

// Rough rates for an estimate before anything ran (a full run on 2 shared cores: ~300 requests/s
// over HTTP, ~450 directly), and what a cell costs besides its measured orders: a fresh schema,
// the service started and stopped, two warm-ups, seeds and audits.
const HTTP_PER_SEC = 300;
const DIRECT_PER_SEC = 450;
const CELL_OVERHEAD_SEC = 9;
const OPEN_SETUP_SEC = 8;
const OPEN_STEP_OVERHEAD_SEC = 2;

/** A sold-out storm's refusals run several times faster than orders (the flash sale: ~1,500/s over HTTP). */
const SOLD_OUT_SPEED_UP = 5;

export function estimateCellSec(scale: Scale, soldOut = false): number {
  const orders = scale.connections * scale.ordersPerConnection;
  return CELL_OVERHEAD_SEC + (orders / HTTP_PER_SEC + orders / DIRECT_PER_SEC) / (soldOut ? SOLD_OUT_SPEED_UP : 1);
}

/** One HTTP-only run (the settings' cost): the service started, a warm-up, the measured orders. */
export function estimateHttpRunSec(scale: Scale): number {
  return CELL_OVERHEAD_SEC / 2 + (scale.connections * scale.ordersPerConnection) / HTTP_PER_SEC;
}

/**
 * A ceiling run: the schema and seed, then pgbench for its duration and pgbench -N as long beside
 * it (the flash sale: its attempts at ~2,000/s, and no -N).
 */
export function estimateCeilingSec(scale: Scale, durationSec: number, sellsOut: boolean): number {
  return 3 + (sellsOut ? (scale.connections * scale.ordersPerConnection) / 2000 : 2 * durationSec);
}

/** An HTTP floor run of `requests` measured requests: the bare app started, a warm-up of a tenth, ~5,000 requests/s. */
export function estimateFloorSec(requests: number): number {
  return 3 + (1.1 * requests) / 5000;
}

export function estimateOpenSec(steps: number, durationSec: number): number {
  return OPEN_SETUP_SEC + steps * (durationSec + OPEN_STEP_OVERHEAD_SEC);
}

/** A lifecycle cell: its orders at a walking pace, then the payment deadline, the settling, the audit. */
export function estimateLifecycleSec({ buyers, ordersPerBuyer }: { buyers: number; ordersPerBuyer: number }): number {
  return CELL_OVERHEAD_SEC + (buyers * ordersPerBuyer) / 100 + 6;
}

/** Tracks work done against the estimate, and extrapolates what is left from the pace so far. */
export function eta(totalEstimateSec: number) {
  const started = Date.now();
  let doneEstimateSec = 0;
  return {
    done(estimateSec: number) { doneEstimateSec += estimateSec; },
    line(): string {
      const elapsed = (Date.now() - started) / 1000;
      const left = doneEstimateSec > 0 ? ((totalEstimateSec - doneEstimateSec) * elapsed) / doneEstimateSec : totalEstimateSec - elapsed;
      return `${minutes(elapsed)} elapsed, about ${minutes(Math.max(0, left))} left`;
    },
  };
}

export function minutes(sec: number): string {
  return sec < 90 ? `${Math.round(sec)} s` : `${Math.round(sec / 60)} min`;
}
