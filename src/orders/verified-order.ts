import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { AppError } from '../errors.ts';
import { keyInUse, type IdempotencyClaim } from './idempotency.ts';
import { sortByProductId } from './place-order.ts';
import { priceOrder } from './pricing.ts';
import { toCoupon, type CouponRow } from './queries.ts';
import type { OrderRequest } from './request.ts';

// For the variants that place an order in one database call (one-round-trip, batched): the
// service prices the order with pricing.ts from what the buyer saw, BEFORE any lock; the database
// function (sql/place-order.sql) only verifies those inputs still hold and writes. This module
// builds that call's input and turns the function's refusals into the errors place-order.ts
// throws, in the same precedence.

/** The inputs the price was based on, and the priced result: what place_order verifies and writes. */
export interface VerifiedOrderInput {
  userId: number;
  /** Lines sorted by product id. */
  productIds: number[];
  snapshotIds: number[];
  counts: number[];
  prices: string[];
  couponId: number | null;
  /** The coupon's definition as priced (null without a coupon, or when the buyer does not own it). */
  coupon: Pick<CouponRow, 'kind' | 'rate' | 'threshold' | 'amount'> | null;
  points: number;
  pointsUsed: number;
  total: string;
  /** Stored on the order row: how the order is found when the answer to its statement is lost. */
  requestKey: string;
  idempotency?: IdempotencyClaim;
  /** A queued order: the id, time and Redis reservation it was accepted with (src/orders/queue/). */
  accepted?: { orderId: number; createdAt: Date; reservationId: string };
}

// Where each check sits in place-order.ts: the first failing stage is what the buyer is told.
const STAGE = { key: 0, product: 1, coupon: 2, threshold: 3, points: 4, total: 5 } as const;

export interface StagedFailure { stage: number; error: Error }

export interface PreparedOrder {
  input: VerifiedOrderInput;
  /**
   * Why the service's pricing refused the order (coupon below its threshold, a total that differs,
   * a coupon the buyer does not own). Such an order is never written, but a refusal the database
   * finds at an earlier stage (a product sold out, ...) is what the buyer hears first.
   */
  pricingFailure?: StagedFailure;
}

/**
 * Prices the order from the buyer's prices and the coupon's definition (`couponRow`: read without
 * a lock, only when the order names a coupon; undefined when the buyer owns no such coupon).
 */
export function prepareOrder(userId: number, req: OrderRequest, couponRow: CouponRow | undefined,
  idempotency?: IdempotencyClaim): PreparedOrder {
  const items = sortByProductId(req.items);
  const points = req.points ?? 0;
  const couponId = req.couponId ?? null;
  const input: VerifiedOrderInput = {
    userId,
    productIds: items.map((i) => i.productId),
    snapshotIds: items.map((i) => i.snapshotId),
    counts: items.map((i) => i.count),
    prices: items.map((i) => i.price),
    couponId,
    coupon: couponRow ? { kind: couponRow.kind, rate: couponRow.rate, threshold: couponRow.threshold, amount: couponRow.amount } : null,
    points,
    pointsUsed: 0,
    total: req.totalAmount,
    requestKey: randomUUID(),
    idempotency,
  };
  if (couponId !== null && !couponRow) return { input, pricingFailure: { stage: STAGE.coupon, error: couponNotOwned(couponId) } };

  let price: ReturnType<typeof priceOrder>;
  try {
    // The balance is the database's to verify (POINTS_INSUFFICIENT); here it only caps nothing.
    price = priceOrder({
      lines: items.map((i) => ({ unitPrice: i.price, count: i.count })),
      coupon: couponRow && toCoupon(couponRow), points, pointsBalance: points,
    });
  } catch (err) {
    if (err instanceof AppError && err.code === 'COUPON_INVALID') return { input, pricingFailure: { stage: STAGE.threshold, error: err } };
    throw err;
  }
  const totalAmount = price.total.toFixed(2);
  input.pointsUsed = price.pointsUsed;
  input.total = totalAmount;
  if (!price.total.equals(req.totalAmount)) {
    const error = new AppError('TOTAL_MISMATCH', `the order total is ${totalAmount}, not ${req.totalAmount}`,
      { expected: totalAmount, received: req.totalAmount, pointsUsed: price.pointsUsed });
    return { input, pricingFailure: { stage: STAGE.total, error } };
  }
  return { input };
}

/** What place_order / place_orders / order_refusal return for an order they did not write. */
export type Refusal = { code: string } & Record<string, unknown>;

/**
 * The error the buyer gets: the database's refusal or the pricing's, whichever place-order.ts
 * would have met first. Undefined when neither refused.
 */
export function firstFailure(input: VerifiedOrderInput, refusal: Refusal | null, pricing?: StagedFailure): Error | undefined {
  const found = refusal ? refusalError(input, refusal) : undefined;
  if (found && (!pricing || found.stage <= pricing.stage)) return found.error;
  return pricing?.error ?? found?.error;
}

/** The refusal as the error place-order.ts throws for it (same code, message and details). */
function refusalError(input: VerifiedOrderInput, r: Refusal): StagedFailure {
  const productId = r.productId as number;
  const couponId = r.couponId as number;
  switch (r.code) {
    case 'IDEMPOTENCY_KEY_IN_USE':
      return { stage: STAGE.key, error: keyInUse() };
    case 'UNKNOWN_PRODUCT':
      return { stage: STAGE.product, error: new AppError('UNKNOWN_PRODUCT', `product ${productId} does not exist`, { productId }) };
    case 'OFF_SHELF':
      return { stage: STAGE.product, error: new AppError('OFF_SHELF', `product ${productId} is off the shelf`, { productId }) };
    case 'PRICE_CHANGED':
      return { stage: STAGE.product, error: new AppError('PRICE_CHANGED', `product ${productId} now costs ${r.price}`,
        { productId, price: r.price, snapshotId: r.snapshotId }) };
    case 'SNAPSHOT_CHANGED': {
      const seen = input.snapshotIds[input.productIds.indexOf(productId)];
      return { stage: STAGE.product, error: new AppError('SNAPSHOT_CHANGED', `product ${productId} changed since snapshot ${seen}`,
        { productId, snapshotId: r.snapshotId }) };
    }
    case 'OUT_OF_STOCK':
      return { stage: STAGE.product, error: new AppError('OUT_OF_STOCK', `product ${productId} has ${r.available} left, ${r.requested} asked`,
        { productId, available: r.available, requested: r.requested }) };
    case 'COUPON_INVALID':
      return { stage: STAGE.coupon, error: r.reason === 'used'
        ? new AppError('COUPON_INVALID', `coupon ${couponId} has already been used`, { couponId, reason: 'used' })
        : couponNotOwned(couponId) };
    case 'COUPON_CHANGED':
      // Coupons are never redefined here; if one were, the price the service computed is stale.
      return { stage: STAGE.coupon, error: new AppError('CONFLICT', `coupon ${couponId} changed while the order was placed; retry it`,
        { couponId }, 1) };
    case 'POINTS_INSUFFICIENT':
      return { stage: STAGE.points, error: new AppError('POINTS_INSUFFICIENT',
        `asked to spend ${r.requested} points but the balance is ${r.balance}`, { requested: r.requested, balance: r.balance }) };
    case 'SQL_ERROR':
      // A write a batch neighbour survived (its subtransaction rolled back): mapped like any
      // statement's failure, by SQLSTATE and constraint (errors.ts toAppError).
      return { stage: STAGE.product, error: new postgres.PostgresError(
        { message: r.message as string, code: r.sqlstate as string, constraint_name: (r.constraint as string | null) ?? undefined } as never) };
    default:
      throw new Error(`unknown refusal ${JSON.stringify(r)}`);
  }
}

function couponNotOwned(couponId: number) {
  return new AppError('COUPON_INVALID', `coupon ${couponId} does not belong to this user`, { couponId, reason: 'not_owned' });
}
