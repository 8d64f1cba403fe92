import type { VariantName } from '../src/orders/variants/index.ts';
import { runHttpWith, type CellContext } from './run.ts';
import type { Scale, Scenario } from './scenarios.ts';
import { spread, type Spread } from './summary.ts';

// What the service's observability and its session cache cost: the same HTTP run with the
// defaults and with one setting changed, interleaved round by round so that the machine's drift
// falls on every setting alike. Throughput and the service's CPU per order are compared with the
// defaults' medians.

export const SETTINGS = [
  { name: 'defaults', env: {}, what: 'METRICS=on, LOG_LEVEL=info, SESSION_CACHE_MS=1000' },
  { name: 'metrics off', env: { METRICS: 'off' }, what: 'no /metrics and no metric updates per request' },
  { name: 'logs silent', env: { LOG_LEVEL: 'silent' }, what: 'no log lines at all (the default logs only 5xx and start/stop)' },
  { name: 'logs debug', env: { LOG_LEVEL: 'debug' }, what: 'one JSON line per request' },
  { name: 'no session cache', env: { SESSION_CACHE_MS: '0' }, what: 'a Redis session lookup per request' },
] as const;

export interface SettingRun { setting: string; round: number; ordersPerSec: number; cpuMsPerOrder: number | null; clean: boolean }

export interface SettingSummary {
  setting: string;
  what: string;
  ordersPerSec: Spread;
  cpuMsPerOrder: Spread | null;
  /** Median orders/s against the defaults' median: 0.03 = 3% fewer orders/s. */
  throughputCost: number;
  clean: boolean;
}

export interface SettingsCost { scenario: Scenario['name']; variant: VariantName; scale: Scale; runs: SettingRun[]; settings: SettingSummary[] }

export async function runSettingsCost(scenario: Scenario, variant: VariantName, scale: Scale, repeat: number,
  ctx: Omit<CellContext, 'round' | 'label'>, progress: { before(label: string): void; after(): void }): Promise<SettingsCost> {
  const runs: SettingRun[] = [];
  for (let round = 1; round <= repeat; round++) {
    // Each round starts at another setting: none always runs first.
    const order = SETTINGS.map((_, i) => SETTINGS[(i + round - 1) % SETTINGS.length]!);
    for (const s of order) {
      const label = `[settings round ${round}] ${scenario.name} ${variant} ${s.name}`;
      progress.before(label);
      const { http, serviceCpu } = await runHttpWith(scenario, variant, scale, { ...ctx, round, label }, s.env);
      progress.after();
      runs.push({ setting: s.name, round, ordersPerSec: http.ordersPerSec, cpuMsPerOrder: serviceCpu?.perOrderMs ?? null, clean: http.audit.clean });
    }
  }
  const base = spread(runs.filter((r) => r.setting === SETTINGS[0].name).map((r) => r.ordersPerSec)).median;
  const settings = SETTINGS.map((s) => {
    const mine = runs.filter((r) => r.setting === s.name);
    const cpu = mine.map((r) => r.cpuMsPerOrder).filter((x): x is number => x !== null);
    const ordersPerSec = spread(mine.map((r) => r.ordersPerSec));
    return {
      setting: s.name, what: s.what, ordersPerSec, cpuMsPerOrder: cpu.length ? spread(cpu) : null,
      throughputCost: base ? 1 - ordersPerSec.median / base : 0, clean: mine.every((r) => r.clean),
    };
  });
  return { scenario: scenario.name, variant, scale, runs, settings };
}
