import type { Redis } from 'ioredis';
import { loadConfig } from '../src/config.ts';
import type { Sql } from '../src/connections.ts';
import { recreateSchema } from '../src/database.ts';
import { createOrderNumbers } from '../src/orders/order-number.ts';
import { readMirroredStock } from '../src/orders/redis-stock.ts';
import type { OrderRequest } from '../src/orders/request.ts';
import type { VariantName } from '../src/orders/variants/index.ts';
import { reseed, sessionIdOf, type SeedOptions } from '../src/seed.ts';
import { orderStream } from './bodies.ts';
import { progress } from './progress.ts';
import { withSql } from './run.ts';
import type { Scenario } from './scenarios.ts';
import { startService } from './service-process.ts';

// The `lifecycle` scenario: what happens after placement, under load. Buyers place orders on three
// hot products (a share with coupons and points), resend some under the same Idempotency-Key, then
// pay some, cancel some and leave the rest to expire, at random moments around a short payment
// deadline so that payments, cancellations and the service's expiry sweeper race. Once every
// order has settled, the audit proves that what each order holds matches its final status, that
// every status is the one the API answered, and that replays created nothing.

export const LIFECYCLE = 'lifecycle';

export const LIFECYCLE_SHAPE = {
  products: 3, linesPerOrder: [1, 2], unitsPerLine: [1, 2], couponShare: 0.3, pointsShare: 0.3,
} satisfies Pick<Scenario, 'products' | 'linesPerOrder' | 'unitsPerLine' | 'couponShare' | 'pointsShare'>;

/** Seconds an order may stay unpaid in this scenario, and how often the service sweeps. */
const PAYMENT_TTL_SECONDS = 2;
const SWEEP_INTERVAL_MS = 250;
const RETRIED_SHARE = 0.2;
const LIVE = ['pending_payment', 'paid'];

export interface LifecycleScale { buyers: number; ordersPerBuyer: number }

export interface LifecycleCell {
  variant: VariantName;
  scale: LifecycleScale;
  durationSec: number;
  placed: number;
  refused: number;
  /** Final statuses in the database. */
  paid: number;
  cancelled: number;
  expired: number;
  /** Submissions resent under the same key, and how many of those got a different answer than a final first one. */
  retried: number;
  replayMismatches: number;
  audit: { clean: boolean; problems: string[] };
}

export interface LifecycleContext {
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  redis: Redis;
  poolSize: number;
  label: string;
}

/** What the buyer was last told about an order: the status it must end in, when the API said. */
interface Known { orderNo: string; expected: string | null }

export function lifecycleSeed({ buyers, ordersPerBuyer }: LifecycleScale): SeedOptions {
  return {
    products: LIFECYCLE_SHAPE.products, stock: buyers * ordersPerBuyer * 4, basePrice: '9.99', priceStep: '10.00',
    users: buyers, couponsPerUser: Math.ceil(ordersPerBuyer * LIFECYCLE_SHAPE.couponShare * 2) + 2,
    pointsPerUser: 100 * ordersPerBuyer,
  };
}

export async function runLifecycleCell(variant: VariantName, scale: LifecycleScale, ctx: LifecycleContext): Promise<LifecycleCell> {
  const seed = lifecycleSeed(scale);
  await withSql(ctx.databaseUrl, 2, (sql) => recreateSchema(sql));
  return withSql(ctx.databaseUrl, 2, async (admin) => {
    await reseed(admin, ctx.redis, seed);
    const service = await startService({
      databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl, redisKeyPrefix: ctx.redisKeyPrefix, poolSize: ctx.poolSize,
      // No periodic reconcile: it would repair the Redis mirrors and hide a give-back counted wrong.
      env: { ORDER_PAYMENT_TTL_SECONDS: String(PAYMENT_TTL_SECONDS), ORDER_SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS),
        RECONCILE_INTERVAL_MS: '0' },
    });
    const bar = progress(ctx.label, scale.buyers * scale.ordersPerBuyer);
    const started = Date.now();
    let sent = 0;
    const tally = { placed: 0, refused: 0, retried: 0, replayMismatches: 0 };
    const known: Known[] = [];
    try {
      const post = async (path: string, userId: number, body?: OrderRequest, key?: string) => {
        const res = await fetch(`${service.url}${path}`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${sessionIdOf(userId)}`, 'Content-Type': 'application/json',
            ...(key && { 'Idempotency-Key': key }) },
          body: body && JSON.stringify(body),
        });
        return { status: res.status, retryable: res.headers.has('Retry-After'), body: await res.json() as Record<string, any> };
      };
      const buyer = async (userId: number) => {
        const next = orderStream(LIFECYCLE_SHAPE as Scenario, seed, userId);
        const actions: Promise<void>[] = [];
        for (let i = 0; i < scale.ordersPerBuyer; i++) {
          const body = next();
          const key = Math.random() < RETRIED_SHARE ? `buyer-${userId}-order-${i}` : undefined;
          const first = await post(`/orders/${variant}`, userId, body, key);
          let answer = first;
          if (key) {
            // The answer was "lost": the same request again must get the same answer, unless the
            // first was worth retrying (Retry-After: busy, a serialization failure), which stores nothing.
            answer = await post(`/orders/${variant}`, userId, body, key);
            tally.retried++;
            const same = answer.status === first.status && answer.body.orderNo === first.body.orderNo &&
              answer.body.error?.code === first.body.error?.code;
            if (!first.retryable && !same) tally.replayMismatches++;
          }
          bar.update(++sent);
          if (answer.status !== 201) { tally.refused++; continue; }
          tally.placed++;
          const order: Known = { orderNo: answer.body.orderNo, expected: 'expired' };
          known.push(order);
          const roll = Math.random();
          if (roll < 0.7) {
            const action = roll < 0.4 ? 'pay' : 'cancel';
            // Some arrive after the deadline: they race the sweeper, or find the order expired.
            const delayMs = Math.random() * PAYMENT_TTL_SECONDS * 1_500;
            actions.push(new Promise((r) => setTimeout(r, delayMs)).then(async () => {
              const told = await post(`/orders/${order.orderNo}/${action}`, userId);
              order.expected = told.status === 200 ? told.body.status
                : told.status === 409 ? told.body.error?.status ?? null : null;
            }));
          }
        }
        await Promise.all(actions);
      };
      await Promise.all(Array.from({ length: scale.buyers }, (_, i) => buyer(i + 1)));
      await untilSettled(admin, PAYMENT_TTL_SECONDS * 1_000 + 15_000);
    } finally {
      await service.stop();
    }
    const durationSec = (Date.now() - started) / 1000;
    const audit = await auditLifecycle(admin, ctx.redis, { seed, known, checkMirrors: variant === 'redis', variant });
    const statuses = await admin<{ status: string; n: number }[]>`select status, count(*)::int as n from orders group by status`;
    const count = (s: string) => statuses.find((r) => r.status === s)?.n ?? 0;
    const cell: LifecycleCell = {
      variant, scale, durationSec, ...tally,
      paid: count('paid'), cancelled: count('cancelled'), expired: count('expired'), audit,
    };
    bar.finish(`${cell.placed} placed (${cell.paid} paid, ${cell.cancelled} cancelled, ${cell.expired} expired), ` +
      `${cell.retried} resent, ${cell.replayMismatches} replay mismatches, audit ${audit.clean ? 'clean' : audit.problems.join(', ')}`);
    return cell;
  });
}

/** Waits until no order is left pending (the service's sweeper expires them after the deadline). */
async function untilSettled(sql: Sql, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from orders where status = 'pending_payment'`;
    if (row!.n === 0 || Date.now() > until) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface LifecycleAuditInput {
  seed: SeedOptions;
  /** Every order the API answered 201 for, with the status the API last said it has. */
  known: Known[];
  checkMirrors: boolean;
  variant: VariantName;
}

/** Every check of the lifecycle scenario; each problem is named with its count. */
export async function auditLifecycle(sql: Sql, redis: Redis, input: LifecycleAuditInput) {
  const problems: string[] = [];
  const fail = (count: number, what: string) => { if (count) problems.push(`${count} ${what}`); };

  const products = await sql<{ id: number; stock: number; sales: number; liveUnits: number }[]>`
    select p.id, p.stock, p.sales, coalesce(sum(i.count) filter (where o.status = any(${LIVE}::order_status[])), 0)::int as live_units
    from product p left join order_item i on i.product_id = p.id left join orders o on o.id = i.order_id
    group by p.id order by p.id`;
  fail(products.filter((p) => p.stock !== input.seed.stock - p.liveUnits).length,
    'products whose stock is not the initial stock minus the units of pending and paid orders');
  fail(products.filter((p) => p.sales !== p.liveUnits).length, 'products whose sales are not the units of pending and paid orders');

  const [coupons] = await sql<{ wrong: number }[]>`
    select count(*)::int as wrong from user_coupon c
    where (c.status = 'used') is distinct from exists (
      select 1 from orders o where o.id = c.order_id and o.coupon_id = c.id and o.status = any(${LIVE}::order_status[]))
      or exists (select 1 from orders o where o.coupon_id = c.id and o.status = any(${LIVE}::order_status[])
                 and c.order_id is distinct from o.id)`;
  fail(coupons!.wrong, 'coupons used without a live order naming them, or named by a live order but unused');

  const [points] = await sql<{ wrong: number }[]>`
    select count(*)::int as wrong from points pt
    where pt.balance <> ${input.seed.pointsPerUser} - coalesce((
      select sum(points_used) from orders o where o.user_id = pt.user_id and o.status = any(${LIVE}::order_status[])), 0)`;
  fail(points!.wrong, 'users whose points are not the initial balance minus the points of pending and paid orders');

  const orderNumbers = createOrderNumbers(loadConfig().hashidsSalt);
  const rows = await sql<{ id: string; status: string }[]>`select id, status from orders`;
  const statusById = new Map(rows.map((r) => [Number(r.id), r.status]));
  const knownIds = new Set<number>();
  let wrongStatus = 0;
  for (const order of input.known) {
    const id = orderNumbers.parse(order.orderNo)?.id;
    if (id === undefined || !statusById.has(id)) { wrongStatus++; continue; }
    knownIds.add(id);
    if (order.expected !== null && statusById.get(id) !== order.expected) wrongStatus++;
  }
  fail(wrongStatus, 'orders whose final status is not the one the API answered');
  if (input.variant !== 'no-tx') fail(rows.filter((r) => !knownIds.has(Number(r.id))).length, 'orders no buyer was told of (a replay placed a second one?)');
  fail(rows.filter((r) => r.status === 'pending_payment').length, 'orders still pending after the deadline and a sweep');

  if (input.checkMirrors) {
    const mirrors = await readMirroredStock(redis, products.map((p) => p.id));
    fail(products.filter((p) => mirrors.get(p.id) !== p.stock).length, 'Redis mirrors that differ from the database stock');
  }
  return { clean: problems.length === 0, problems };
}
