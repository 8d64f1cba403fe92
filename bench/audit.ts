import type { Redis } from 'ioredis';
import type { Sql } from '../src/connections.ts';
import { dateStamp, type OrderNumbers } from '../src/orders/order-number.ts';
import { readMirroredStock } from '../src/orders/redis-stock.ts';

// Reads the database after a run and checks every invariant an order placement must keep, order
// by order: the load generator is trusted only for the order numbers its clients were given.
// Totals are recomputed here in SQL from the order's own lines, coupon and points, independently
// of the service's pricing code, so that a pricing bug cannot vouch for itself.
//
// Only live orders (pending_payment, paid) hold units, a coupon and points; a cancelled or
// expired order has given them back, so stock, sales, coupons and points count live orders only.

/** A successful answer: the user who placed the order and the order number it was given. */
export interface Created { userId: number; orderNo: string }

export interface AuditInput {
  /** Units every product had after the reset. */
  initialStock: number;
  /** Points every user had after the reset. */
  initialPoints: number;
  /** Every successful answer the clients received. */
  created: Created[];
  orderNumbers: OrderNumbers;
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
  /** Successful answers whose order number names no order row (or is not an order number at all). */
  successesWithoutOrder: number;
  /** Order numbers given to more than one successful answer (each extra answer counts). */
  successesSharingOrder: number;
  /** Successful answers whose order belongs to another user, or was made on another day than its number says. */
  successesOfAnotherOrder: number;
  /** Order rows no successful answer named: written while the client was told it failed (or nothing). */
  ordersWithoutSuccess: number;
  ordersWithoutLines: number;
  /** Orders whose total is not their lines priced with their coupon and points. */
  totalsWrong: number;
  /** Orders whose coupon belongs to another user (or does not exist). */
  couponsOfAnotherUser: number;
  /** Coupons referenced by more than one live order. */
  couponsUsedTwice: number;
  /** Coupons marked used without naming the live order that uses them, or used by a live order but not marked used. */
  couponsMismatched: number;
  negativePointBalances: number;
  /** Users whose balance change differs from the points their live orders spent. */
  pointsUnaccounted: number;
  /** Products whose Redis mirror differs from the database stock (null when not checked). */
  mirrorMismatches: number | null;
  /** One line per problem found, for the report. */
  problems: string[];
  /** A few of the orders behind the per-order findings, to look up. */
  examples: string[];
}

const LIVE = ['pending_payment', 'paid'];
const MAX_EXAMPLES = 5;

interface OrderRow { id: string; userId: number; createdAt: Date; lines: number; totalRight: boolean; couponOwnedElsewhere: boolean; total: string; expected: string | null }

export async function audit(sql: Sql, redis: Redis | null, input: AuditInput): Promise<AuditResult> {
  const examples: string[] = [];
  const example = (line: string) => { if (examples.length < MAX_EXAMPLES) examples.push(line); };

  const products = await sql<{ id: number; stock: number; sales: number; sold: number }[]>`
    select p.id, p.stock, p.sales,
           coalesce(sum(i.count) filter (where o.status::text = any(${LIVE})), 0)::int as sold
    from product p
    left join order_item i on i.product_id = p.id
    left join orders o on o.id = i.order_id
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

  // Pricing rules, restated: subtotal = sum(unit_price x count); a discount coupon pays
  // round_half_up(subtotal x rate, 2) (numeric round() rounds halves away from zero, i.e. up for
  // money); a reduction coupon needs subtotal >= threshold and pays max(subtotal - amount, 0);
  // then points: at most the payable cents, 1 point = 0.01 off.
  const orders = await sql<OrderRow[]>`
    with lines as (
      select order_id, count(*)::int as n, sum(unit_price * count) as subtotal
      from order_item group by order_id
    ), priced as (
      select o.id, o.user_id, o.created_at, o.total_amount, o.points_used, coalesce(l.n, 0) as lines,
             o.coupon_id is not null and c.user_id is distinct from o.user_id as coupon_owned_elsewhere,
             case
               when o.coupon_id is null then l.subtotal
               when c.kind = 'discount' then round(l.subtotal * c.rate, 2)
               when c.kind = 'reduction' and l.subtotal >= c.threshold then greatest(l.subtotal - c.amount, 0)
             end as after_coupon
      from orders o
      left join lines l on l.order_id = o.id
      left join user_coupon c on c.id = o.coupon_id
    )
    select id, user_id, created_at, lines, coupon_owned_elsewhere, total_amount::text as total,
           (after_coupon - points_used / 100.0)::numeric(12,2)::text as expected,
           coalesce(points_used <= after_coupon * 100 and total_amount = after_coupon - points_used / 100.0, false) as total_right
    from priced`;
  const byId = new Map(orders.map((o) => [Number(o.id), o]));

  let successesWithoutOrder = 0;
  let successesSharingOrder = 0;
  let successesOfAnotherOrder = 0;
  const announced = new Set<number>();
  for (const c of input.created) {
    const parsed = input.orderNumbers.parse(c.orderNo);
    const row = parsed && byId.get(parsed.id);
    if (!parsed || !row) {
      successesWithoutOrder++;
      example(`${c.orderNo} (user ${c.userId}): no such order`);
    } else if (announced.has(parsed.id)) {
      successesSharingOrder++;
      example(`${c.orderNo}: given to two successful answers`);
    } else {
      announced.add(parsed.id);
      if (row.userId !== c.userId || dateStamp(row.createdAt) !== parsed.date) {
        successesOfAnotherOrder++;
        example(`${c.orderNo}: answered to user ${c.userId}, order of user ${row.userId} made ${dateStamp(row.createdAt)}`);
      }
    }
  }
  let ordersWithoutSuccess = 0;
  let ordersWithoutLines = 0;
  let totalsWrong = 0;
  let couponsOfAnotherUser = 0;
  for (const o of orders) {
    const orderNo = input.orderNumbers.format(Number(o.id), o.createdAt);
    if (!announced.has(Number(o.id))) {
      ordersWithoutSuccess++;
      example(`${orderNo} (order ${o.id}, user ${o.userId}): no successful answer named it`);
    }
    if (o.lines === 0) {
      ordersWithoutLines++;
      example(`${orderNo}: no lines`);
    } else if (!o.totalRight) {
      totalsWrong++;
      example(`${orderNo}: total ${o.total}, its lines, coupon and points say ${o.expected ?? 'none (coupon not applicable)'}`);
    }
    if (o.couponOwnedElsewhere) {
      couponsOfAnotherUser++;
      example(`${orderNo}: coupon of another user`);
    }
  }

  const [coupons] = await sql<{ usedTwice: number; mismatched: number }[]>`
    with usage as (
      select coupon_id, count(*)::int as n, array_agg(id) as order_ids
      from orders where coupon_id is not null and status::text = any(${LIVE}) group by coupon_id
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
    left join (
      select user_id, sum(points_used) as total from orders where status::text = any(${LIVE}) group by user_id
    ) spent using (user_id)`;

  let mirrorMismatches: number | null = null;
  if (input.checkMirrors && redis) {
    const mirrors = await readMirroredStock(redis, products.map((p) => p.id));
    mirrorMismatches = products.filter((p) => mirrors.get(p.id) !== p.stock).length;
  }

  const result = {
    oversoldUnits,
    leakedUnits,
    salesMismatches,
    successesWithoutOrder,
    successesSharingOrder,
    successesOfAnotherOrder,
    ordersWithoutSuccess,
    ordersWithoutLines,
    totalsWrong,
    couponsOfAnotherUser,
    couponsUsedTwice: coupons!.usedTwice,
    couponsMismatched: coupons!.mismatched,
    negativePointBalances: points!.negative,
    pointsUnaccounted: points!.unaccounted,
    mirrorMismatches,
  };
  const problems = Object.entries(result)
    .filter(([, n]) => n !== null && n > 0)
    .map(([name, n]) => `${name}: ${n}`);
  return { clean: problems.length === 0, ...result, problems, examples };
}
