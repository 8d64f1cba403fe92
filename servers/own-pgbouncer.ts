import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopChild } from './child.ts';
import { isExecutable, onPath } from './services.ts';
import { freePort } from '../src/free-port.ts';

// A PgBouncer of our own between the service and PostgreSQL, the tests' or the bench's: Debian's
// `pgbouncer` on a free port in a temporary directory, transaction pooling, nothing of the
// service's accommodated (no `ignore_startup_parameters`): what an operator runs in front of many
// service instances. remove() stops it and deletes the directory.

export interface OwnPgBouncer {
  /** `postgresUrl` with the pooler's host and port: the same user, password and database. */
  urlFor(postgresUrl: string): string;
  port: number;
  /** Stops it (SIGTERM: PgBouncer's immediate shutdown, every client and server connection cut), keeping its port and files. */
  stop(): Promise<void>;
  /** Starts it again on the same port after stop(); rejects with its last log lines when it does not start. */
  start(): Promise<void>;
  remove(): Promise<void>;
}

/** How to install it, for the line that says which runs did not happen without it. */
export const PGBOUNCER_INSTALL = 'apt-get install pgbouncer';

/** The pgbouncer binary: on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH). */
export function findPgBouncer(): string | null {
  return onPath('pgbouncer') ?? ['/usr/sbin/pgbouncer', '/usr/local/sbin/pgbouncer'].find(isExecutable) ?? null;
}

export interface PgBouncerOptions {
  /** Server connections per database and user: what instances x pool size share. */
  poolSize: number;
}

/**
 * Starts `binary` in front of the PostgreSQL of `postgresUrl` (host, port, user, password; every
 * database of that server is reachable under its own name). Rejects with the pooler's last log
 * lines when it does not start.
 */
export async function startOwnPgBouncer(binary: string, postgresUrl: string, o: PgBouncerOptions): Promise<OwnPgBouncer> {
  const server = new URL(postgresUrl);
  const dir = await mkdtemp(join(tmpdir(), 'orders-bench-pgbouncer-'));
  // PgBouncer refuses to run as root: as root it runs as `nobody`, who must read and write here.
  await chmod(dir, 0o777);
  const port = await freePort();
  const user = decodeURIComponent(server.username || 'postgres');
  const password = decodeURIComponent(server.password);
  const logFile = join(dir, 'pgbouncer.log');
  const quoted = (s: string) => `"${s.replaceAll('"', '""')}"`;
  // Readable by `nobody` (below): the password of a local test or bench server, if it has one.
  await writeFile(join(dir, 'users.txt'), `${quoted(user)} ${quoted(password)}\n`, { mode: 0o644 });
  const libpqQuoted = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  await writeFile(join(dir, 'pgbouncer.ini'), [
    '[databases]',
    `* = host=${server.hostname} port=${server.port || 5432} user=${libpqQuoted(user)}${password ? ` password=${libpqQuoted(password)}` : ''}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    // The clients are this machine's tests and bench: trust, as the local PostgreSQL does.
    'auth_type = trust',
    `auth_file = ${join(dir, 'users.txt')}`,
    'pool_mode = transaction',
    `default_pool_size = ${o.poolSize}`,
    'max_client_conn = 2000',
    `admin_users = ${user}`,
    `logfile = ${logFile}`,
    'log_connections = 0',
    'log_disconnections = 0',
  ].join('\n') + '\n', { mode: 0o644 });

  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), join(dir, 'pgbouncer.ini')];
  const accepts = () => new Promise<boolean>((resolve) => {
    const socket = createConnection(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
  let child: ChildProcess | null = null;
  const launch = async () => {
    let output = '';
    const started = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    started.stdout!.on('data', (d) => { output = (output + d).slice(-4000); });
    started.stderr!.on('data', (d) => { output = (output + d).slice(-4000); });
    for (let i = 0; i < 100 && started.exitCode === null && !(await accepts()); i++) await sleep(50);
    if (started.exitCode !== null || !(await accepts())) {
      await stopChild(started);
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(`${binary} did not start on port ${port}:\n${(output + log).trim().split('\n').slice(-5).join('\n')}`);
    }
    child = started;
  };
  await launch().catch(async (err) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  const stop = async () => {
    if (child) await stopChild(child, 5_000);
    child = null;
  };
  return {
    port,
    urlFor(postgresUrl: string) {
      const u = new URL(postgresUrl);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    stop,
    async start() {
      if (!child) await launch();
    },
    remove: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
