import { httpLoad } from './load.ts';
import { cpuBetween, sampleServiceCpu } from './proc-cpu.ts';
import { progress } from './progress.ts';
import { loopsFor, WARMUP_SALT } from './run.ts';
import { seedFor, type Scale, type Scenario, type ScenarioName } from './scenarios.ts';
import { startService } from './service-process.ts';

// The HTTP floor of a scenario (bench/floor-app.ts): a bare app of the service's framework
// answering the scenario's order bodies with 201, driven by the same load generator with the same
// users and bodies, once per scenario, pool and round, beside the database ceiling. The service's
// CPU per order reads as a multiple of the floor's CPU per request measured in the same round, so
// that the machine's speed and the load generator's share cancel out.

export interface FloorRun {
  round: number;
  pool: number;
  scenario: ScenarioName;
  requests: number | null;
  requestsPerSec: number | null;
  /** The floor app's CPU time (user + system) per request, ms; null without /proc. */
  cpuMsPerRequest: number | null;
  /** Why the run has no figures; absent when it has. */
  error?: string;
}

/**
 * A floor run's measured requests at least (in total over its connections): the floor answers
 * 10,000-17,000 requests/s on 2 cores, and a run of a few thousand ends within a second, before
 * the app's CPU per request settles (0.22-0.30 ms at 3,000 requests, 0.044-0.074 ms at 30,000).
 */
export const FLOOR_MIN_REQUESTS = 30_000;

/** Orders per connection of a floor run: the scenario's own, raised to reach `minRequests` in total. */
export function floorOrdersPerConnection(scale: Scale, minRequests: number): number {
  return Math.max(scale.ordersPerConnection, Math.ceil(minRequests / scale.connections));
}

export interface FloorContext {
  /** Measured requests at least: FLOOR_MIN_REQUESTS, or 0 for a smoke run (the scenario's own orders). */
  minRequests: number;
  redisUrl: string;
  databaseUrl: string;
  redisKeyPrefix: string;
  poolSize: number;
  round: number;
  warmupOrdersPerConnection: number;
  label: string;
}

/** Starts the floor app, warms it up, measures the scenario's closed loop against it, stops it. */
export async function runFloor(scenario: Scenario, scale: Scale, ctx: FloorContext): Promise<FloorRun> {
  const base = { round: ctx.round, pool: ctx.poolSize, scenario: scenario.name };
  const loop = loopsFor(scenario, seedFor(scenario, scale), scale);
  try {
    const app = await startService({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl, redisKeyPrefix: ctx.redisKeyPrefix,
      poolSize: ctx.poolSize, entry: 'bench/floor-app.ts' });
    try {
      const measuredPerConnection = floorOrdersPerConnection(scale, ctx.minRequests);
      // A tenth of the measured run warms up (JIT, sockets), as the service's own warm-up does.
      const warmup = Math.max(ctx.warmupOrdersPerConnection, Math.ceil(measuredPerConnection / 10));
      await httpLoad(app.url, 'floor', loop(warmup, WARMUP_SALT, `${ctx.label} warm-up`));
      const before = sampleServiceCpu(app.pid);
      const result = await httpLoad(app.url, 'floor', loop(measuredPerConnection, 0, ctx.label));
      const after = sampleServiceCpu(app.pid);
      const requestsPerSec = result.requests / result.durationSec;
      const cpuMsPerRequest = before && after && result.requests ? cpuBetween(before, after).totalMs / result.requests : null;
      progress(ctx.label, result.requests).finish(`${Math.round(requestsPerSec)} req/s, ` +
        `${cpuMsPerRequest === null ? 'CPU n/a' : `${cpuMsPerRequest.toFixed(3)} ms CPU per request`}`);
      return { ...base, requests: result.requests, requestsPerSec, cpuMsPerRequest };
    } finally {
      await app.stop();
    }
  } catch (err) {
    return { ...base, requests: null, requestsPerSec: null, cpuMsPerRequest: null, error: err instanceof Error ? err.message : String(err) };
  }
}
