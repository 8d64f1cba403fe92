import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopChild } from './child.ts';

// The service under test runs as its own process, started the way a user starts it, so that
// the load generator and the service do not share an event loop.

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ServiceProcess { url: string; stop(): Promise<void> }

// Every service still running, so that an interrupted bench can stop them all.
const running = new Set<ChildProcess>();

export async function stopAllServices() {
  await Promise.all([...running].map((child) => stopChild(child)));
}

export interface ServiceSettings {
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  poolSize: number;
}

export async function startService(s: ServiceSettings): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: s.databaseUrl,
      REDIS_URL: s.redisUrl,
      REDIS_KEY_PREFIX: s.redisKeyPrefix,
      DB_POOL_SIZE: String(s.poolSize),
      PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  child.stderr!.on('data', (d) => { output += d; });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      output += d;
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the service exited (${code}) before listening:\n${output.trim()}`)));
    setTimeout(() => reject(new Error(`the service did not start within 30 s:\n${output.trim()}`)), 30_000).unref();
  }).catch(async (err) => { await stopChild(child); throw err; });
  return { url, stop: () => stopChild(child) };
}
