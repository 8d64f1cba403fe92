import { writeFile } from 'node:fs/promises';
import Table from 'cli-table3';
import { commitLine, type Machine } from '../machine.ts';
import { markdownTable, resultBase } from '../report.ts';
import type { FaultCell, Timings } from './cell.ts';
import { FAULTS, type FaultName } from './faults.ts';
import { auditDamage, unexplainedOrders, verdict } from './judge.ts';

// The fault bench's findings: one row per fault x variant, then the orders committed without a
// 201 by number and what the service printed when a process died; on the console and as
// markdown, and every figure as JSON (files ending -faults, or -faults-quick for a quick run).

export interface FaultReport {
  cells: FaultCell[];
  machine: Machine;
  settings: { clients: number; pool: number; workers: number; timings: Timings };
  quick: boolean;
  outDir: string;
  durationSec: number;
}

const HEADER = ['fault', 'variant', 'answers during the fault', '503 with Retry-After', 'recovery', 'audit',
  'orders without 201', 'Redis mirrors', 'crashes', 'verdict'];

const counts = (c: Record<string, number>) => Object.entries(c).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${n}`).join(', ');

function rows(cells: FaultCell[]): string[][] {
  return cells.map((c) => {
    const o = c.outcomes;
    const unavailable = Object.entries(o.whole).filter(([k]) => k.startsWith('503')).reduce((n, [, v]) => n + v, 0);
    // What the clients of those orders were told, by kind (the first thing each saw).
    const saw: Record<string, number> = {};
    for (const u of c.unannounced) {
      const first = (u.clientSaw[0] ?? 'no request').replace(/ \(.*$/, '');
      saw[first] = (saw[first] ?? 0) + 1;
    }
    const allowed = c.unannounced.length && !unexplainedOrders(c, FAULTS[c.fault].cutsRequests).length;
    return [
      c.fault,
      c.variant,
      counts(o.during) || '-',
      !unavailable ? '-' : o.unavailableWithoutRetryAfter ? `${o.unavailableWithoutRetryAfter} of ${unavailable} WITHOUT` : `all ${unavailable}`,
      o.recoverySec === null ? 'NONE' : `${o.recoverySec.toFixed(1)} s`,
      !c.audit ? '-' : auditDamage(c.audit).join(', ') || 'clean',
      !c.unannounced.length ? '0' : `${c.unannounced.length}${allowed ? ', all explained' : ''} (client saw ${counts(saw)})`,
      !c.mirrors ? '-' : c.mirrors.equalAfterSec !== null ? `equal after ${c.mirrors.equalAfterSec.toFixed(1)} s`
        : `${c.mirrors.mismatches.length} DIFFER`,
      [...(c.workerExits.length ? [`${c.workerExits.length} worker exits`] : []), ...(c.serviceDeaths.length ? ['service died'] : [])]
        .join(', ') || 'none',
      verdict(c),
    ];
  });
}

/** Below the table: the orders without a 201 by number, and the service's last words where a process died. */
function details(cells: FaultCell[]): string[] {
  const lines: string[] = [];
  for (const c of cells) {
    for (const u of c.unannounced) {
      lines.push(`${c.fault}/${c.variant}: order ${u.orderNo} of user ${u.userId} committed without a 201; ` +
        `its client saw ${u.clientSaw.join(', ') || 'no request in flight'}`);
    }
  }
  for (const c of cells.filter((c) => c.workerExits.length || c.serviceDeaths.length)) {
    lines.push(`${c.fault}/${c.variant}: ${[...c.workerExits, ...c.serviceDeaths].join('; ')}; the service printed: ` +
      `${c.serviceErrors.slice(0, 8).map((l) => l.trim()).join(' | ') || 'nothing'}`);
  }
  return lines;
}

function settingsLine(r: FaultReport): string {
  const { timings: t, clients, pool, workers } = r.settings;
  return `${clients} clients ordering in a closed loop (1-3 of 10 products, ample stock), pool ${pool}, ${workers} service ` +
    `workers; load ${t.leadMs / 1000} s before each fault and ${t.tailMs / 1000} s after the recovery; recovery bound ` +
    `${t.recoveryBoundMs / 1000} s; client timeout ${t.requestTimeoutMs / 1000} s; the run took ${Math.round(r.durationSec)} s.`;
}

function faultLines(r: FaultReport): string[] {
  const faults = [...new Set(r.cells.map((c) => c.fault))] as FaultName[];
  return faults.map((f) => `${f}: ${r.cells.find((c) => c.fault === f)!.description}`);
}

const LEGEND = '"Answers during the fault": from the fault\'s start until the first success after its end. ' +
  '"Recovery": from the fault\'s end (server answering, lock released, service listening) until the first 201 of an order it affected.';

function consoleReport(r: FaultReport): string {
  const table = new Table({ head: HEADER, style: { head: [], border: [] }, wordWrap: true,
    colWidths: [21, 20, 34, 12, 10, 12, 22, 12, 11, 30] });
  table.push(...rows(r.cells));
  const more = details(r.cells);
  return [settingsLine(r), ...faultLines(r), LEGEND, table.toString(), ...(more.length ? ['', ...more] : [])].join('\n');
}

function markdownReport(r: FaultReport): string {
  const m = r.machine;
  const more = details(r.cells);
  return [
    `# Fault bench ${m.date}${r.quick ? ' (quick run)' : ''}`,
    '',
    `${m.cpus} CPUs (${m.cpuModel}), Node ${m.node}, PostgreSQL ${m.postgres.version} (${m.postgres.origin}), ` +
      `Redis (${m.redis.origin}), ${commitLine(m)}. ${settingsLine(r)}`,
    '',
    ...faultLines(r).map((l) => `- ${l}`),
    '',
    LEGEND,
    '',
    ...markdownTable(HEADER, rows(r.cells)),
    ...(more.length ? ['', '## Details', '', ...more.map((l) => `- ${l}`)] : []),
    '',
  ].join('\n');
}

export async function writeFaultReport(r: FaultReport): Promise<{ console: string; files: string[] }> {
  const base = await resultBase(r.outDir, r.machine.date, r.quick ? '-faults-quick' : '-faults');
  const files = [`${base}.json`, `${base}.md`];
  const json = {
    machine: r.machine, quick: r.quick, settings: r.settings, durationSec: r.durationSec,
    failed: r.cells.some((c) => c.failures.length), cells: r.cells,
  };
  await writeFile(files[0]!, `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(files[1]!, markdownReport(r));
  return { console: consoleReport(r), files };
}
