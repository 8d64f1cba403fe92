import { withConnection, type Database } from '../transaction.ts';
import type { IdempotencyClaim } from './idempotency.ts';
import { readOwnCoupon } from './order-functions.ts';
import type { OrderRequest } from './request.ts';
import { prepareOrder, type PreparedOrder } from './verified-order.ts';

/**
 * Prices the order for the one-call variants. An order naming a coupon first reads the coupon's
 * definition: one read without a lock, outside the order's statement, so that no row stays
 * locked while the service prices (the statement verifies the definition under its lock).
 */
export async function prepareForVerification(db: Database, userId: number, request: OrderRequest, deadline: number,
  idempotency?: IdempotencyClaim): Promise<PreparedOrder> {
  const couponId = request.couponId;
  const coupon = couponId === undefined ? undefined
    : await withConnection(db, () => readOwnCoupon(db.sql, couponId, userId), deadline);
  return prepareOrder(userId, request, coupon, idempotency);
}
