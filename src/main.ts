import cluster from 'node:cluster';
import { loadConfig } from './config.ts';
import { runMain } from './entry-point.ts';
import { freePort } from './free-port.ts';
import { createLogger } from './logger.ts';
import { runSupervisor } from './supervisor.ts';
import { runWorker } from './worker.ts';

// The process entry point, and the only place that builds long-lived connections (in the worker).
// `npm start` runs node on this file directly, so signals reach the supervisor and not a wrapper.

// Until the configuration is read (it may be what fails), at the default level.
const startLogger = createLogger({ level: 'info' });

async function main() {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel });
  if (cluster.isPrimary) {
    // PORT=0 picks a port once, here: a worker started later to replace one must listen where
    // the clients already are.
    const port = config.port || await freePort();
    runSupervisor({
      workers: config.webConcurrency, drainMs: config.shutdownDrainMs, env: { PORT: String(port) }, metrics: config.metrics, logger,
    });
  } else {
    await runWorker(config, logger);
  }
}

runMain(main, (message) => startLogger.fatal(message));
