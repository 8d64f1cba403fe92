import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { stopChild } from './child.ts';
import { freePort } from '../src/free-port.ts';
import { redisAnswers } from '../src/connections.ts';

// A redis-server of our own, the bench's or a test run's, on a free port with a temporary
// directory as its --dir. It can be shut down and started again on the same port, with its data
// (SHUTDOWN SAVE writes dump.rdb into the directory, which the next start loads) or without (no
// dump left to load). With `durable`, it keeps an append-only file synced on every write (what
// the queued variant's queue needs), and survives being killed with everything it acknowledged.

export interface OwnRedis {
  url: string;
  port: number;
  stop(o: { keepData: boolean }): Promise<void>;
  /** SIGKILL: a crash; a durable server's next start replays its append-only file. */
  kill(): Promise<void>;
  /** Starts the stopped server again; resolves once it answers PING. */
  start(): Promise<void>;
  remove(): Promise<void>;
}

export async function startOwnRedis(binary: string, { durable = false }: { durable?: boolean } = {}): Promise<OwnRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'orders-bench-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  // No automatic snapshots and no AOF: the data survives a restart only when the caller asks for it.
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
    ...(durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'])];
  let child: ChildProcess | null = null;
  // Set by remove(): a fault still in progress when the bench is interrupted must not start it again.
  let removed = false;

  const start = async () => {
    if (removed) throw new Error('redis-server was removed');
    let output = '';
    const started = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    started.stdout!.on('data', (d) => { output = (output + d).slice(-4000); });
    started.stderr!.on('data', (d) => { output = (output + d).slice(-4000); });
    child = started;
    for (let i = 0; i < 100 && started.exitCode === null && !(await redisAnswers(url)); i++) await sleep(100);
    if (!(await redisAnswers(url))) {
      await stopChild(started);
      throw new Error(`${binary} did not start on port ${port}:\n${output.trim().split('\n').slice(-5).join('\n')}`);
    }
  };

  const stop = async ({ keepData }: { keepData: boolean }) => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    admin.on('error', () => {});
    try {
      await admin.connect();
      // The server closes the connection instead of answering when the shutdown succeeds.
      await admin.call('shutdown', keepData ? 'save' : 'nosave').catch(() => {});
    } finally {
      admin.disconnect();
    }
    await Promise.race([exited, sleep(10_000).then(() => stopChild(running, 0))]);
    // A dump from an earlier SHUTDOWN SAVE, or the append-only file, would bring old data back.
    if (!keepData) {
      await rm(join(dir, 'dump.rdb'), { force: true });
      await rm(join(dir, 'appendonlydir'), { recursive: true, force: true });
    }
  };

  try {
    await start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    port,
    stop,
    start,
    kill: async () => {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
    remove: async () => {
      removed = true;
      if (child) await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
