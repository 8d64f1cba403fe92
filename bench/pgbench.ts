import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pgOptions, sessionSettings } from '../src/session-settings.ts';
import { parsePgbenchOutput, type PgbenchFigures } from './pgbench-output.ts';

// Runs pgbench from PATH on a script of ours, against the bench's database. The script lives in a
// temporary directory for the run only; the connection goes in PG* variables rather than on the
// command line, where the password would show in the process list.

/** pgbench's version line, or null when there is none on PATH. */
export function pgbenchVersion(): string | null {
  try {
    return execFileSync('pgbench', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** libpq's environment for a postgres:// URL. */
export function libpqEnv(url: string): Record<string, string> {
  const u = new URL(url);
  const env: Record<string, string> = { PGDATABASE: decodeURIComponent(u.pathname.slice(1)) || 'postgres' };
  if (u.hostname) env.PGHOST = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (u.port) env.PGPORT = u.port;
  if (u.username) env.PGUSER = decodeURIComponent(u.username);
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  const sslmode = u.searchParams.get('sslmode');
  if (sslmode) env.PGSSLMODE = sslmode;
  return env;
}

export interface PgbenchRun {
  databaseUrl: string;
  /** A script of ours, or pgbench's built-in "simple update" (-N: TPC-B-like without the branch and teller updates) on its tables in `schema`. */
  workload: { script: string } | { builtin: 'simple-update'; schema: string };
  clients: number;
  threads: number;
  /** -T seconds, or -t transactions per client. */
  length: { durationSec: number } | { transactionsPerClient: number };
}

export interface PgbenchResult extends PgbenchFigures {
  /** The command line, as it would be typed (the script's temporary path abbreviated). */
  command: string;
}

// Every pgbench still running, so that an interrupted bench can stop them and remove their scripts
// before it exits (the run's own clean-up may not get its turn then).
const running = new Set<{ child: ChildProcess; exited: Promise<void>; dir: string }>();

export async function stopAllPgbench() {
  await Promise.all([...running].map(async ({ child, exited, dir }) => {
    child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  }));
}

export async function runPgbench(r: PgbenchRun): Promise<PgbenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'orders-pgbench-'));
  try {
    const file = join(dir, 'order.sql');
    const builtin = 'builtin' in r.workload;
    if ('script' in r.workload) await writeFile(file, r.workload.script);
    const length = 'durationSec' in r.length ? ['-T', String(r.length.durationSec)] : ['-t', String(r.length.transactionsPerClient)];
    // -n: no vacuum before the run; -M prepared: the service's driver prepares its statements too.
    const args = ['-n', '-M', 'prepared', '-c', String(r.clients), '-j', String(r.threads), ...length, ...(builtin ? ['-N'] : ['-f', file])];
    const output = await run(args, pgbenchEnv(r.databaseUrl, 'schema' in r.workload ? r.workload.schema : undefined), dir);
    const figures = parsePgbenchOutput(output);
    if (!figures) throw new Error(`pgbench printed no tps:\n${output.slice(-2000)}`);
    return { ...figures, command: `pgbench ${args.join(' ').replace(file, 'order.sql')}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Creates pgbench's own tables (pgbench -i, scale factor `scale`: 100,000 accounts each) in
 * `schema` of the database, which must exist; the orders schema (public) is not touched.
 */
export async function initPgbenchTables(databaseUrl: string, schema: string, scale: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'orders-pgbench-'));
  try {
    await run(['-i', '-q', '-s', String(scale)], pgbenchEnv(databaseUrl, schema), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * pgbench's environment: the connection in PG* variables, its sessions pinned as the service's
 * are whatever the database's defaults, unqualified names resolved in `searchPath` when given.
 */
function pgbenchEnv(databaseUrl: string, searchPath?: string): NodeJS.ProcessEnv {
  const settings = { ...sessionSettings(), ...(searchPath && { search_path: searchPath }) };
  return { ...process.env, ...libpqEnv(databaseUrl), PGOPTIONS: pgOptions(settings) };
}

function run(args: string[], env: NodeJS.ProcessEnv, dir: string): Promise<string> {
  const child = spawn('pgbench', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d; });
  child.stderr!.on('data', (d: Buffer) => { output += d; });
  const entry = {
    child,
    dir,
    exited: new Promise<void>((resolve) => child.once('close', () => resolve())),
  };
  running.add(entry);
  return new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      running.delete(entry);
      // A client that hit an error aborts, and pgbench exits 2 with a partial result: not a ceiling.
      if (code === 0) resolve(output);
      else reject(new Error(`pgbench exited ${signal ?? code}:\n${output.slice(-2000)}`));
    });
  });
}
