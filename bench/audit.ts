import type { Redis } from 'ioredis';
import type { Sql } from '../src/connections.ts';
import { readMirroredStock } from '../src/orders/redis-stock.ts';

// Reads the database after a run and checks every invariant an order placement must keep.
// It trusts nothing the load generator believes except the count of successful responses.

export interface AuditInput {
  /** Units every product had after the reset. */
  initialStock: number;
  /** Points every user had after the reset. */
  initialPoints: number;
  /** 2xx responses the clients received. */
  successes: number;
  /** Compare Redis stock mirrors with the database (the redis variant). */
  checkMirrors: boolean;
}

export interface AuditResult {
  clean: boolean;
  /** Units sold in order lines beyond what left the stock. */
  oversoldUnits: number;
  /** Units that left the stock without an order line (taken, never sold). */
  leakedUnits: number;
  /** Products whose sales counter disagrees with their order lines. */
  salesMismatches: number;
  /** Order rows the clients were not told about (or told failed), and the reverse. */
  ordersWithoutSuccess: number;
  successesWithoutOrder: number;
  /** Coupons referenced by more than one order. */
  couponsUsedTwice: number;
  /** Coupons marked used without an order that names them, or named by an order but not marked used. */
  couponsMismatched: number;
  negativePointBalances: number;
  /** Users whose balance change differs from the points their orders spent. */
  pointsUnaccounted: number;
  /** Products whose Redis mirror differs from the database stock (null when not checked). */
  mirrorMismatches: number | null;
  /** One line per problem found, for the report. */
  problems: string[];
}

export async function audit(sql: Sql, redis: Redis | null, input: AuditInput): Promise<AuditResult> {
  const products = await sql<{ id: number; stock: number; sales: number; sold: number }[]>`
    select p.id, p.stock, p.sales, coalesce(sum(i.count), 0)::int as sold
    from product p left join order_item i on i.product_id = p.id
    group by p.id order by p.id`;
  let oversoldUnits = 0;
  let leakedUnits = 0;
  let salesMismatches = 0;
  for (const p of products) {
    const taken = input.initialStock - p.stock;
    oversoldUnits += Math.max(0, p.sold - taken);
    leakedUnits += Math.max(0, taken - p.sold);
    if (p.sales !== p.sold) salesMismatches++;
  }

  const [orders] = await sql<{ count: number }[]>`select count(*)::int as count from orders`;
  const [coupons] = await sql<{ usedTwice: number; mismatched: number }[]>`
    with usage as (
      select coupon_id, count(*)::int as n, array_agg(id) as order_ids
      from orders where coupon_id is not null group by coupon_id
    )
    select
      count(*) filter (where u.n > 1)::int as used_twice,
      count(*) filter (where (c.status = 'used' and (u.order_ids is null or not c.order_id = any(u.order_ids)))
                          or (c.status = 'unused' and u.n is not null))::int as mismatched
    from user_coupon c left join usage u on u.coupon_id = c.id`;
  const [points] = await sql<{ negative: number; unaccounted: number }[]>`
    select
      count(*) filter (where pt.balance < 0)::int as negative,
      count(*) filter (where ${input.initialPoints}::int - pt.balance <> coalesce(spent.total, 0))::int as unaccounted
    from points pt
    left join (select user_id, sum(points_used) as total from orders group by user_id) spent using (user_id)`;
  const c = { orders: orders!.count, couponsUsedTwice: coupons!.usedTwice, couponsMismatched: coupons!.mismatched,
    negative: points!.negative, unaccounted: points!.unaccounted };

  let mirrorMismatches: number | null = null;
  if (input.checkMirrors && redis) {
    const mirrors = await readMirroredStock(redis, products.map((p) => p.id));
    mirrorMismatches = products.filter((p) => mirrors.get(p.id) !== p.stock).length;
  }

  const result = {
    oversoldUnits,
    leakedUnits,
    salesMismatches,
    ordersWithoutSuccess: Math.max(0, c.orders - input.successes),
    successesWithoutOrder: Math.max(0, input.successes - c.orders),
    couponsUsedTwice: c.couponsUsedTwice,
    couponsMismatched: c.couponsMismatched,
    negativePointBalances: c.negative,
    pointsUnaccounted: c.unaccounted,
    mirrorMismatches,
  };
  const problems = Object.entries(result)
    .filter(([, n]) => n !== null && n > 0)
    .map(([name, n]) => `${name}: ${n}`);
  return { clean: problems.length === 0, ...result, problems };
}
