import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { Cell } from './run.ts';
import { SCENARIO_NAMES } from './scenarios.ts';

// Throughput and p75 latency per variant per scenario, as a vega-lite spec rendered to SVG.

export async function renderChart(cells: Cell[], title: string): Promise<string> {
  const values = cells.map((c) => ({
    scenario: c.scenario,
    variant: c.variant,
    // A flash sale sells a fixed number of units: how fast it answers the storm is what counts.
    throughput: Math.round(c.scenario === 'flash-sale' ? c.http.requestsPerSec : c.http.ordersPerSec),
    p75: c.http.latencyMs.p75,
  }));
  const panel = (field: string, axisTitle: string) => ({
    facet: { column: { field: 'scenario', type: 'nominal', title: null, sort: SCENARIO_NAMES } },
    spec: {
      width: 150,
      height: 200,
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'variant', type: 'nominal', title: null, sort: null, axis: { labelAngle: -40 } },
        y: { field, type: 'quantitative', title: axisTitle },
        color: { field: 'variant', type: 'nominal', legend: null, sort: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
  });
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    vconcat: [
      panel('throughput', 'orders/s (flash-sale: req/s)'),
      panel('p75', 'p75 latency (ms)'),
    ],
  } as unknown as vl.TopLevelSpec;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
