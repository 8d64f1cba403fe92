import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { toAppError } from '../src/errors.ts';
import { createVariants } from '../src/orders/variants/index.ts';
import { boundedPool } from '../src/transaction.ts';
import { createTestEnv, dbState, holdRow, type TestEnv } from './helpers.ts';

// The one-round-trip variant's single statement commits on its own: when its connection dies
// before the answer arrived, the order is looked up by the request key it was sent with.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

const variant = () => createVariants({
  db: boundedPool(env.sql, { poolSize: 4, requestTimeoutMs: 10_000 }), redis: env.redis, config: env.config,
})['one-round-trip'];

/**
 * Waits until a backend of this test's database is blocked inside place_order, and returns its
 * pid. Only this database's: test files run at once on one server, and terminating another
 * file's backend fails its requests (through a pooler, every request pipelined on that client).
 */
async function blockedPlaceOrder(): Promise<number> {
  for (;;) {
    const [row] = await env.sql<{ pid: number }[]>`
      select pid from pg_stat_activity
      where datname = current_database() and query like '%from place_order(%' and wait_event_type = 'Lock'`;
    if (row) return row.pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('connection lost while the statement waited on a lock: the key finds no order, 503, nothing written', async () => {
  const release = await holdRow(env.sql, 1);
  const before = await dbState(env.sql);
  const outcome = variant()(1, env.body([{ productId: 1, count: 1 }])).then(() => undefined, (err: unknown) => err);
  const pid = await blockedPlaceOrder();
  await env.sql`select pg_terminate_backend(${pid})`;
  const err = await outcome;
  await release();
  assert.equal(toAppError(err).code, 'SERVICE_UNAVAILABLE');
  assert.deepEqual(await dbState(env.sql), before);
});

test('placed: the order row carries the request key it was sent with, and nothing else does', async () => {
  const order = await variant()(1, env.body([{ productId: 2, count: 3 }]));
  assert.equal(order.totalAmount, '59.97');
  const rows = await env.sql<{ id: string; requestKey: string | null }[]>`select id, request_key from orders`;
  assert.equal(rows.length, 1);
  assert.equal(Number(rows[0]!.id), order.id);
  assert.match(rows[0]!.requestKey!, /^[0-9a-f-]{36}$/);
});
