import cluster, { type Worker } from 'node:cluster';
import type { Logger } from './logger.ts';
import { serveClusterMetrics } from './metrics-cluster.ts';

// Runs WEB_CONCURRENCY service processes behind one port and restarts any that dies: a failure
// nobody foresaw (a driver bug, an out-of-memory) costs the requests in flight on that process,
// not the service. Before the service has ever listened, a worker that dies is a start-up failure
// (bad configuration, database unreachable): the supervisor then stops with its exit code. After
// that, a replacement that cannot start yet (the database still restarting) is retried, with a
// growing delay, until it can.

const MAX_RESTART_DELAY_MS = 5_000;
/** A worker that lived this long is healthy again: the next restart starts without delay. */
const STABLE_MS = 10_000;

export interface SupervisorOptions {
  workers: number;
  drainMs: number;
  env: Record<string, string>;
  /** METRICS: collect every worker's metrics for the one that serves GET /metrics. */
  metrics: boolean;
  logger: Logger;
}

export function runSupervisor(options: SupervisorOptions) {
  const { logger } = options;
  const ready = new Set<number>();
  let served = false;
  const startedAt = new Map<number, number>();
  let restartDelay = 0;
  let stopping = false;

  const fork = () => {
    if (stopping) return; // a restart that was still waiting when the stop came
    const worker = cluster.fork(options.env);
    startedAt.set(worker.id, Date.now());
    worker.on('message', (m) => {
      if (m !== 'ready') return;
      ready.add(worker.id);
      served = true;
    });
  };

  cluster.on('exit', (worker: Worker, code, signal) => {
    const wasReady = ready.delete(worker.id);
    const lived = Date.now() - (startedAt.get(worker.id) ?? 0);
    startedAt.delete(worker.id);
    if (stopping) {
      if (!startedAt.size) process.exit(0);
      return;
    }
    if (!served) {
      // Its own message (what failed, how to fix it) was printed by the worker.
      killAll('SIGKILL');
      process.exit(code || 1);
    }
    restartDelay = lived > STABLE_MS ? 0 : Math.min(MAX_RESTART_DELAY_MS, Math.max(100, restartDelay * 2));
    const what = wasReady ? 'exited unexpectedly' : 'could not start';
    logger.error({ workerPid: worker.process.pid, code, signal },
      `worker ${worker.process.pid} ${what} (${signal ?? `code ${code}`}); starting a new one${restartDelay ? ` in ${restartDelay} ms` : ''}`);
    setTimeout(fork, restartDelay);
  });

  const killAll = (signal: NodeJS.Signals) => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };

  // First signal: every worker drains (SHUTDOWN_DRAIN_MS), then the supervisor exits; if they
  // have not exited a few seconds after that, or on a second signal, they are killed.
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} again: killing the workers`);
      killAll('SIGKILL');
      process.exit(1);
    }
    stopping = true;
    if (!startedAt.size) process.exit(0);
    logger.info(`${signal}: draining for up to ${options.drainMs} ms (send it again to stop at once)`);
    killAll('SIGTERM');
    setTimeout(() => { killAll('SIGKILL'); process.exit(1); }, options.drainMs + 5_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  if (options.metrics) serveClusterMetrics();
  for (let i = 0; i < options.workers; i++) fork();
}
