import type postgres from 'postgres';
import type { CouponRow, Db } from './queries.ts';
import type { Refusal, VerifiedOrderInput } from './verified-order.ts';

// The calls of sql/place-order.sql's functions, and the reads around them.

/** The coupon's definition for pricing: no lock (the function verifies it under one). */
export async function readOwnCoupon(db: Db, couponId: number, userId: number): Promise<CouponRow | undefined> {
  const [row] = await db<CouponRow[]>`
    select id, kind, rate, threshold, amount, status from user_coupon where id = ${couponId} and user_id = ${userId}`;
  return row;
}

export interface FunctionResult {
  orderId: string | null;
  createdAt: Date | null;
  refusal: Refusal | null;
}

// Parameters of the schema's own types (enums) are sent as text and cast in SQL: a parameter of a
// built-in type lets the driver send an unprepared statement (through a transaction pooler) in one
// flight once it knows its types (patches/), where an enum's OID could change with the schema.

/** One order, one statement: locks, verifies and writes, all or nothing (autocommit). */
export async function placeOrderCall(db: Db, o: VerifiedOrderInput): Promise<FunctionResult> {
  const [row] = await db<FunctionResult[]>`
    select order_id, created_at, refusal from place_order(
      ${o.userId}::int, ${o.productIds}::int[], ${o.snapshotIds}::int[], ${o.counts}::int[], ${o.prices}::numeric[],
      ${o.couponId}::int, ${o.coupon?.kind ?? null}::text::coupon_kind, ${o.coupon?.rate ?? null}::numeric,
      ${o.coupon?.threshold ?? null}::numeric, ${o.coupon?.amount ?? null}::numeric,
      ${o.points}::int, ${o.pointsUsed}::int, ${o.total}::numeric, ${o.requestKey}::uuid,
      ${o.idempotency?.key ?? null}::text, ${o.idempotency?.fingerprint ?? null}::text, ${o.idempotency?.ttlSeconds ?? null}::int)`;
  return row!;
}

/** The diagnostic read of an order the service refused: the database's own refusal, if any. No lock. */
export async function orderRefusal(db: Db, o: VerifiedOrderInput): Promise<Refusal | null> {
  const [row] = await db<{ refusal: Refusal | null }[]>`
    select order_refusal(
      ${o.userId}::int, ${o.productIds}::int[], ${o.snapshotIds}::int[], ${o.counts}::int[], ${o.prices}::numeric[],
      ${o.couponId}::int, ${o.coupon?.kind ?? null}::text::coupon_kind, ${o.coupon?.rate ?? null}::numeric,
      ${o.coupon?.threshold ?? null}::numeric, ${o.coupon?.amount ?? null}::numeric, ${o.points}::int) as refusal`;
  return row!.refusal;
}

export interface BatchEntry { input: VerifiedOrderInput; verifyOnly: boolean }

/** A batch, one statement: one result per entry, by its index in `entries`. */
export async function placeOrdersCall(db: Db, entries: BatchEntry[]): Promise<Map<number, FunctionResult>> {
  const orders = entries.map(({ input: o, verifyOnly }, idx) => ({
    idx, user_id: o.userId, product_ids: o.productIds, snapshot_ids: o.snapshotIds, counts: o.counts, prices: o.prices,
    coupon_id: o.couponId, coupon_kind: o.coupon?.kind ?? null, coupon_rate: o.coupon?.rate ?? null,
    coupon_threshold: o.coupon?.threshold ?? null, coupon_amount: o.coupon?.amount ?? null,
    points: o.points, points_used: o.pointsUsed, total: o.total, request_key: o.requestKey,
    idem_key: o.idempotency?.key ?? null, idem_fingerprint: o.idempotency?.fingerprint ?? null,
    idem_ttl_seconds: o.idempotency?.ttlSeconds ?? null, verify_only: verifyOnly,
    order_id: o.accepted?.orderId ?? null, created_at: o.accepted?.createdAt.toISOString() ?? null,
    reservation_id: o.accepted?.reservationId ?? null,
  }));
  const rows = await db<(FunctionResult & { idx: number })[]>`
    select idx, order_id, created_at, refusal from place_orders(${db.json(orders as postgres.JSONValue)})`;
  return new Map(rows.map((r) => [r.idx, r]));
}

export interface KeyedOrder { id: number; createdAt: Date; totalAmount: string; pointsUsed: number }

/** The orders stored under these request keys (after a lost answer: those that committed). */
export async function ordersByRequestKey(db: Db, keys: string[]): Promise<Map<string, KeyedOrder>> {
  const rows = await db<{ requestKey: string; id: string; createdAt: Date; totalAmount: string; pointsUsed: number }[]>`
    select request_key, id, created_at, total_amount, points_used from orders where request_key = any(${keys}::uuid[])`;
  return new Map(rows.map((r) => [r.requestKey,
    { id: Number(r.id), createdAt: r.createdAt, totalAmount: r.totalAmount, pointsUsed: r.pointsUsed }]));
}
