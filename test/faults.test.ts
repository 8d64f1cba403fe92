import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FAULT_NAMES } from '../bench/faults/faults.ts';
import { findPgBouncer, PGBOUNCER_INSTALL } from '../servers/own-pgbouncer.ts';

// The fault bench in its reduced form, as a user runs it: a child process on servers of its own,
// its exit code and its JSON. It restarts PostgreSQL under load, which used to kill the service
// (postgres.js 3.4.9 throwing from nextWrite, patched in patches/): a supervisor restarting the
// worker would hide that, so the test also requires that no worker exited.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VARIANTS = ['row-lock', 'redis', 'queued'];
const RECOVERY_BOUND_SEC = 30;
let tmp = '';
after(async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); });

function runFaultBench(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/main.ts', '--faults', ...args], { cwd: ROOT, env, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

test('bench --faults --quick: every fault survived, no 500, audits clean, recovered in bound, no worker crash', { timeout: 10 * 60_000 }, async () => {
  // A TMPDIR of its own (readable by the `postgres` user the embedded server runs as when we are
  // root), to check afterwards that the bench removed its servers' directories.
  tmp = await mkdtemp(join(tmpdir(), 'faults-test-'));
  await chmod(tmp, 0o755);
  const out = join(tmp, 'results');
  const { code, stdout, stderr } = await runFaultBench(['--quick', '--variants', VARIANTS.join(','),
    '--recovery-bound', String(RECOVERY_BOUND_SEC), '--out', out], { ...process.env, TMPDIR: tmp });
  const output = `exit ${code}\n${stdout.slice(-6000)}\n${stderr.slice(-4000)}`;

  const files = await readdir(out).catch(() => [] as string[]);
  assert.ok(files.some((f) => f.endsWith('-faults-quick.md')), `a -faults-quick.md in ${files}: ${output}`);
  const json = files.find((f) => f.endsWith('-faults-quick.json'));
  assert.ok(json, output);
  const result = JSON.parse(await readFile(join(out, json), 'utf8'));
  // pooler-restart runs the service through a PgBouncer of the bench's own: only where there is one.
  const faults = findPgBouncer() ? FAULT_NAMES : FAULT_NAMES.filter((f) => f !== 'pooler-restart');
  if (faults.length < FAULT_NAMES.length) console.log(`# pooler-restart did not run: no pgbouncer (${PGBOUNCER_INSTALL})`);
  assert.deepEqual([...new Set(result.cells.map((c: any) => c.fault))], faults);
  // queued does not run under redis-restart-empty: its queue is the data that fault drops.
  assert.equal(result.cells.length, faults.length * VARIANTS.length - 1);
  assert.ok(!result.cells.some((c: any) => c.fault === 'redis-restart-empty' && c.variant === 'queued'));
  // The pooler restarted under load: requests refused meanwhile are 503s (the general checks below
  // add: no other 5xx, recovery in bound, audit clean, every 201 its order).
  // (queued keeps accepting while the database is away: its 202s need Redis only.)
  for (const c of result.cells.filter((c: any) => c.fault === 'pooler-restart' && c.variant !== 'queued')) {
    const during = Object.entries(c.outcomes.during as Record<string, number>).filter(([label]) => !label.startsWith('201'));
    assert.ok(during.length > 0 && during.every(([label]) => label.startsWith('503')), `${c.variant}: ${JSON.stringify(c.outcomes.during)}`);
  }
  // Finding 1 first: PostgreSQL restarted under load, and no service process died.
  for (const c of result.cells.filter((c: any) => c.fault === 'postgres-restart')) {
    assert.deepEqual([...c.workerExits, ...c.serviceDeaths], [], `${c.variant}: no worker exited unexpectedly: ${c.serviceErrors.join('\n')}`);
  }
  for (const c of result.cells) {
    const at = `${c.fault}/${c.variant}`;
    assert.ok(c.requests > 0, `${at}: load ran`);
    assert.equal(c.outcomes.serverErrors, 0, `${at}: no 5xx but 503: ${JSON.stringify(c.outcomes.whole)}`);
    assert.ok(c.outcomes.recoverySec !== null && c.outcomes.recoverySec <= RECOVERY_BOUND_SEC, `${at}: recovered, ${c.outcomes.recoverySec}`);
    assert.ok(c.audit, `${at}: audited`);
    assert.deepEqual(c.audit.problems.filter((p: string) => !p.startsWith('ordersWithoutSuccess')), [], `${at}: audit clean`);
    assert.deepEqual(c.mismatched, [], `${at}: every 201 is its order`);
    // Without a 201 only where the client was told the outcome is unknown and which order to look up.
    if (c.fault !== 'service-kill') {
      for (const u of c.unannounced) assert.ok(u.clientSaw.includes(`503 OUTCOME_UNKNOWN (${u.orderNo})`), `${at}: ${JSON.stringify(u)}`);
    }
    // Every 202 written or rejected once the queue drained, nothing accepted lost (redis-kill: the queue's server crashed).
    if (c.variant === 'queued') assert.equal(c.queued?.withoutOutcome, 0, `${at}: ${JSON.stringify(c.queued)}`);
    if (c.variant === 'redis' || c.variant === 'queued') assert.ok(c.mirrors && c.mirrors.equalAfterSec !== null, `${at}: mirrors equal the database: ${JSON.stringify(c.mirrors)}`);
    assert.deepEqual([...c.workerExits, ...c.serviceDeaths], [], `${at}: no process died`);
    assert.deepEqual(c.failures, [], at);
  }
  assert.equal(result.failed, false);
  assert.equal(code, 0, output);

  assert.deepEqual((await readdir(tmp)).filter((f) => f.startsWith('orders-bench-')), [], 'server directories removed');
  const leftovers = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(tmp));
  assert.deepEqual(leftovers, [], 'no server process left running');
});
