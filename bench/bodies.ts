import type { OrderRequest } from '../src/orders/request.ts';
import { DISCOUNT_RATE, REDUCTION, couponIdsOf, productPrice, type SeedOptions } from '../src/seed.ts';
import type { Scenario } from './scenarios.ts';

// Varied, valid order bodies: each user gets a deterministic stream of orders (products, counts,
// a coupon on some, points on some) whose totals are exact for the seeded prices. Totals are
// worked out here in whole cents, not by the service's pricing code: a pricing bug then shows
// as refused orders instead of agreeing with itself. A coupon is never
// offered twice, so the only refusals under load come from concurrency (stock, 40001).

const POINTS_PER_ORDER = 50;

/** A small deterministic PRNG (mulberry32), so that every run sends the same orders. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)) };
}

export type OrderStream = () => OrderRequest;

export function orderStream(scenario: Scenario, seed: SeedOptions, userId: number, runSalt = 0): OrderStream {
  const rnd = random(userId * 7919 + runSalt);
  const coupons = couponIdsOf(seed, userId);
  const discounts = coupons.filter((_, k) => k % 2 === 0);
  const reductions = coupons.filter((_, k) => k % 2 === 1);
  // Worked out once per product (decimal arithmetic): the generator's own CPU per request is taken
  // from the same cores the service runs on.
  const prices = Array.from({ length: scenario.products + 1 }, (_, id) => (id ? productPrice(seed, id) : ''));

  return () => {
    const lineCount = Math.min(rnd.int(...scenario.linesPerOrder), scenario.products);
    const productIds = new Set<number>();
    while (productIds.size < lineCount) productIds.add(rnd.int(1, scenario.products));
    const items = [...productIds].map((productId) => ({
      productId, snapshotId: productId, count: rnd.int(...scenario.unitsPerLine), price: prices[productId]!,
    }));
    const subtotal = items.reduce((sum, i) => sum + cents(i.price) * i.count, 0);

    let couponId: number | undefined;
    let payable = subtotal;
    if (rnd.next() < scenario.couponShare) {
      const reductionId = subtotal >= cents(REDUCTION.threshold) ? reductions.shift() : undefined;
      const discountId = reductionId === undefined ? discounts.shift() : undefined;
      if (reductionId !== undefined) {
        couponId = reductionId;
        payable = Math.max(subtotal - cents(REDUCTION.amount), 0);
      } else if (discountId !== undefined) {
        couponId = discountId;
        // x0.85, rounded half up to the cent
        payable = Math.floor((subtotal * cents(DISCOUNT_RATE) + 50) / 100);
      }
    }
    const points = rnd.next() < scenario.pointsShare ? POINTS_PER_ORDER : undefined;
    const total = payable - Math.min(points ?? 0, payable);
    return {
      items,
      ...(couponId !== undefined && { couponId }),
      ...(points && { points }),
      totalAmount: formatCents(total),
    };
  };
}

// Whole-cent arithmetic for expected totals, shared with the tests' order bodies.

/** "9.99" -> 999 */
export function cents(amount: string): number {
  return Math.round(Number(amount) * 100);
}

/** 999 -> "9.99" */
export function formatCents(value: number): string {
  return `${Math.floor(value / 100)}.${String(value % 100).padStart(2, '0')}`;
}
