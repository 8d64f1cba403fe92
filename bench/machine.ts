import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import postgres from 'postgres';
import { pgbenchVersion } from './pgbench.ts';
import { ROOT } from './service-process.ts';

// What the figures were measured on: they compare within one run, not across machines.

const SETTINGS = ['max_connections', 'shared_buffers', 'synchronous_commit', 'fsync', 'wal_level',
  'default_transaction_isolation', 'max_pred_locks_per_transaction', 'work_mem'];

export type Machine = Awaited<ReturnType<typeof describeMachine>>;

export async function describeMachine(databaseUrl: string, poolSize: number, origin: { postgres: string; redis: string }) {
  // Unpinned on purpose: the report records the server's and database's own settings, as an
  // operator left them (a pinned session would show the service's values instead).
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [{ version }] = await sql`select current_setting('server_version') as version` as unknown as [{ version: string }];
    const rows = await sql<{ name: string; setting: string; unit: string | null }[]>`
      select name, setting, unit from pg_settings where name = any(${SETTINGS})`;
    const git = gitState();
    return {
      gitSha: git.sha,
      /** Tracked files that differ from that commit (docs and results aside): the figures are not the commit's alone. */
      gitUncommitted: git.uncommitted,
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      poolSize,
      /** The pgbench the database ceiling runs with, or null: none on PATH. */
      pgbench: pgbenchVersion(),
      postgres: {
        version,
        origin: origin.postgres,
        settings: Object.fromEntries(rows.map((r) => [r.name, r.unit ? `${r.setting} (${r.unit})` : r.setting])),
      },
      redis: { origin: origin.redis },
    };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * The checkout the bench runs from: HEAD's sha ('unknown' outside git) and the tracked files that
 * differ from it, Markdown and bench/results aside (a README edit or the results being written
 * change no figure; a changed function does); null when git could not tell.
 */
export function gitState(cwd = ROOT): { sha: string; uncommitted: string[] | null } {
  const git = (args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  let sha: string;
  try {
    sha = git(['rev-parse', 'HEAD']).trim();
  } catch {
    return { sha: 'unknown', uncommitted: [] };
  }
  try {
    const changed = git(['diff', '-z', '--name-only', 'HEAD', '--', ':(top)', ':(top,exclude)*.md', ':(top,exclude)bench/results']);
    return { sha, uncommitted: changed.split('\0').filter(Boolean) };
  } catch {
    return { sha, uncommitted: null };
  }
}

/**
 * "git 5620b29404", "git 5620b29404 with uncommitted changes to sql/place-order.sql", or "git
 * 5620b29404 (uncommitted changes unknown)": the report's line.
 */
export function commitLine(m: { gitSha: string; gitUncommitted?: string[] | null }): string {
  const sha = `git ${m.gitSha.slice(0, 10)}`;
  // Absent: results written before this field existed.
  if (m.gitUncommitted === undefined) return sha;
  if (m.gitUncommitted === null) return `${sha} (uncommitted changes unknown)`;
  const changed = m.gitUncommitted;
  if (!changed.length) return sha;
  const shown = changed.slice(0, 3).join(', ') + (changed.length > 3 ? ` and ${changed.length - 3} more` : '');
  return `${sha} with uncommitted changes to ${shown}`;
}
