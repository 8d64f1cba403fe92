import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { createApp } from '../src/app.ts';
import { createTestEnv, holdRow, json, listeningUrl, type TestEnv } from './helpers.ts';

// The service as its documented start command runs it (`npm start`): signals, draining, and the
// supervisor that restarts a worker which dies.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

interface Service { npm: ChildProcess; url: string; output: () => string; exited: Promise<number | null> }

async function npmStart(extraEnv: Record<string, string> = {}): Promise<Service> {
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: env.config.databaseUrl, REDIS_URL: env.config.redisUrl,
      REDIS_KEY_PREFIX: env.config.redisKeyPrefix, PORT: '0', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout!.on('data', (d) => { output += d; });
  npm.stderr!.on('data', (d) => { output += d; });
  const exited = once(npm, 'exit').then(([code]) => code as number | null);
  const url = await listeningUrl(() => output);
  return { npm, url, output: () => output, exited };
}

/**
 * Pids of the processes descended from `root` whose command line runs the service's entry point
 * (the supervisor and its workers; npm's own shell is exec'd away). Descendants only, so that
 * services other test files or benches run at the same time are not counted.
 */
function servicePids(root: number): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid,ppid,args'], { encoding: 'utf8' }).split('\n').slice(1)
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l)).filter((m) => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
  const tree = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows) if (tree.has(r.ppid) && !tree.has(r.pid)) { tree.add(r.pid); grew = true; }
  }
  return rows.filter((r) => tree.has(r.pid) && r.args.includes('src/main.ts') && r.args.includes('--import tsx')).map((r) => r.pid);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('SIGTERM to `npm start` under keep-alive load: drained within the deadline, no process left', async () => {
  const service = await npmStart({ SHUTDOWN_DRAIN_MS: '3000', WEB_CONCURRENCY: '2' });
  const started = servicePids(service.npm.pid!);
  const stillRunning = () => execFileSync('ps', ['-eo', 'pid'], { encoding: 'utf8' }).split('\n').map(Number).filter((p) => started.includes(p));
  let stoppedMs: number;
  let left: number[];
  try {
    assert.equal(started.length, 3, `supervisor and two workers: ${started}`);
    const load = autocannon({ url: `${service.url}/products`, connections: 20, duration: 20 }, () => {});
    await sleep(1_500);
    const t0 = performance.now();
    service.npm.kill('SIGTERM');
    assert.equal(await service.exited, 0, service.output());
    stoppedMs = performance.now() - t0;
    await sleep(200);
    left = stillRunning();
    load.stop();
  } finally {
    // A failed assertion must not leave the service behind (the test file would never end).
    for (const pid of stillRunning()) process.kill(pid, 'SIGKILL');
  }
  assert.deepEqual(left, [], `processes left running:\n${service.output()}`);
  assert.ok(stoppedMs < 3_000 + 2_000, `took ${Math.round(stoppedMs)} ms to stop`);
  assert.match(service.output(), /SIGTERM: draining/);
});

test('a worker that dies is replaced; the service keeps answering', async () => {
  const service = await npmStart({ WEB_CONCURRENCY: '1' });
  try {
    const workerPid = Number(/pid (\d+)\)/.exec(service.output())![1]);
    process.kill(workerPid, 'SIGKILL');
    let answered = false;
    for (let i = 0; i < 100 && !answered; i++) {
      await sleep(100);
      answered = await fetch(`${service.url}/health`).then((r) => r.status === 200, () => false);
    }
    assert.ok(answered, service.output());
    assert.match(service.output(), new RegExp(`worker ${workerPid} exited unexpectedly \\(SIGKILL\\)`));
    const pids = [...service.output().matchAll(/pid (\d+)\)/g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 2, 'a second worker started');
    assert.notEqual(pids[1], workerPid);
  } finally {
    service.npm.kill('SIGTERM');
    await service.exited;
  }
});

test('a replacement worker that cannot start yet is retried until it can; the service never stops', async () => {
  const service = await npmStart({ WEB_CONCURRENCY: '1' });
  try {
    const workerPid = Number(/pid (\d+)\)/.exec(service.output())![1]);
    // A worker cannot start without its tables (as without its database): take them away, kill it.
    await env.sql`alter table product rename to product_away`;
    process.kill(workerPid, 'SIGKILL');
    for (let i = 0; i < 100 && !/could not start/.test(service.output()); i++) await sleep(100);
    assert.match(service.output(), /could not start \(code 1\); starting a new one in \d+ ms/);
    assert.equal(service.npm.exitCode, null, 'the supervisor is still running');
    await env.sql`alter table product_away rename to product`;
    let answered = false;
    for (let i = 0; i < 100 && !answered; i++) {
      await sleep(100);
      answered = await fetch(`${service.url}/health`).then((r) => r.status === 200, () => false);
    }
    assert.ok(answered, service.output());
    const res = await fetch(`${service.url}/orders/row-lock`, {
      method: 'POST', headers: { Authorization: 'Bearer seed-1', 'Content-Type': 'application/json' },
      body: JSON.stringify(env.body([{ productId: 1, count: 1 }])),
    });
    assert.equal(res.status, 201);
  } finally {
    service.npm.kill('SIGTERM');
    await service.exited;
  }
});

test('a second signal stops at once, even with a request still in flight', async () => {
  // A request stuck on a held row lock keeps the drain from finishing for 60 s.
  const service = await npmStart({ SHUTDOWN_DRAIN_MS: '60000', DB_LOCK_TIMEOUT_MS: '60000' });
  const unlock = await holdRow(env.sql, 1);
  try {
    const stuck = fetch(`${service.url}/orders/row-lock`, {
      method: 'POST', headers: { Authorization: 'Bearer seed-1', 'Content-Type': 'application/json' },
      body: JSON.stringify(env.body([{ productId: 1, count: 1 }])),
    }).then((r) => r.status, () => 'cut');
    await sleep(500);
    service.npm.kill('SIGTERM');
    await sleep(1_000);
    assert.equal(service.npm.exitCode, null, 'still draining');
    const t0 = performance.now();
    service.npm.kill('SIGTERM');
    const code = await service.exited;
    assert.ok(performance.now() - t0 < 2_000, 'the second signal ended it at once');
    assert.notEqual(code, 0);
    assert.equal(await stuck, 'cut');
  } finally {
    await unlock();
  }
  const [{ orders }] = await env.sql`select count(*)::int as orders from orders` as unknown as [{ orders: number }];
  assert.equal(orders, 0, 'the cut order was rolled back with its connection');
});

test('while draining, /health answers 503 and every answer closes its connection', async () => {
  const app = createApp({ sql: env.sql, redis: env.redis, config: env.config, isDraining: () => true });
  const res = await app.request('/health');
  assert.equal(res.status, 503);
  assert.deepEqual(await json(res), { status: 'draining', postgres: 'ok', redis: 'ok' });
  assert.equal(res.headers.get('Connection'), 'close');
  const products = await app.request('/products');
  assert.equal(products.status, 200);
  assert.equal(products.headers.get('Connection'), 'close');
  const refused = await app.request('/orders/row-lock', { method: 'POST', body: '{}' });
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get('Connection'), 'close');
});
