import { Decimal } from 'decimal.js';
import { AppError } from '../errors.ts';

// Pure pricing shared by every variant: same inputs, same total, whatever the concurrency control.
// Money is exact decimal arithmetic; 1 point = 0.01.

export type Coupon =
  | { id: number; kind: 'discount'; rate: string }
  | { id: number; kind: 'reduction'; threshold: string; amount: string };

export interface PricedLine { unitPrice: string; count: number }

export interface PriceInput {
  lines: PricedLine[];
  coupon?: Coupon | null;
  /** Points the buyer asked to spend. */
  points?: number;
  /** Points the buyer has. */
  pointsBalance?: number;
}

export interface Price {
  subtotal: Decimal;
  /** Points actually spent: never more than what is left to pay. */
  pointsUsed: number;
  total: Decimal;
}

const ZERO = new Decimal(0);

export function toCents(amount: Decimal): Decimal {
  return amount.toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
}

export function priceOrder({ lines, coupon, points = 0, pointsBalance = 0 }: PriceInput): Price {
  const subtotal = lines.reduce((sum, l) => sum.plus(new Decimal(l.unitPrice).times(l.count)), ZERO);
  const afterCoupon = coupon ? applyCoupon(subtotal, coupon) : subtotal;

  if (points > pointsBalance) {
    throw new AppError('POINTS_INSUFFICIENT', `asked to spend ${points} points but the balance is ${pointsBalance}`,
      { requested: points, balance: pointsBalance });
  }
  const payableCents = afterCoupon.times(100).toNumber();
  const pointsUsed = Math.min(points, payableCents);
  const total = afterCoupon.minus(new Decimal(pointsUsed).dividedBy(100));

  return { subtotal, pointsUsed, total };
}

function applyCoupon(subtotal: Decimal, coupon: Coupon): Decimal {
  if (coupon.kind === 'discount') return toCents(subtotal.times(coupon.rate));
  if (subtotal.lessThan(coupon.threshold)) {
    throw new AppError('COUPON_INVALID', `coupon ${coupon.id} needs a subtotal of at least ${coupon.threshold}`,
      { couponId: coupon.id, reason: 'below_threshold', threshold: coupon.threshold, subtotal: subtotal.toFixed(2) });
  }
  return Decimal.max(subtotal.minus(coupon.amount), ZERO);
}
