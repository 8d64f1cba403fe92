import type { VariantName } from '../src/orders/variants/index.ts';
import { APPLICATION_NAMES, createSql } from '../src/connections.ts';
import { runHttpWith, type CellContext } from './run.ts';
import type { Scale, Scenario } from './scenarios.ts';
import { spread, type Spread } from './summary.ts';

// Many service processes on one PostgreSQL, directly and through a transaction-pooling PgBouncer:
// the same HTTP closed loop with WEB_CONCURRENCY 1, 2 and 4, interleaved round by round, reporting
// orders/s, the service's CPU per order and the server connections it held. Directly, each process
// opens its own pool; through the pooler, every process shares the pooler's server connections.

export const SCALE_OUT_PROCESSES = [1, 2, 4] as const;
export const SCALE_OUT_PATHS = ['direct', 'pooler'] as const;
export type ScaleOutPath = (typeof SCALE_OUT_PATHS)[number];

export interface ScaleOutRun {
  variant: VariantName;
  processes: number;
  path: ScaleOutPath;
  round: number;
  ordersPerSec: number;
  cpuMsPerOrder: number | null;
  /** Most PostgreSQL backends of the service open at once during the run (sampled every 100 ms). */
  serverConnections: number;
  /** Requests answered 500 (never expected). */
  internalErrors: number;
  failed: number;
  clean: boolean;
}

export interface ScaleOutCell {
  variant: VariantName;
  processes: number;
  path: ScaleOutPath;
  /** null: not run (no pooler on this machine). */
  ordersPerSec: Spread | null;
  cpuMsPerOrder: Spread | null;
  serverConnections: Spread | null;
  /** Median orders/s over the same variant's at one process on the same path. */
  vsOneProcess: number | null;
  /** Through the pooler: median orders/s over the direct run's at the same processes. */
  vsDirect: number | null;
  internalErrors: number;
  clean: boolean;
}

export interface ScaleOut {
  scenario: Scenario['name'];
  scale: Scale;
  /** Each service process's pool, and the pooler's server connections (`default_pool_size`). */
  poolSize: number;
  /** Why the pooler runs did not happen (no pgbouncer on PATH); null when they did. */
  poolerMissing: string | null;
  runs: ScaleOutRun[];
  cells: ScaleOutCell[];
}

export interface ScaleOutContext extends Omit<CellContext, 'round' | 'label'> {
  /** The pooler's URL for a database URL; null without one. */
  poolerUrl: ((databaseUrl: string) => string) | null;
  poolerMissing: string | null;
}

/**
 * Runs `variants` x SCALE_OUT_PROCESSES x SCALE_OUT_PATHS, `repeat` rounds, each round in another
 * order of paths so that neither always runs first.
 */
export async function runScaleOut(scenario: Scenario, variants: VariantName[], scale: Scale, repeat: number,
  ctx: ScaleOutContext, progress: { before(label: string): void; after(): void }): Promise<ScaleOut> {
  const runs: ScaleOutRun[] = [];
  const paths = ctx.poolerUrl ? SCALE_OUT_PATHS : (['direct'] as const);
  for (let round = 1; round <= repeat; round++) {
    for (const variant of variants) {
      for (const processes of SCALE_OUT_PROCESSES) {
        const order = round % 2 ? [...paths] : [...paths].reverse();
        for (const path of order) {
          const label = `[scale-out round ${round}] ${scenario.name} ${variant} ${processes} process${processes > 1 ? 'es' : ''} ${path}`;
          progress.before(label);
          const env: Record<string, string> = { WEB_CONCURRENCY: String(processes) };
          if (path === 'pooler') Object.assign(env, { DATABASE_URL: ctx.poolerUrl!(ctx.databaseUrl), DATABASE_POOLER: 'transaction' });
          const sampler = sampleServerConnections(ctx.databaseUrl);
          const { http, serviceCpu } = await runHttpWith(scenario, variant, scale, { ...ctx, round, label }, env)
            .finally(() => sampler.stop());
          progress.after();
          runs.push({
            variant, processes, path, round, ordersPerSec: http.ordersPerSec, cpuMsPerOrder: serviceCpu?.perOrderMs ?? null,
            serverConnections: await sampler.peak, internalErrors: http.failures.INTERNAL ?? 0,
            failed: http.requests - http.successes, clean: http.audit.clean,
          });
        }
      }
    }
  }
  return { scenario: scenario.name, scale, poolSize: ctx.poolSize, poolerMissing: ctx.poolerMissing, runs, cells: summarize(runs, variants) };
}

function summarize(runs: ScaleOutRun[], variants: VariantName[]): ScaleOutCell[] {
  const of = (v: VariantName, n: number, p: ScaleOutPath) => runs.filter((r) => r.variant === v && r.processes === n && r.path === p);
  const median = (rs: ScaleOutRun[]) => (rs.length ? spread(rs.map((r) => r.ordersPerSec)).median : null);
  return variants.flatMap((variant) => SCALE_OUT_PROCESSES.flatMap((processes) => SCALE_OUT_PATHS.map((path) => {
    const mine = of(variant, processes, path);
    const cpu = mine.map((r) => r.cpuMsPerOrder).filter((x): x is number => x !== null);
    const own = median(mine);
    const one = median(of(variant, 1, path));
    const direct = median(of(variant, processes, 'direct'));
    return {
      variant, processes, path,
      ordersPerSec: mine.length ? spread(mine.map((r) => r.ordersPerSec)) : null,
      cpuMsPerOrder: cpu.length ? spread(cpu) : null,
      serverConnections: mine.length ? spread(mine.map((r) => r.serverConnections)) : null,
      vsOneProcess: own !== null && one ? own / one : null,
      vsDirect: path === 'pooler' && own !== null && direct ? own / direct : null,
      internalErrors: mine.reduce((n, r) => n + r.internalErrors, 0),
      clean: mine.every((r) => r.clean),
    };
  })));
}

/**
 * The service's PostgreSQL backends in the run's database, counted every 100 ms on a connection of
 * its own; `peak` resolves with the most seen once stopped. The bench's own admin pools name
 * themselves otherwise (application_name) and are not counted.
 */
function sampleServerConnections(databaseUrl: string): { stop(): void; peak: Promise<number> } {
  const sql = createSql({ databaseUrl, poolSize: 1 });
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const [row] = await sql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
        where datname = current_database() and backend_type = 'client backend'
          and application_name <> ${APPLICATION_NAMES.admin} and pid <> pg_backend_pid()`.catch(() => [{ n: 0 }]);
      peak = Math.max(peak, row!.n);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await sql.end({ timeout: 1 });
    return peak;
  })();
  return { stop: () => { running = false; }, peak: loop };
}
