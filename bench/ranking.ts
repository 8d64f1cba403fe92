import { TRANSACTIONAL_VARIANTS } from '../src/orders/variants/index.ts';
import type { CellSummary } from './summary.ts';

// Which correct variant is fastest in a scenario, claimed only where the repeats allow it: its
// slowest run must beat every other variant's fastest run. Otherwise the ranges overlap and the
// report says so instead of naming a winner.

export interface Ranking { pool: number; scenario: string; line: string }

/** One ranking per pool x scenario: variants compete only at the same pool size. */
export function rankScenarios(cells: CellSummary[]): Ranking[] {
  const groups = [...new Map(cells.map((c) => [`${c.pool}\u0000${c.scenario}`, { pool: c.pool, scenario: c.scenario }])).values()];
  return groups.flatMap(({ pool, scenario }) => {
    // The flash sale sells a fixed number of units: there, how fast the storm is answered counts.
    const figure = (c: CellSummary) => (scenario === 'flash-sale' ? c.http.requestsPerSec : c.http.ordersPerSec);
    const unit = scenario === 'flash-sale' ? 'req/s' : 'orders/s';
    const ranked = cells.filter((c) => c.pool === pool && c.scenario === scenario && (TRANSACTIONAL_VARIANTS as string[]).includes(c.variant))
      .sort((a, b) => figure(b).median - figure(a).median);
    if (ranked.length < 2) return [];
    const [best, ...rest] = ranked as [CellSummary, ...CellSummary[]];
    const overlapping = rest.filter((c) => figure(c).max >= figure(best).min);
    const range = (c: CellSummary) => `${c.variant} ${Math.round(figure(c).min)}-${Math.round(figure(c).max)}`;
    const line = best.runs.length < 2
      ? `${best.variant} has the highest ${unit} (one run each: no range to judge it by)`
      : overlapping.length
        ? `no clear winner: ${range(best)} ${unit} overlaps ${overlapping.map(range).join(', ')}`
        : `${best.variant} is fastest: ${range(best)} ${unit}, above every other run (next ${range(rest[0]!)})`;
    return [{ pool, scenario, line }];
  });
}
