import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { OpenPoint } from './open-run.ts';
import { SCENARIO_NAMES } from './scenarios.ts';
import type { CellSummary } from './summary.ts';

// The charts, as vega-lite specs rendered to SVG: closed-loop throughput and p99 per variant per
// scenario (bars at the median, a line over the range of the repeats), and open-loop latency
// against offered load per variant (p50, p99, p99.9 on a log scale).

async function render(spec: unknown): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec as vl.TopLevelSpec).spec), { renderer: 'none' });
  return view.toSVG();
}

export async function renderChart(cells: CellSummary[], title: string): Promise<string> {
  // A pool sweep: one column per pool x scenario, pools in the order run, scenarios in theirs.
  const pools = [...new Set(cells.map((c) => c.pool))];
  const column = (c: CellSummary) => (pools.length > 1 ? `${c.scenario}, pool ${c.pool}` : c.scenario);
  const columns = pools.flatMap((pool) => SCENARIO_NAMES.flatMap((s) => {
    const c = cells.find((x) => x.pool === pool && x.scenario === s);
    return c ? [column(c)] : [];
  }));
  const values = cells.flatMap((c) => {
    // A flash sale sells a fixed number of units: how fast it answers the storm is what counts.
    const throughput = c.scenario === 'flash-sale' ? c.http.requestsPerSec : c.http.ordersPerSec;
    return [
      { panel: 'throughput', scenario: column(c), variant: c.variant, ...throughput },
      { panel: 'p99', scenario: column(c), variant: c.variant, ...c.http.p99 },
    ];
  });
  const panel = (name: string, axisTitle: string) => ({
    transform: [{ filter: { field: 'panel', equal: name } }],
    facet: { column: { field: 'scenario', type: 'nominal', title: null, sort: columns } },
    spec: {
      width: 150,
      height: 200,
      encoding: { x: { field: 'variant', type: 'nominal', title: null, sort: null, axis: { labelAngle: -40 } } },
      layer: [
        { mark: { type: 'bar', tooltip: true },
          encoding: { y: { field: 'median', type: 'quantitative', title: axisTitle },
            color: { field: 'variant', type: 'nominal', legend: null, sort: null } } },
        { mark: { type: 'rule', color: 'black' },
          encoding: { y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  });
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    vconcat: [panel('throughput', 'orders/s (flash-sale: req/s)'), panel('p99', 'p99 latency (ms)')],
  });
}

export async function renderOpenLoopChart(points: OpenPoint[], title: string): Promise<string> {
  const values = points.flatMap((p) => ([['p50', p.latencyMs.p50], ['p99', p.latencyMs.p99], ['p99.9', p.latencyMs.p999]] as const)
    .map(([percentile, ms]) => ({ scenario: p.scenario, variant: p.variant, offered: Math.round(p.offeredPerSec), percentile, ms: Math.max(ms, 0.1) })));
  return render({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    facet: {
      column: { field: 'scenario', type: 'nominal', title: null, sort: SCENARIO_NAMES },
      row: { field: 'percentile', type: 'nominal', title: null, sort: ['p50', 'p99', 'p99.9'] },
    },
    spec: {
      width: 260,
      height: 180,
      mark: { type: 'line', point: true, tooltip: true },
      encoding: {
        x: { field: 'offered', type: 'quantitative', title: 'offered load (requests/s)' },
        y: { field: 'ms', type: 'quantitative', title: 'latency from due time (ms)', scale: { type: 'log' } },
        color: { field: 'variant', type: 'nominal', sort: null },
      },
    },
    resolve: { scale: { x: 'independent' } },
  });
}
