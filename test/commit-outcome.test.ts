import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { CommitOutcomeUnknown, toAppError } from '../src/errors.ts';
import { boundedPool, inTransaction, type CommitCheck } from '../src/transaction.ts';
import { createTestEnv, type TestEnv } from './helpers.ts';

// The connection dies after the transaction's statements succeeded, while COMMIT is on its way:
// whether it committed is unknown to the client, so it must be looked up, not guessed.
// (With postgres.js 3.4.9 unpatched, this very path crashed the process: a write on a null socket.)

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

/** Inserts an order and has its backend terminated as the transaction returns. */
async function orderThenLoseConnection<T>(check: CommitCheck<{ id: number }>) {
  // A connection the previous test terminated may take a while to reopen on a loaded machine:
  // waiting for it must not end the test's transaction before it begins (SERVICE_BUSY).
  const db = boundedPool(env.sql, { poolSize: 4, requestTimeoutMs: 5_000 });
  let asked = 0;
  const counted: CommitCheck<{ id: number }> = { committed: (r) => { asked++; return check.committed(r); } };
  const outcome = await inTransaction(db, 'read committed', async (tx) => {
    const [row] = await tx<{ id: string; pid: number }[]>`
      insert into orders (user_id, total_amount) values (1, 1.00) returning id, pg_backend_pid() as pid`;
    // Returning at once: the backend exits while the COMMIT that follows is on its way.
    await env.sql`select pg_terminate_backend(${row!.pid})`;
    return { id: Number(row!.id) };
  }, undefined, counted).then((value) => ({ value }), (error: unknown) => ({ error }));
  return { ...outcome, asked } as { value?: T; error?: unknown; asked: number };
}

const orderCount = async () => (await env.sql`select count(*)::int as n from orders`)[0]!.n as number;

test('connection lost before COMMIT was answered: the check finds no order, the client gets 503', async () => {
  const outcome = await orderThenLoseConnection({
    committed: async (r) => (await env.sql`select 1 from orders where id = ${r.id}`).length > 0,
  });
  assert.equal(outcome.asked, 1);
  assert.ok(outcome.error, 'fails');
  assert.equal(toAppError(outcome.error).status, 503);
  assert.equal(toAppError(outcome.error).code, 'SERVICE_UNAVAILABLE');
  assert.equal(await orderCount(), 0);
});

test('committed after all (the answer to COMMIT was lost): the result is returned', async () => {
  const outcome = await orderThenLoseConnection<{ id: number }>({ committed: async () => true });
  assert.equal(outcome.asked, 1);
  assert.equal(outcome.error, undefined);
  assert.equal(typeof outcome.value!.id, 'number');
});

test('nobody can tell: OUTCOME_UNKNOWN, with what the transaction would have returned', async () => {
  const t0 = performance.now();
  const outcome = await orderThenLoseConnection({ committed: async () => { throw new Error('still down'); } });
  assert.ok(outcome.asked > 1, 'asked again while the database may be restarting');
  assert.ok(outcome.error instanceof CommitOutcomeUnknown);
  assert.equal(toAppError(outcome.error).status, 503);
  assert.equal(typeof (outcome.error.result as { id: number }).id, 'number');
  assert.ok(performance.now() - t0 < 6_000);
});
