import { Decimal } from 'decimal.js';
import { AppError } from '../errors.ts';
import { priceOrder } from './pricing.ts';
import * as q from './queries.ts';
import type { OrderItem, OrderRequest } from './request.ts';

// The order placement every variant runs. It is correct only inside a transaction that holds the
// row locks it takes: variants decide on that (and on isolation, retries, Redis) around this call.

export interface PlacedOrder {
  id: number;
  createdAt: Date;
  totalAmount: string;
  pointsUsed: number;
}

export async function placeOrder(db: q.Db, userId: number, req: OrderRequest): Promise<PlacedOrder> {
  const items = sortByProductId(req.items);
  const products = await q.lockProducts(db, items.map((i) => i.productId));
  const lines = checkItems(items, products);

  const couponRow = req.couponId === undefined ? undefined : await q.lockCoupon(db, req.couponId, userId);
  if (req.couponId !== undefined) checkCoupon(req.couponId, couponRow);
  const points = req.points ?? 0;
  const pointsBalance = points > 0 ? await q.lockPointsBalance(db, userId) : 0;

  const price = priceOrder({
    lines,
    coupon: couponRow && q.toCoupon(couponRow),
    points,
    pointsBalance,
  });
  const totalAmount = price.total.toFixed(2);
  if (!price.total.equals(req.totalAmount)) {
    throw new AppError('TOTAL_MISMATCH', `the order total is ${totalAmount}, not ${req.totalAmount}`,
      { expected: totalAmount, received: req.totalAmount, pointsUsed: price.pointsUsed });
  }

  // Writes in the order of the reference's baseline: without a transaction, a failure at any
  // step leaves the earlier ones in place (the damage the bench's audit reports for no-tx).
  await q.takeStock(db, items);
  if (price.pointsUsed > 0) await q.spendPoints(db, userId, price.pointsUsed);
  const order = await q.insertOrder(db, {
    userId,
    totalAmount,
    couponId: req.couponId ?? null,
    pointsUsed: price.pointsUsed,
    lines,
  });
  if (req.couponId !== undefined && !(await q.useCoupon(db, req.couponId, order.id))) {
    throw couponUsed(req.couponId);
  }
  return { ...order, totalAmount, pointsUsed: price.pointsUsed };
}

export function sortByProductId<T extends { productId: number }>(items: T[]): T[] {
  return [...items].sort((a, b) => a.productId - b.productId);
}

/** Checks each line against the locked product row; returns the lines as they will be sold. */
function checkItems(items: OrderItem[], products: q.ProductRow[]): q.NewOrder['lines'] {
  const byId = new Map(products.map((p) => [p.id, p]));
  return items.map((item) => {
    const productId = item.productId;
    const p = byId.get(productId);
    if (!p) throw new AppError('UNKNOWN_PRODUCT', `product ${productId} does not exist`, { productId });
    if (!p.onShelf) throw new AppError('OFF_SHELF', `product ${productId} is off the shelf`, { productId });
    if (!new Decimal(p.price).equals(item.price)) {
      throw new AppError('PRICE_CHANGED', `product ${productId} now costs ${p.price}`,
        { productId, price: p.price, snapshotId: p.snapshotId });
    }
    if (p.snapshotId !== item.snapshotId) {
      throw new AppError('SNAPSHOT_CHANGED', `product ${productId} changed since snapshot ${item.snapshotId}`,
        { productId, snapshotId: p.snapshotId });
    }
    if (p.stock < item.count) {
      throw new AppError('OUT_OF_STOCK', `product ${productId} has ${p.stock} left, ${item.count} asked`,
        { productId, available: p.stock, requested: item.count });
    }
    return { productId, snapshotId: p.snapshotId, count: item.count, unitPrice: p.price };
  });
}

function checkCoupon(couponId: number, row: q.CouponRow | undefined) {
  if (!row) {
    throw new AppError('COUPON_INVALID', `coupon ${couponId} does not belong to this user`,
      { couponId, reason: 'not_owned' });
  }
  if (row.status !== 'unused') throw couponUsed(couponId);
}

function couponUsed(couponId: number) {
  return new AppError('COUPON_INVALID', `coupon ${couponId} has already been used`, { couponId, reason: 'used' });
}
