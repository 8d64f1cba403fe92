import type { VariantName } from '../src/orders/variants/index.ts';
import type { CeilingRun } from './ceiling.ts';
import type { FloorRun } from './floor.ts';
import type { Cell } from './run.ts';
import type { Scale, ScenarioName } from './scenarios.ts';

// The repeats of one variant x scenario, folded into a median and a range per figure. Verdicts
// (targets, "faster") use the median; the range says how far one run can be from another.

export interface Spread { median: number; min: number; max: number }

export interface CellSummary {
  /** Database connections of the service and of the direct run. */
  pool: number;
  scenario: ScenarioName;
  variant: VariantName;
  scale: Scale;
  stock: number;
  runs: Cell[];
  http: ModeSummary;
  direct: ModeSummary;
  httpToDirect: Spread;
  /** The service's CPU time per successful HTTP order (ms); null where it could not be read (no /proc). */
  serviceCpuMsPerOrder: Spread | null;
  /** The scenario's database ceiling (pgbench, committed orders/s) in the rounds of these runs; null without pgbench. */
  ceilingOrdersPerSec: Spread | null;
  /** Each run's HTTP orders/s over its round's ceiling. */
  ceilingShare: Spread | null;
  /**
   * The service's CPU per successful order (per request in the flash sale, where nearly every
   * request is a refusal) over the HTTP floor's CPU per request in the same round; null without
   * a floor or /proc.
   */
  floorMultiple: Spread | null;
  /** Each run's HTTP requests/s over its round's floor requests/s. */
  floorShare: Spread | null;
}

export interface ModeSummary {
  ordersPerSec: Spread;
  requestsPerSec: Spread;
  /** Requests that failed for a reason other than a legitimate sell-out, as a share. */
  failureRate: Spread;
  p50: Spread;
  p99: Spread;
  p999: Spread;
  /** Failures by code, summed over the runs. */
  failures: Record<string, number>;
  requests: number;
  /** Every run's audit was clean. */
  clean: boolean;
  /** The problems of the runs that were not, with their round. */
  problems: string[];
}

export function spread(values: number[]): Spread {
  if (!values.length) return { median: 0, min: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)! };
}

/** Requests that failed for a reason other than a legitimate sell-out. */
export function failureRate(c: Cell, mode: 'http' | 'direct' = 'http'): number {
  const m = c[mode];
  const soldOut = c.scenario === 'flash-sale' ? (m.failures.OUT_OF_STOCK ?? 0) : 0;
  return m.requests ? (m.requests - m.successes - soldOut) / m.requests : 0;
}

function mode(runs: Cell[], which: 'http' | 'direct'): ModeSummary {
  const failures: Record<string, number> = {};
  for (const r of runs) for (const [code, n] of Object.entries(r[which].failures)) failures[code] = (failures[code] ?? 0) + n;
  return {
    ordersPerSec: spread(runs.map((r) => r[which].ordersPerSec)),
    requestsPerSec: spread(runs.map((r) => r[which].requestsPerSec)),
    failureRate: spread(runs.map((r) => failureRate(r, which))),
    p50: spread(runs.map((r) => r[which].latencyMs.p50)),
    p99: spread(runs.map((r) => r[which].latencyMs.p99)),
    p999: spread(runs.map((r) => r[which].latencyMs.p999)),
    failures,
    requests: runs.reduce((n, r) => n + r[which].requests, 0),
    clean: runs.every((r) => r[which].audit.clean),
    problems: runs.filter((r) => !r[which].audit.clean).map((r) => `round ${r.round}: ${r[which].audit.problems.join(', ')}`),
  };
}

/** The spread of the figures that exist; null when none does. */
function spreadOrNull(values: (number | null | undefined)[]): Spread | null {
  const known = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return known.length ? spread(known) : null;
}

/** The ceiling measured in a run's round, for its pool and scenario. */
export function ceilingOf(run: Pick<Cell, 'round' | 'pool' | 'scenario'>, ceilings: CeilingRun[]): number | null {
  return ceilings.find((c) => c.round === run.round && c.pool === run.pool && c.scenario === run.scenario)?.ordersPerSec ?? null;
}

/** The HTTP floor measured in a run's round, for its pool and scenario. */
export function floorOf(run: Pick<Cell, 'round' | 'pool' | 'scenario'>, floors: FloorRun[]): FloorRun | null {
  return floors.find((f) => f.round === run.round && f.pool === run.pool && f.scenario === run.scenario && f.requestsPerSec) ?? null;
}

/** What a run's service CPU is compared with the floor's: per request in the flash sale, per order elsewhere. */
export function cpuPerUnitMs(run: Cell): number | null {
  return (run.scenario === 'flash-sale' ? run.serviceCpu?.perRequestMs : run.serviceCpu?.perOrderMs) ?? null;
}

/** One summary per pool x variant x scenario, in the order the cells' triples first appear. */
export function summarize(cells: Cell[], ceilings: CeilingRun[] = [], floors: FloorRun[] = []): CellSummary[] {
  const groups = new Map<string, Cell[]>();
  for (const c of cells) {
    const key = `${c.pool}\u0000${c.scenario}\u0000${c.variant}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  return [...groups.values()].map((runs) => {
    const ceiling = runs.map((r) => ceilingOf(r, ceilings));
    return {
      pool: runs[0]!.pool, scenario: runs[0]!.scenario, variant: runs[0]!.variant, scale: runs[0]!.scale, stock: runs[0]!.stock, runs,
      http: mode(runs, 'http'), direct: mode(runs, 'direct'), httpToDirect: spread(runs.map((r) => r.httpToDirect)),
      serviceCpuMsPerOrder: spreadOrNull(runs.map((r) => r.serviceCpu?.perOrderMs)),
      ceilingOrdersPerSec: spreadOrNull(ceiling),
      ceilingShare: spreadOrNull(runs.map((r, k) => (ceiling[k] ? r.http.ordersPerSec / ceiling[k] : null))),
      floorMultiple: spreadOrNull(runs.map((r) => {
        const floorCpu = floorOf(r, floors)?.cpuMsPerRequest;
        const own = cpuPerUnitMs(r);
        return floorCpu && own !== null ? own / floorCpu : null;
      })),
      floorShare: spreadOrNull(runs.map((r) => {
        const floor = floorOf(r, floors)?.requestsPerSec;
        return floor ? r.http.requestsPerSec / floor : null;
      })),
    };
  });
}
