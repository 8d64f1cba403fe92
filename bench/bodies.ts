import { priceOrder } from '../src/orders/pricing.ts';
import type { OrderRequest } from '../src/orders/request.ts';
import { DISCOUNT_RATE, REDUCTION, couponIdsOf, productPrice, type SeedOptions } from '../src/seed.ts';
import type { Scenario } from './scenarios.ts';

// Varied, valid order bodies: each user gets a deterministic stream of orders (products, counts,
// a coupon on some, points on some) whose totals are exact for the seeded prices. A coupon is never
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

  return () => {
    const lineCount = Math.min(rnd.int(...scenario.linesPerOrder), scenario.products);
    const productIds = new Set<number>();
    while (productIds.size < lineCount) productIds.add(rnd.int(1, scenario.products));
    const items = [...productIds].map((productId) => ({
      productId, snapshotId: productId, count: rnd.int(...scenario.unitsPerLine), price: productPrice(seed, productId),
    }));
    const lines = items.map((i) => ({ unitPrice: i.price, count: i.count }));
    const subtotal = priceOrder({ lines }).subtotal;

    let coupon: Parameters<typeof priceOrder>[0]['coupon'] = null;
    if (rnd.next() < scenario.couponShare) {
      const reductionId = subtotal.greaterThanOrEqualTo(REDUCTION.threshold) ? reductions.shift() : undefined;
      const discountId = reductionId === undefined ? discounts.shift() : undefined;
      if (reductionId !== undefined) coupon = { id: reductionId, kind: 'reduction', ...REDUCTION };
      else if (discountId !== undefined) coupon = { id: discountId, kind: 'discount', rate: DISCOUNT_RATE };
    }
    const points = rnd.next() < scenario.pointsShare ? POINTS_PER_ORDER : undefined;
    const total = priceOrder({ lines, coupon, points, pointsBalance: Infinity }).total;
    return {
      items,
      ...(coupon && { couponId: coupon.id }),
      ...(points && { points }),
      totalAmount: total.toFixed(2),
    };
  };
}
