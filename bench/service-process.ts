import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/free-port.ts';

// The service under test runs as its own process, started the way a user starts it, so that
// the load generator and the service do not share an event loop. It is spawned detached, as the
// leader of a process group of its own: the group holds its cluster workers too, so that a kill
// (the fault bench's SIGKILL, or a stop that timed out) leaves none of them behind.

/** The checkout this bench belongs to, whatever the working directory. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ServiceProcess {
  url: string;
  /** The supervisor's pid (its workers are its children): what the bench reads the service's CPU time from. */
  pid: number;
  /** SIGTERM (a clean shutdown), then SIGKILL to the whole group if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL to the whole group at once: a crash, as far as the service can tell. Resolves on exit. */
  kill(): Promise<void>;
}

// Every service still running, so that an interrupted bench can stop them all.
const running = new Set<ServiceProcess>();

export async function stopAllServices() {
  await Promise.all([...running].map((service) => service.stop()));
}

export interface ServiceSettings {
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  poolSize: number;
  /** A fixed port, so that a restarted service answers where the clients already send; a free one when unset. */
  port?: number;
  /** The program to run instead of the service (the bench's HTTP floor), relative to the project. */
  entry?: string;
  /** More environment for the service (timings, worker count). */
  env?: Record<string, string>;
  /** Every line the service prints (stdout and stderr), as it prints it. */
  onLine?: (line: string) => void;
  /** When the service's main process exits, and whether the bench had asked it to. */
  onExit?: (exit: { code: number | null; signal: string | null; requested: boolean }) => void;
}

export async function startService(s: ServiceSettings): Promise<ServiceProcess> {
  const port = s.port || await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', s.entry ?? 'src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: s.databaseUrl,
      REDIS_URL: s.redisUrl,
      REDIS_KEY_PREFIX: s.redisKeyPrefix,
      DB_POOL_SIZE: String(s.poolSize),
      PORT: String(port),
      ...s.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let requested = false;
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    s.onExit?.({ code, signal, requested });
    resolve();
  }));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // ESRCH: nothing of the group is left.
    }
  };
  const service: ServiceProcess = {
    url: '',
    pid: child.pid!,
    async stop(graceMs = 10_000) {
      requested = true;
      if (alive()) {
        child.kill('SIGTERM');
        const timer = setTimeout(killGroup, graceMs);
        await exited;
        clearTimeout(timer);
      }
      killGroup(); // workers the main process may have left behind
      running.delete(service);
    },
    async kill() {
      requested = true;
      killGroup();
      await exited;
      running.delete(service);
    },
  };
  running.add(service);

  let output = '';
  const lines = (data: Buffer, partial: { rest: string }) => {
    output = (output + data).slice(-8000);
    const text = partial.rest + data;
    const complete = text.split('\n');
    partial.rest = complete.pop()!;
    for (const line of complete) s.onLine?.(line);
  };
  const out = { rest: '' };
  const err = { rest: '' };
  child.stderr!.on('data', (d: Buffer) => lines(d, err));
  const url = `http://127.0.0.1:${port}`;
  let poll: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    // Listening: its start-up line, or, where the log level hides that line, its first answer.
    child.stdout!.on('data', (d: Buffer) => {
      lines(d, out);
      if (/listening on http:/.test(output)) resolve();
    });
    poll = setInterval(() => {
      fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) }).then(() => resolve(), () => {});
    }, 250);
    child.once('exit', (code) => reject(new Error(`the service exited (${code}) before listening:\n${output.trim()}`)));
    setTimeout(() => reject(new Error(`the service did not start within 30 s:\n${output.trim()}`)), 30_000).unref();
  }).catch(async (error) => { await service.stop(); throw error; }).finally(() => clearInterval(poll));
  service.url = url;
  return service;
}
