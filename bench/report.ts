import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Table from 'cli-table3';
import { renderChart } from './chart.ts';
import type { Machine } from './machine.ts';
import type { Cell } from './run.ts';
import { SCENARIOS, SCENARIO_NAMES } from './scenarios.ts';
import { failureRate, type Target } from './targets.ts';

// The comparison, four ways: a table per scenario on the console, the same as markdown, every
// figure as JSON (with what it was measured on), and an SVG chart.

export interface Report { cells: Cell[]; targets: Target[]; machine: Machine; quick: boolean; outDir: string }

const HEADER = ['variant', 'orders/s', 'req/s', 'p50 ms', 'p75 ms', 'p99 ms', 'ok %', 'failures by code',
  'audit', 'direct req/s', 'HTTP/direct', 'reference TPS / p75 / failed'];

function rows(cells: Cell[]): string[][] {
  return cells.map((c) => {
    const h = c.http;
    const ref = SCENARIOS[c.scenario].reference[c.variant];
    return [
      c.variant,
      fmt(h.ordersPerSec),
      fmt(h.requestsPerSec),
      String(h.latencyMs.p50),
      String(h.latencyMs.p75),
      String(h.latencyMs.p99),
      ((h.successes / Math.max(1, h.requests)) * 100).toFixed(2),
      Object.entries(h.failures).sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${n}`).join(', ') || '-',
      auditVerdict(c),
      fmt(c.direct.requestsPerSec),
      `${(c.httpToDirect * 100).toFixed(0)}%`,
      ref ? `${ref.tps} / ${ref.p75} / ${ref.failed}` : '-',
    ];
  });
}

function auditVerdict(c: Cell): string {
  if (c.http.audit.clean && c.direct.audit.clean) return 'clean';
  const found = (['http', 'direct'] as const)
    .filter((mode) => !c[mode].audit.clean)
    .map((mode) => `${mode}: ${c[mode].audit.problems.join(', ')}`);
  return `${c.variant === 'no-tx' ? 'damage (expected)' : 'FAILED'}: ${found.join('; ')}`;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en');

function scenarioTitle(name: Cell['scenario'], cells: Cell[]) {
  const { connections, ordersPerConnection } = cells[0]!.scale;
  const stock = name === 'flash-sale' ? `, ${cells[0]!.stock} units on sale` : '';
  return `${name}: ${SCENARIOS[name].description} — run at ${connections} users x ${ordersPerConnection} orders${stock}`;
}

function byScenario(cells: Cell[]) {
  return SCENARIO_NAMES.map((s) => [s, cells.filter((c) => c.scenario === s)] as const).filter(([, cs]) => cs.length);
}

function targetLines(targets: Target[]) {
  return targets.map((t) => `${t.met === null ? 'n/a ' : t.met ? 'MET ' : 'MISS'}  ${t.name}: ${t.detail}`);
}

function consoleReport(r: Report): string {
  const parts = byScenario(r.cells).map(([name, cells]) => {
    const table = new Table({ head: HEADER, style: { head: [], border: [] }, wordWrap: true,
      colWidths: [20, 9, 9, 7, 7, 7, 7, 26, 22, 9, 8, 22] });
    table.push(...rows(cells));
    return `${scenarioTitle(name, cells)}\n${table.toString()}`;
  });
  return [...parts, 'Targets:', ...targetLines(r.targets).map((l) => `  ${l}`)].join('\n\n');
}

function markdownReport(r: Report): string {
  const m = r.machine;
  const lines = [
    `# Bench results ${m.date}${r.quick ? ' (quick smoke run)' : ''}`,
    '',
    `${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, PostgreSQL ${m.postgres.version} ` +
      `(${m.postgres.origin}), pool ${m.poolSize}, git ${m.gitSha.slice(0, 10)}. ` +
      'Service, PostgreSQL, Redis and the load generator share the machine. "direct" drives the same ' +
      'variant code without HTTP at the same concurrency and pool; HTTP/direct compares requests/s.',
  ];
  for (const [name, cells] of byScenario(r.cells)) {
    lines.push('', `## ${scenarioTitle(name, cells)}`, '', ...markdownTable(HEADER, rows(cells)));
  }
  lines.push('', '## Targets', '', ...targetLines(r.targets).map((l) => `- ${l}`), '');
  return lines.join('\n');
}

/** A markdown table's lines; a `|` inside a cell would end it early. */
export function markdownTable(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.map((c) => c.replaceAll('|', '/')).join(' | ')} |`)];
}

/** Where a run's files go, without extension: its start time, then what kind of run (`-quick`, `-faults`). */
export async function resultBase(outDir: string, date: string, suffix: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  return join(outDir, `${date.replace(/[:.]/g, '-')}${suffix}`);
}

export async function writeReport(r: Report): Promise<{ console: string; files: string[] }> {
  const base = await resultBase(r.outDir, r.machine.date, r.quick ? '-quick' : '');
  const json = {
    machine: r.machine,
    quick: r.quick,
    targets: r.targets,
    cells: r.cells.map((c) => ({ ...c, failureRate: failureRate(c), reference: SCENARIOS[c.scenario].reference[c.variant] ?? null })),
  };
  const files = [`${base}.json`, `${base}.md`, `${base}.svg`];
  await writeFile(files[0]!, `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(files[1]!, markdownReport(r));
  await writeFile(files[2]!, await renderChart(r.cells, `Order placement, ${r.machine.cpus} CPUs, PostgreSQL ${r.machine.postgres.version}, pool ${r.machine.poolSize}`));
  return { console: consoleReport(r), files };
}
