import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import postgres from 'postgres';
import { couponIdsOf, DEFAULT_SEED } from '../src/seed.ts';
import { createTestEnv, type TestEnv } from './helpers.ts';

// The schema is the last line of defence: writes that no correct variant makes, made directly,
// must be refused by PostgreSQL itself.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

const [couponOfUser1] = couponIdsOf(DEFAULT_SEED, 1) as [number];

async function constraintOf(write: Promise<unknown>): Promise<string> {
  try {
    await write;
  } catch (err) {
    if (err instanceof postgres.PostgresError) return err.constraint_name ?? err.code;
    throw err;
  }
  return 'accepted';
}

const insertOrder = (userId: number, couponId: number | null) =>
  env.sql<{ id: string }[]>`insert into orders (user_id, total_amount, coupon_id) values (${userId}, 9.99, ${couponId}) returning id`;

test('an order cannot use a coupon of another user', async () => {
  assert.equal(await constraintOf(insertOrder(2, couponOfUser1)), 'orders_coupon_owned_by_user');
});

test('a coupon is on one order at most', async () => {
  await insertOrder(1, couponOfUser1);
  assert.equal(await constraintOf(insertOrder(1, couponOfUser1)), 'orders_coupon_once');
});

test('a used coupon names the order that has it, not another one', async () => {
  const [withCoupon] = await insertOrder(1, couponOfUser1);
  const [other] = await insertOrder(1, null);
  assert.equal(await constraintOf(env.sql`
    update user_coupon set status = 'used', order_id = ${other!.id} where id = ${couponOfUser1}`), 'user_coupon_names_its_order');
  assert.equal(await constraintOf(env.sql`
    update user_coupon set status = 'used', order_id = ${withCoupon!.id} where id = ${couponOfUser1}`), 'accepted');
  const [coupon] = await env.sql`select status, order_id from user_coupon where id = ${couponOfUser1}`;
  assert.deepEqual({ ...coupon }, { status: 'used', orderId: withCoupon!.id });
});
