import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import postgres from 'postgres';
import { withDatabase } from '../src/database.ts';
import { startOwnPostgres } from '../servers/own-postgres.ts';
import { latencyRecorder, type LatencySummary } from './latency.ts';
import { resultBase } from './report.ts';
import { spread, type Spread } from './summary.ts';

// What splitting the products over two databases costs an order that needs a product from each:
// the part of "beyond one database" (docs/beyond-one-database.md) that one machine can simulate.
// Three ways of selling 1 unit each of two products, on an embedded PostgreSQL of its own
// (max_prepared_transactions > 0, which two-phase commit needs and the default forbids):
//
//   one database  - both product rows and the order row in one database, one local transaction;
//   one shard     - products 1-5 in database A, 6-10 in B; each order buys two products of one
//                   shard (what co-location buys): a local transaction on that shard;
//   two shards    - each order buys one product of A and one of B, with the order row in A:
//                   two-phase commit as Citus does it across workers (PREPARE TRANSACTION on
//                   both, then COMMIT PREPARED on both), locks taken in one global order (A, then
//                   B) so that no cycle can span the two servers.
//
// Every mode runs the same closed loop (clients x seconds) on 10 products, interleaved over the
// rounds, and is audited: units sold = orders placed, nothing left prepared.

const MODES = ['one database', 'one shard', 'two shards'] as const;
type Mode = typeof MODES[number];
const PRODUCTS = 10;
const STOCK = 10_000_000;

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
};

const program = new Command('bench:shards')
  .description('Two-phase commit across two databases against one database: orders/s and latency of orders that buy two products')
  .option('--clients <n>', 'concurrent buyers', positiveInt, 16)
  .option('--seconds <n>', 'seconds each run lasts', positiveInt, 8)
  .option('--rounds <n>', 'runs of every mode, interleaved', positiveInt, 3)
  .option('--out <dir>', 'where to write the results', 'bench/results');

interface Run { mode: Mode; round: number; orders: number; failures: Record<string, number>; ordersPerSec: number; latencyMs: LatencySummary; audit: string[] }

const SCHEMA = `
  create table product (id int primary key, stock int not null check (stock >= 0), sales int not null default 0);
  create table orders (id bigserial primary key, product_ids int[] not null, created_at timestamptz not null default now());
  insert into product (id, stock) select g, ${STOCK} from generate_series(1, ${PRODUCTS}) g;`;

async function main() {
  const o = program.parse().opts<{ clients: number; seconds: number; rounds: number; out: string }>();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const server = await startOwnPostgres({ max_prepared_transactions: String(o.clients * 2 + 10) });
  const pools: postgres.Sql[] = [];
  try {
    const admin = postgres(server.url, { max: 1, onnotice: () => {} });
    pools.push(admin);
    const names = { one: 'one_db', a: 'shard_a', b: 'shard_b' };
    for (const db of Object.values(names)) await admin.unsafe(`create database ${db}`);
    const open = (db: string) => {
      // Bounded waits, as the service's: a lock not granted within 1 s is a failure, not a stall.
      const sql = postgres(withDatabase(server.url, db), { max: o.clients, onnotice: () => {},
        connection: { lock_timeout: 1000, statement_timeout: 5000, idle_in_transaction_session_timeout: 5000 } });
      pools.push(sql);
      return sql;
    };
    const [one, a, b] = [open(names.one), open(names.a), open(names.b)];
    const reset = async () => {
      for (const sql of [one, a, b]) await sql.unsafe(`drop table if exists product, orders; ${SCHEMA}`);
    };
    const pick = (from: number, to: number) => from + Math.floor(Math.random() * (to - from + 1));
    const sell = (tx: postgres.TransactionSql, id: number) =>
      tx`update product set stock = stock - 1, sales = sales + 1 where id = ${id} and stock >= 1 returning id`;

    const placeOrder: Record<Mode, () => Promise<void>> = {
      'one database': async () => {
        const [p, q] = [pick(1, 5), pick(6, 10)];
        await one.begin(async (tx) => {
          await sell(tx, p);
          await sell(tx, q);
          await tx`insert into orders (product_ids) values (${[p, q]}::int[])`;
        });
      },
      'one shard': async () => {
        const shard = Math.random() < 0.5 ? a : b;
        const base = shard === a ? 0 : 5;
        const first = pick(1, 4);
        const [p, q] = [base + first, base + pick(first + 1, 5)];
        await shard.begin(async (tx) => {
          await sell(tx, p);
          await sell(tx, q);
          await tx`insert into orders (product_ids) values (${[p, q]}::int[])`;
        });
      },
      'two shards': async () => {
        const [p, q] = [pick(1, 5), pick(6, 10)];
        const gid = `order-${randomBytes(8).toString('hex')}`;
        // Phase one on A then B (the global lock order); each transaction ends in PREPARE, which
        // makes it durable and keeps its locks; phase two commits both.
        const prepared: postgres.Sql[] = [];
        try {
          await a.begin(async (tx) => {
            await sell(tx, p);
            await tx`insert into orders (product_ids) values (${[p, q]}::int[])`;
            await tx.prepare(`${gid}-a`);
          });
          prepared.push(a);
          await b.begin(async (tx) => {
            await sell(tx, q);
            await tx.prepare(`${gid}-b`);
          });
          prepared.push(b);
        } catch (err) {
          // The coordinator decides abort: what was prepared is rolled back.
          await Promise.all(prepared.map((sql) => sql.unsafe(`rollback prepared '${gid}-${sql === a ? 'a' : 'b'}'`)));
          throw err;
        }
        await a.unsafe(`commit prepared '${gid}-a'`);
        await b.unsafe(`commit prepared '${gid}-b'`);
      },
    };

    const runOnce = async (mode: Mode, round: number): Promise<Run> => {
      await reset();
      const latency = latencyRecorder();
      const failures: Record<string, number> = {};
      let orders = 0;
      const until = performance.now() + o.seconds * 1000;
      const started = performance.now();
      await Promise.all(Array.from({ length: o.clients }, async () => {
        while (performance.now() < until) {
          const t0 = performance.now();
          try {
            await placeOrder[mode]();
            orders++;
          } catch (err) {
            const code = (err as { code?: string }).code ?? 'error';
            failures[code] = (failures[code] ?? 0) + 1;
          }
          latency.record(performance.now() - t0);
        }
      }));
      const seconds = (performance.now() - started) / 1000;
      const audit: string[] = [];
      const sold = async (sql: postgres.Sql) => (await sql<{ sales: number; off: number }[]>`
        select coalesce(sum(sales), 0)::int as sales, count(*) filter (where stock + sales <> ${STOCK})::int as off from product`)[0]!;
      const orderRows = async (sql: postgres.Sql) => (await sql<{ n: number }[]>`select count(*)::int as n from orders`)[0]!.n;
      const dbs = mode === 'one database' ? [one] : [a, b];
      const units = (await Promise.all(dbs.map(sold))).reduce((t, s) => ({ sales: t.sales + s.sales, off: t.off + s.off }), { sales: 0, off: 0 });
      const rows = (await Promise.all(dbs.map(orderRows))).reduce((t, n) => t + n, 0);
      if (units.sales !== 2 * orders) audit.push(`${units.sales} units sold for ${orders} orders of 2`);
      if (units.off) audit.push(`${units.off} products with stock + sales off`);
      if (rows !== orders) audit.push(`${rows} order rows for ${orders} orders`);
      const [left] = await admin<{ n: number }[]>`select count(*)::int as n from pg_prepared_xacts`;
      if (left!.n) audit.push(`${left!.n} transactions left prepared`);
      const run = { mode, round, orders, failures, ordersPerSec: orders / seconds, latencyMs: latency.summary(), audit };
      log(`[round ${round}] ${mode}: ${Math.round(run.ordersPerSec)} orders/s, p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms, ` +
        `failures ${JSON.stringify(failures)}, audit ${audit.length ? audit.join('; ') : 'clean'}`);
      return run;
    };

    log(`bench:shards: ${MODES.join(', ')} x ${o.rounds} rounds, ${o.clients} clients, ${o.seconds} s each, on an embedded PostgreSQL`);
    const runs: Run[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      // Each round starts with another mode, so that none always runs first.
      const order = [...MODES.slice((round - 1) % MODES.length), ...MODES.slice(0, (round - 1) % MODES.length)];
      for (const mode of order) runs.push(await runOnce(mode, round));
    }
    const [version] = await admin<{ v: string }[]>`select current_setting('server_version') as v`;
    const summary = MODES.map((mode) => {
      const own = runs.filter((r) => r.mode === mode);
      return { mode, ordersPerSec: spread(own.map((r) => r.ordersPerSec)), p50: spread(own.map((r) => r.latencyMs.p50)),
        p99: spread(own.map((r) => r.latencyMs.p99)), failures: own.reduce((t, r) => t + Object.values(r.failures).reduce((x, y) => x + y, 0), 0),
        clean: own.every((r) => !r.audit.length) };
    });
    const base = summary[0]!.ordersPerSec.median;
    const show = (s: Spread, f = (n: number) => String(Math.round(n))) => `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
    const table = [
      `| mode | orders/s | vs one database | p50 ms | p99 ms | failed | audit |`, `|---|---|---|---|---|---|---|`,
      ...summary.map((s) => `| ${s.mode} | ${show(s.ordersPerSec)} | ${(s.ordersPerSec.median / base).toFixed(2)}x | ` +
        `${show(s.p50, (n) => n.toFixed(1))} | ${show(s.p99, (n) => n.toFixed(1))} | ${s.failures} | ${s.clean ? 'clean' : 'FAILED'} |`),
    ].join('\n');
    const date = new Date().toISOString();
    const file = await resultBase(o.out, date, '-shards');
    const text = `# Two shards and two-phase commit, ${date}\n\nPostgreSQL ${version!.v} (embedded, max_prepared_transactions on), ` +
      `${o.clients} clients, ${o.seconds} s per run, ${o.rounds} interleaved rounds: median (min-max). Each order sells 1 unit of each ` +
      `of two products of 10 and writes an order row.\n\n${table}\n`;
    await writeFile(`${file}.md`, text);
    await writeFile(`${file}.json`, `${JSON.stringify({ date, postgres: version!.v, clients: o.clients, seconds: o.seconds, summary, runs }, null, 2)}\n`);
    process.stdout.write(`\n${table}\n\nwritten: ${file}.md, ${file}.json\n`);
    return summary.every((s) => s.clean) ? 0 : 1;
  } finally {
    await Promise.allSettled(pools.map((sql) => sql.end({ timeout: 2 })));
    await server.remove();
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`bench:shards: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
