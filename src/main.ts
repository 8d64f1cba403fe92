import cluster from 'node:cluster';
import { loadConfig } from './config.ts';
import { freePort } from './free-port.ts';
import { runSupervisor } from './supervisor.ts';
import { runWorker } from './worker.ts';

// The process entry point, and the only place that builds long-lived connections (in the worker).
// `npm start` runs node on this file directly, so signals reach the supervisor and not a wrapper.

async function main() {
  const config = loadConfig();
  if (cluster.isPrimary) {
    // PORT=0 picks a port once, here: a worker started later to replace one must listen where
    // the clients already are.
    const port = config.port || await freePort();
    runSupervisor({ workers: config.webConcurrency, drainMs: config.shutdownDrainMs, env: { PORT: String(port) } });
  } else {
    await runWorker(config);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
