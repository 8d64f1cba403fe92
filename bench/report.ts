import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Table from 'cli-table3';
import type { BotsResult } from './bots.ts';
import type { QueuedResult } from './queued.ts';
import type { CeilingRun } from './ceiling.ts';
import type { ConcurrencySweep } from './concurrency.ts';
import type { FloorRun } from './floor.ts';
import { renderChart, renderOpenLoopChart } from './chart.ts';
import { LIFECYCLE, type LifecycleCell } from './lifecycle.ts';
import { commitLine, type Machine } from './machine.ts';
import type { ScaleOut } from './scale-out.ts';
import type { SettingsCost } from './settings-cost.ts';
import type { OpenPoint } from './open-run.ts';
import { minutes } from './plan.ts';
import { rankScenarios } from './ranking.ts';
import { SCENARIOS, SCENARIO_NAMES } from './scenarios.ts';
import { spread, type CellSummary, type Spread } from './summary.ts';
import type { Target } from './targets.ts';

// The comparison, four ways: tables per scenario on the console, the same as markdown, every
// figure as JSON (every run, with what it was measured on), and SVG charts. Closed-loop figures
// are the median of the repeats with their range; open-loop figures are one run per rate.

export interface Report {
  cells: CellSummary[];
  /** The database ceiling per round, pool and scenario. */
  ceilings: CeilingRun[];
  /** Why no ceiling was measured (no pgbench on PATH, --no-ceiling); null when it was. */
  ceilingMissing: string | null;
  /** The HTTP floor per round, pool and scenario. */
  floors: FloorRun[];
  /** The pool sizes the closed loop ran at. */
  pools: number[];
  open: OpenPoint[];
  lifecycle: LifecycleCell[];
  /** The bots scenario; null when not run. */
  bots: BotsResult | null;
  /** What metrics, logs and the session cache cost; null when not measured. */
  settingsCost: SettingsCost | null;
  /** Many service processes, directly and through a pooler; null when not measured. */
  scaleOut: ScaleOut | null;
  /** The same orders at several user counts; null when not measured. */
  sweep: ConcurrencySweep | null;
  /** The queued variant (asynchronous placement); null when not run. */
  queued: QueuedResult | null;
  targets: Target[];
  machine: Machine;
  quick: boolean;
  repeat: number;
  /** Wall-clock seconds the whole run took. */
  tookSec: number;
  outDir: string;
}

const HEADER = ['variant', 'orders/s', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'failed %', 'failures by code (all runs)',
  'audit', 'direct req/s', 'HTTP/direct', 'service CPU ms/order', 'x floor', 'of ceiling', 'reference TPS / p75 / failed'];

const fmt = (n: number) => Math.round(n).toLocaleString('en');
const ms = (n: number) => (n >= 100 ? fmt(n) : String(Math.round(n * 10) / 10));
const pct = (n: number) => (n * 100).toFixed(2);
const cpuMs = (n: number) => (n >= 10 ? String(Math.round(n)) : n.toFixed(3));

/** The median, then the range of the repeats when there is more than one. */
function ranged(s: Spread, show: (n: number) => string, runs: number): string {
  return runs > 1 && s.min !== s.max ? `${show(s.median)} (${show(s.min)}-${show(s.max)})` : show(s.median);
}

const NO_TX_NOTE = 'no-tx: without a transaction a failing write leaves the earlier ones committed, so orders its ' +
  'clients were told failed (ordersWithoutSuccess), oversold or leaked units and unaccounted points are its expected damage.';

function rows(cells: CellSummary[]): string[][] {
  return cells.map((c) => {
    const h = c.http;
    const n = c.runs.length;
    const ref = SCENARIOS[c.scenario].reference[c.variant];
    return [
      c.variant,
      ranged(h.ordersPerSec, fmt, n),
      ranged(h.requestsPerSec, fmt, n),
      ranged(h.p50, ms, n),
      ranged(h.p99, ms, n),
      ranged(h.p999, ms, n),
      ranged(h.failureRate, pct, n),
      Object.entries(h.failures).sort((a, b) => b[1] - a[1]).map(([code, k]) => `${code} ${k}`).join(', ') || '-',
      auditVerdict(c),
      ranged(c.direct.requestsPerSec, fmt, n),
      ranged(c.httpToDirect, (x) => `${(x * 100).toFixed(0)}%`, n),
      c.serviceCpuMsPerOrder ? ranged(c.serviceCpuMsPerOrder, cpuMs, n) : 'n/a',
      c.floorMultiple ? ranged(c.floorMultiple, (x) => `${x.toFixed(1)}x`, n) : 'n/a',
      c.ceilingShare ? ranged(c.ceilingShare, (x) => `${(x * 100).toFixed(0)}%`, n) : 'n/a',
      ref ? `${ref.tps} / ${ref.p75} / ${ref.failed}` : '-',
    ];
  });
}

function auditVerdict(c: CellSummary): string {
  if (c.http.clean && c.direct.clean) return 'clean';
  const found = (['http', 'direct'] as const)
    .filter((mode) => !c[mode].clean)
    .map((mode) => `${mode}: ${c[mode].problems.join('; ')}`);
  return `${c.variant === 'no-tx' ? 'damage (expected, see below)' : 'FAILED'}: ${found.join('; ')}`;
}

const OPEN_HEADER = ['variant', 'offered/s', 'of capacity', 'orders/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'late', 'unsent',
  'ok %', 'failures by code', 'audit'];

function openRows(points: OpenPoint[]): string[][] {
  return points.map((p) => [
    p.variant, fmt(p.offeredPerSec), p.share === null ? '-' : `${Math.round(p.share * 100)}%`, fmt(p.ordersPerSec),
    ms(p.latencyMs.p50), ms(p.latencyMs.p99), ms(p.latencyMs.p999), fmt(p.late), fmt(p.unsent),
    pct(p.successes / Math.max(1, p.scheduled)),
    Object.entries(p.failures).sort((a, b) => b[1] - a[1]).map(([code, k]) => `${code} ${k}`).join(', ') || '-',
    p.audit.clean ? 'clean' : `${p.variant === 'no-tx' ? 'damage (expected)' : 'FAILED'}: ${p.audit.problems.join(', ')}`,
  ]);
}

function scenarioTitle(name: CellSummary['scenario'], cells: CellSummary[], r: Pick<Report, 'pools'>) {
  const { connections, ordersPerConnection } = cells[0]!.scale;
  const stock = name === 'flash-sale' ? `, ${cells[0]!.stock} units on sale` : '';
  const runs = Math.max(...cells.map((c) => c.runs.length));
  return `${r.pools.length > 1 ? `pool ${cells[0]!.pool}, ` : ''}${name}: closed loop, ${connections} users x ${ordersPerConnection} orders${stock}, ` +
    `${runs} run${runs > 1 ? 's' : ''} per variant${runs > 1 ? ': median (min-max)' : ''}`;
}

/** The HTTP floor's line under a scenario's title: what the framework alone costs per request in this run. */
export function floorLine(pool: number, scenario: CellSummary['scenario'], r: Pick<Report, 'floors'>): string {
  const runs = r.floors.filter((f) => f.pool === pool && f.scenario === scenario);
  const ok = runs.filter((f) => f.requestsPerSec !== null);
  if (!ok.length) return `HTTP floor: n/a (${runs[0]?.error?.split('\n')[0] ?? 'not measured'}).`;
  const cpu = ok.filter((f) => f.cpuMsPerRequest !== null);
  const n = ok.length;
  return `HTTP floor: ${ranged(spread(ok.map((f) => f.requestsPerSec!)), fmt, n)} requests/s, ` +
    `${cpu.length ? `${ranged(spread(cpu.map((f) => f.cpuMsPerRequest!)), cpuMs, cpu.length)} ms CPU per request` : 'CPU n/a (no /proc)'} ` +
    '(a bare hono app answering the same bodies with 201, same load generator). "x floor": the service\'s CPU per ' +
    `${scenario === 'flash-sale' ? 'request' : 'order'} over its round's floor CPU per request.` +
    (ok.length < runs.length ? ` ${runs.length - ok.length} floor run(s) failed.` : '');
}

/** The line under a scenario's title: its database ceiling, what ran, and its figure over the rounds. */
export function ceilingLine(pool: number, scenario: CellSummary['scenario'], r: Pick<Report, 'ceilings' | 'ceilingMissing'>): string {
  const runs = r.ceilings.filter((c) => c.pool === pool && c.scenario === scenario);
  if (!runs.length) return `Database ceiling: n/a (${r.ceilingMissing ?? 'not measured'}).`;
  const ok = runs.filter((c) => c.ordersPerSec !== null);
  const what = `pgbench, ${runs[0]!.clients} clients, each order one place_order() call with no service in front`;
  if (!ok.length) return `Database ceiling: n/a (${what}: ${runs[0]!.error?.split('\n')[0] ?? 'failed'}).`;
  const orders = spread(ok.map((c) => c.ordersPerSec!));
  const tps = spread(ok.map((c) => c.tps!));
  const committed = spread(ok.map((c) => c.committedOrders!));
  const sec = spread(ok.map((c) => c.durationSec!));
  const n = ok.length;
  const length = scenario === 'flash-sale' ? `the same ${fmt(runs[0]!.processed ?? 0)} attempts in ${ms(sec.median)} s` : `${ms(sec.median)} s`;
  const simple = ok.filter((c) => c.simpleUpdateTps);
  const simpleText = simple.length ? ` pgbench's built-in simple update (-N) at the same clients and length: ` +
    `${ranged(spread(simple.map((c) => c.simpleUpdateTps!)), fmt, simple.length)} transactions/s; the ceiling is ` +
    `${ranged(spread(simple.map((c) => c.ordersPerSec! / c.simpleUpdateTps!)), (x) => `${(x * 100).toFixed(0)}%`, simple.length)} of it.` : '';
  return `Database ceiling: ${ranged(orders, fmt, n)} committed orders/s (${what}; ${length}; ` +
    `${ranged(committed, fmt, n)} orders committed, ${ranged(tps, fmt, n)} transactions/s with refusals).${simpleText} ` +
    '"of ceiling": a variant\'s HTTP orders/s over its round\'s ceiling.' +
    (ok.length < runs.length ? ` ${runs.length - ok.length} ceiling run(s) failed.` : '');
}

function openTitle(name: OpenPoint['scenario'], points: OpenPoint[]) {
  return `${name}: open loop, ${points[0]!.users} users' orders arriving at a fixed rate for ` +
    `${Math.round(points[0]!.scheduled / points[0]!.offeredPerSec)} s per rate; latency from each request's due time`;
}

function byScenario<T extends { scenario: CellSummary['scenario'] }>(items: T[]) {
  return SCENARIO_NAMES.map((s) => [s, items.filter((c) => c.scenario === s)] as const).filter(([, cs]) => cs.length);
}

/** Closed-loop tables: by pool (in the order given), then by scenario. */
function byPoolAndScenario(r: Pick<Report, 'cells' | 'pools'>) {
  return r.pools.flatMap((pool) => byScenario(r.cells.filter((c) => c.pool === pool)).map(([name, cells]) => ({ pool, name, cells })));
}

function targetLines(targets: Target[]) {
  return targets.map((t) => `${t.met === null ? 'n/a ' : t.met ? 'MET ' : 'MISS'}  ${t.name}: ${t.detail}`);
}

function notes(r: Report): string[] {
  const lines = rankScenarios(r.cells).map((k) => `${r.pools.length > 1 ? `pool ${k.pool}, ` : ''}${k.scenario}: ${k.line}`);
  const noTxDamaged = [...r.cells.filter((c) => c.variant === 'no-tx' && (!c.http.clean || !c.direct.clean)),
    ...r.open.filter((p) => p.variant === 'no-tx' && !p.audit.clean)];
  if (noTxDamaged.length) lines.push(NO_TX_NOTE);
  return lines;
}

function consoleReport(r: Report): string {
  const table = (head: string[], body: string[][]) => {
    const t = new Table({ head, style: { head: [], border: [] }, wordWrap: true });
    t.push(...body);
    return t.toString();
  };
  const parts = [
    ...byPoolAndScenario(r).map(({ pool, name, cells }) =>
      `${scenarioTitle(name, cells, r)}\n${ceilingLine(pool, name, r)}\n${floorLine(pool, name, r)}\n${table(HEADER, rows(cells))}`),
    ...byScenario(r.open).map(([name, points]) => `${openTitle(name, points)}\n${table(OPEN_HEADER, openRows(points))}`),
    ...(r.lifecycle.length ? [`${lifecycleTitle(r.lifecycle)}\n${table(LIFECYCLE_HEADER, lifecycleRows(r.lifecycle))}`] : []),
    ...(r.bots ? [`${botsTitle(r.bots, r.repeat)}\n${table(BOTS_HEADER, botsRows(r.bots, r.repeat))}`] : []),
    ...(r.settingsCost ? [`${settingsTitle(r.settingsCost, r.repeat)}\n${table(SETTINGS_HEADER, settingsRows(r.settingsCost, r.repeat))}`] : []),
    ...(r.scaleOut ? [`${scaleOutTitle(r.scaleOut, r.repeat)}\n${table(SCALE_OUT_HEADER, scaleOutRows(r.scaleOut, r.repeat))}`] : []),
    ...(r.sweep ? [`${sweepTitle(r.sweep, r.repeat)}\n${table(SWEEP_HEADER, sweepRows(r.sweep, r.repeat))}`] : []),
    ...(r.queued ? [`${QUEUED_TITLE}\n${table(QUEUED_HEADER, queuedRows(r.queued, r.repeat))}`] : []),
  ];
  return [...parts, 'Notes:', ...notes(r).map((l) => `  ${l}`), 'Targets:', ...targetLines(r.targets).map((l) => `  ${l}`)].join('\n\n');
}

function markdownReport(r: Report): string {
  const m = r.machine;
  const lines = [
    `# Bench results ${m.date}${r.quick ? ' (quick smoke run)' : ''}`,
    '',
    `${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, PostgreSQL ${m.postgres.version} ` +
      `(${m.postgres.origin}), pool ${r.pools.join(', ')}, ${m.pgbench ?? 'no pgbench'}, ${commitLine(m)}, ${r.repeat} round${r.repeat > 1 ? 's' : ''}, ` +
      `${minutes(r.tookSec)} in all. ` +
      'Service, PostgreSQL, Redis and the load generator share the machine. "direct" drives the same ' +
      'variant code without HTTP at the same concurrency and pool; HTTP/direct compares requests/s. ' +
      'Closed-loop latency is each request\'s own time from send to answer: with N users always waiting, it ' +
      'mostly restates N / throughput. Open-loop latency counts from when each order was due. ' +
      '"service CPU ms/order": the service\'s processes\' CPU time (user + system) over the measured HTTP run, per ' +
      'successful order. "of ceiling": HTTP orders/s over the database ceiling, pgbench placing the same scenario\'s ' +
      'orders through the one-round-trip function with as many clients as the pool has connections (at most the users).',
  ];
  for (const { pool, name, cells } of byPoolAndScenario(r)) {
    lines.push('', `## ${scenarioTitle(name, cells, r)}`, '', ceilingLine(pool, name, r), '', floorLine(pool, name, r), '', ...markdownTable(HEADER, rows(cells)));
  }
  for (const [name, points] of byScenario(r.open)) {
    lines.push('', `## ${openTitle(name, points)}`, '', ...markdownTable(OPEN_HEADER, openRows(points)));
  }
  if (r.lifecycle.length) {
    lines.push('', `## ${lifecycleTitle(r.lifecycle)}`, '', ...markdownTable(LIFECYCLE_HEADER, lifecycleRows(r.lifecycle)));
  }
  if (r.bots) lines.push('', `## ${botsTitle(r.bots, r.repeat)}`, '', ...markdownTable(BOTS_HEADER, botsRows(r.bots, r.repeat)));
  if (r.queued) lines.push('', `## ${QUEUED_TITLE}`, '', ...markdownTable(QUEUED_HEADER, queuedRows(r.queued, r.repeat)));
  if (r.settingsCost) {
    lines.push('', `## ${settingsTitle(r.settingsCost, r.repeat)}`, '', ...markdownTable(SETTINGS_HEADER, settingsRows(r.settingsCost, r.repeat)));
  }
  if (r.scaleOut) {
    lines.push('', `## ${scaleOutTitle(r.scaleOut, r.repeat)}`, '', ...markdownTable(SCALE_OUT_HEADER, scaleOutRows(r.scaleOut, r.repeat)));
  }
  if (r.sweep) lines.push('', `## ${sweepTitle(r.sweep, r.repeat)}`, '', ...markdownTable(SWEEP_HEADER, sweepRows(r.sweep, r.repeat)));
  lines.push('', '## Notes', '', ...notes(r).map((l) => `- ${l}`));
  lines.push('', '## Targets', '', ...targetLines(r.targets).map((l) => `- ${l}`), '');
  return lines.join('\n');
}

const SETTINGS_HEADER = ['setting', 'what changes', 'orders/s', 'fewer orders/s than defaults', 'service CPU ms/order', 'audit'];

function settingsTitle(c: SettingsCost, repeat: number): string {
  return `What the service's settings cost: ${c.scenario} through ${c.variant} over HTTP, ${c.scale.connections} users x ` +
    `${c.scale.ordersPerConnection} orders, ${repeat} run${repeat > 1 ? 's' : ''} per setting${repeat > 1 ? ', interleaved: median (min-max)' : ''}`;
}

function settingsRows(c: SettingsCost, repeat: number): string[][] {
  return c.settings.map((s) => [s.setting, s.what, ranged(s.ordersPerSec, fmt, repeat),
    s.setting === c.settings[0]!.setting ? '-' : `${(s.throughputCost * 100).toFixed(1)}%`,
    s.cpuMsPerOrder ? ranged(s.cpuMsPerOrder, cpuMs, repeat) : 'n/a', s.clean ? 'clean' : 'FAILED']);
}

const SCALE_OUT_HEADER = ['variant', 'processes', 'path', 'orders/s', 'vs 1 process', 'pooler vs direct', 'service CPU ms/order',
  'server connections (peak)', '500s', 'audit'];

function scaleOutTitle(s: ScaleOut, repeat: number): string {
  return `Scale-out: ${s.scenario} over HTTP, ${s.scale.connections} users x ${s.scale.ordersPerConnection} orders, pool ${s.poolSize} per ` +
    `process; "pooler": through a PgBouncer of the bench's own (transaction pooling, ${s.poolSize} server connections shared by every process)` +
    `${s.poolerMissing ? ` - n/a: ${s.poolerMissing}` : ''}; ${repeat} run${repeat > 1 ? 's' : ''} each${repeat > 1 ? ', interleaved: median (min-max)' : ''}`;
}

function scaleOutRows(s: ScaleOut, repeat: number): string[][] {
  const x = (r: number | null) => (r === null ? '-' : `${r.toFixed(2)}x`);
  return s.cells.map((c) => c.ordersPerSec
    ? [c.variant, String(c.processes), c.path, ranged(c.ordersPerSec, fmt, repeat), x(c.vsOneProcess), x(c.vsDirect),
      c.cpuMsPerOrder ? ranged(c.cpuMsPerOrder, cpuMs, repeat) : 'n/a', ranged(c.serverConnections!, fmt, repeat), fmt(c.internalErrors),
      c.clean ? 'clean' : 'FAILED']
    : [c.variant, String(c.processes), c.path, 'n/a', '-', '-', 'n/a', 'n/a', '-', '-']);
}

const SWEEP_HEADER = ['scenario', 'variant', 'users', 'orders/s', 'p50 ms', 'p99 ms', 'vs fewest users', 'vs one-round-trip', '500s', 'audit'];

function sweepTitle(s: ConcurrencySweep, repeat: number): string {
  const requests = spread(s.runs.map((r) => r.requests));
  return `Concurrency sweep: the same orders over HTTP at ${s.connections.join(', ')} users, about ${fmt(requests.median)} orders per run; ` +
    `${repeat} run${repeat > 1 ? 's' : ''} each${repeat > 1 ? ', interleaved: median (min-max)' : ''}`;
}

function sweepRows(s: ConcurrencySweep, repeat: number): string[][] {
  const x = (r: number | null) => (r === null ? '-' : `${r.toFixed(2)}x`);
  return s.cells.map((c) => [c.scenario, c.variant, String(c.connections), ranged(c.ordersPerSec, fmt, repeat),
    ranged(c.p50Ms, ms, repeat), ranged(c.p99Ms, ms, repeat), x(c.vsFewest), x(c.vsOneRoundTrip), fmt(c.internalErrors),
    c.clean ? 'clean' : 'FAILED']);
}

const QUEUED_TITLE = 'queued (asynchronous placement): 202s over HTTP, then the drain; time to placed = from the 202 to the ' +
  'outcome recorded after the commit; queue on a redis-server syncing its append-only file on every write';
const QUEUED_HEADER = ['scenario', 'run', 'accepted/s', 'req/s', '202 p99 ms', 'placed', 'rejected', 'placed/s',
  'to placed p50 ms', 'p99 ms', 'p99.9 ms', 'CPU/req ms', 'audit'];

function queuedRows(q: QueuedResult, repeat: number): string[][] {
  const cpu = (x: number) => x.toFixed(3);
  return [
    ...q.summaries.map((s) => [s.scenario, 'closed loop', ranged(s.acceptedPerSec, fmt, repeat), ranged(s.requestsPerSec, fmt, repeat),
      ranged(s.acceptP99Ms, ms, repeat), ranged(s.placed, fmt, repeat), ranged(s.rejected, fmt, repeat), ranged(s.placedPerSec, fmt, repeat),
      ranged(s.timeToPlacedP50Ms, ms, repeat), ranged(s.timeToPlacedP99Ms, ms, repeat), ranged(s.timeToPlacedP999Ms, ms, repeat),
      s.cpuPerRequestMs ? ranged(s.cpuPerRequestMs, cpu, repeat) : 'n/a', s.clean ? 'clean' : 'FAILED']),
    ...q.open.map((p) => [p.scenario, `open ${fmt(p.offeredPerSec)}/s (${Math.round(p.share * 100)}%)`, '-', '-', ms(p.latencyMs.p99), fmt(p.placed), fmt(p.rejected), fmt(p.placedPerSec), ms(p.timeToPlacedMs.p50), ms(p.timeToPlacedMs.p99),
      ms(p.timeToPlacedMs.p999), '-', p.problems.length ? 'FAILED' : 'clean']),
  ];
}

const BOTS_HEADER = ['variant', 'run', 'buyers placed', 'buyers p50 ms', 'buyers p99 ms', 'bots placed', 'audit'];

function botsTitle(b: BotsResult, repeat: number): string {
  const s = b.shape;
  return `bots: ${s.buyers} buyers x ${s.ordersPerBuyer} orders of one product (stock ${s.buyers * s.ordersPerBuyer}), ${s.bots} bots x ` +
    `${s.connectionsPerBot} connections flooding it; limits on: ${b.limits.perUser} orders per user per ${b.limits.windowSeconds} s; ` +
    `${repeat} run${repeat > 1 ? 's' : ''} each${repeat > 1 ? ', interleaved: median (min-max)' : ''}`;
}

function botsRows(b: BotsResult, repeat: number): string[][] {
  const share = (x: number) => `${(x * 100).toFixed(1)}%`;
  return b.cells.map((c) => [c.variant, c.mode, ranged(c.successRate, share, repeat), ranged(c.p50Ms, ms, repeat),
    ranged(c.p99Ms, ms, repeat), c.mode === 'no bots' ? '-' : ranged(c.botSuccesses, fmt, repeat), c.clean ? 'clean' : 'FAILED']);
}

const LIFECYCLE_HEADER = ['variant', 'placed', 'refused', 'paid', 'cancelled', 'expired', 'resent (same key)', 'replay mismatches', 'took', 'audit'];

function lifecycleTitle(cells: LifecycleCell[]): string {
  const { buyers, ordersPerBuyer } = cells[0]!.scale;
  return `${LIFECYCLE}: ${buyers} buyers x ${ordersPerBuyer} orders, then pay / cancel / expire; audited once settled`;
}

function lifecycleRows(cells: LifecycleCell[]): string[][] {
  return cells.map((c) => [c.variant, fmt(c.placed), fmt(c.refused), fmt(c.paid), fmt(c.cancelled), fmt(c.expired),
    fmt(c.retried), fmt(c.replayMismatches), minutes(c.durationSec), c.audit.clean ? 'clean' : c.audit.problems.join('; ')]);
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
    repeat: r.repeat,
    tookSec: Math.round(r.tookSec),
    targets: r.targets,
    rankings: rankScenarios(r.cells),
    pools: r.pools,
    ceilings: r.ceilings,
    ceilingMissing: r.ceilingMissing,
    floors: r.floors,
    cells: r.cells.map((c) => ({ ...c, reference: SCENARIOS[c.scenario].reference[c.variant] ?? null })),
    openLoop: r.open,
    lifecycle: r.lifecycle,
    bots: r.bots,
    settingsCost: r.settingsCost,
    scaleOut: r.scaleOut,
    sweep: r.sweep,
    queued: r.queued,
  };
  const title = `Order placement, ${r.machine.cpus} CPUs, PostgreSQL ${r.machine.postgres.version}, pool ${r.pools.join(', ')}`;
  const files = [`${base}.json`, `${base}.md`];
  await writeFile(files[0]!, `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(files[1]!, markdownReport(r));
  if (r.cells.length) {
    files.push(`${base}.svg`);
    await writeFile(`${base}.svg`, await renderChart(r.cells, `${title}: closed loop, median and range of ${r.repeat} run${r.repeat > 1 ? 's' : ''}`));
  }
  if (r.open.length) {
    files.push(`${base}-open-loop.svg`);
    await writeFile(`${base}-open-loop.svg`, await renderOpenLoopChart(r.open, `${title}: open loop, latency against offered load`));
  }
  return { console: consoleReport(r), files };
}
