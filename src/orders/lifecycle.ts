import type { Redis } from 'ioredis';
import { AppError } from '../errors.ts';
import { inTransaction, type Database } from '../transaction.ts';
import type { Db } from './queries.ts';
import { returnMirroredStock } from './redis-stock.ts';

// After placement: pending_payment -> paid | cancelled | expired. Every transition is one UPDATE
// guarded by `status = 'pending_payment'`: at READ COMMITTED a second transition of the same
// order waits for the first's row lock, then re-checks the guard on the row the first committed
// and changes nothing. So pay, cancel and expiry racing on one order end with exactly one winner,
// and only the winner's transaction gives back what the order held: exactly once.

export type OrderStatus = 'pending_payment' | 'paid' | 'cancelled' | 'expired';

/** An order that just ended unpaid; `viaRedis`: placed through the redis variant (it has a reservation). */
interface EndedOrder { id: number; viaRedis: boolean }

export type Log = (message: string, err?: unknown) => void;

export interface LifecycleDeps {
  db: Database;
  redis: Redis;
  /** Seconds after placement by which an order must be paid. */
  paymentTtlSeconds: number;
  log: Log;
}

/**
 * Marks an order paid. Paying a paid order again answers the same; a cancelled or expired one is
 * refused, and so is one past its payment deadline, which is expired on the spot.
 */
export async function payOrder(deps: LifecycleDeps, orderId: number, userId: number, deadline?: number): Promise<void> {
  const { db, paymentTtlSeconds } = deps;
  const outcome = await inTransaction(db, 'read committed', async (tx) => {
    const [paid] = await tx`
      update orders set status = 'paid', paid_at = now()
      where id = ${orderId} and user_id = ${userId} and status = 'pending_payment'
        and created_at > now() - make_interval(secs => ${paymentTtlSeconds})
      returning id`;
    if (paid) return 'paid';
    const current = await currentStatus(tx, orderId, userId);
    if (current !== 'pending_payment') return current;
    // Still pending, so past its deadline and not swept yet: expire it now rather than leave it
    // payable until the sweeper comes by.
    const ended = await endOrders(tx, 'expired', [orderId]);
    await giveBack(tx, deps, ended);
    return 'expired';
  }, deadline);
  if (outcome !== 'paid') throw notPending(outcome);
}

/** Cancels an unpaid order and gives back what it held. Cancelling a cancelled order answers the same. */
export async function cancelOrder(deps: LifecycleDeps, orderId: number, userId: number, deadline?: number): Promise<void> {
  const outcome = await inTransaction(deps.db, 'read committed', async (tx) => {
    const ended = await endOrders(tx, 'cancelled', [orderId], userId);
    if (ended.length) {
      await giveBack(tx, deps, ended);
      return 'cancelled';
    }
    return currentStatus(tx, orderId, userId);
  }, deadline);
  if (outcome !== 'cancelled') throw notPending(outcome);
}

/**
 * Expires up to `limit` orders unpaid past their deadline, oldest first, and gives back what they
 * held; returns how many. SKIP LOCKED: orders being paid or cancelled right now, or claimed by
 * another sweeper, are left to them, so any number of sweepers can run at once.
 */
export async function expireDueOrders(deps: LifecycleDeps, limit: number): Promise<number> {
  return inTransaction(deps.db, 'read committed', async (tx) => {
    const rows = await tx<{ id: string }[]>`
      select id from orders
      where status = 'pending_payment' and created_at <= now() - make_interval(secs => ${deps.paymentTtlSeconds})
      order by created_at, id limit ${limit}
      for update skip locked`;
    if (!rows.length) return 0;
    const ended = await endOrders(tx, 'expired', rows.map((r) => Number(r.id)));
    await giveBack(tx, deps, ended);
    return ended.length;
  });
}

const STATUS_TIME = { cancelled: 'cancelled_at', expired: 'expired_at' } as const;

/** Moves pending orders (of `userId` when given) to `status`; returns those that moved. */
async function endOrders(tx: Db, status: 'cancelled' | 'expired', ids: number[], userId?: number): Promise<EndedOrder[]> {
  const rows = await tx<{ id: string; viaRedis: boolean }[]>`
    update orders set status = ${status}::text::order_status, ${tx(STATUS_TIME[status])} = now()
    where id = any(${ids}::bigint[]) and status = 'pending_payment'
      ${userId === undefined ? tx`` : tx`and user_id = ${userId}`}
    returning id, reservation_id is not null as via_redis`;
  return rows.map((r) => ({ id: Number(r.id), viaRedis: r.viaRedis }));
}

/**
 * Gives back the units, coupons and points of orders that just ended, in their transaction.
 * Rows are locked in the order placement locks them (products by id, then coupons, then points
 * balances), so a give-back and a placement cannot deadlock.
 */
async function giveBack(tx: Db, { redis, log }: LifecycleDeps, orders: EndedOrder[]) {
  const ids = orders.map((o) => o.id);
  const redisIds = orders.filter((o) => o.viaRedis).map((o) => o.id);
  const [, , , redisLines] = await Promise.all([
    tx`
      with lines as (
        select product_id, sum(count)::int as count from order_item where order_id = any(${ids}::bigint[]) group by product_id
      ), locked as materialized (
        select id from product where id in (select product_id from lines) order by id for update
      )
      update product p set stock = p.stock + l.count, sales = p.sales - l.count, updated_at = now()
      from locked, lines l where p.id = locked.id and p.id = l.product_id`,
    tx`
      with locked as materialized (
        select id from user_coupon where order_id = any(${ids}::bigint[]) order by id for update
      )
      update user_coupon c set status = 'unused', order_id = null, used_at = null
      from locked where c.id = locked.id`,
    tx`
      with spent as (
        select user_id, sum(points_used)::int as points from orders
        where id = any(${ids}::bigint[]) and points_used > 0 group by user_id
      ), locked as materialized (
        select user_id from points where user_id in (select user_id from spent) order by user_id for update
      )
      update points p set balance = p.balance + s.points
      from locked, spent s where p.user_id = locked.user_id and p.user_id = s.user_id`,
    redisIds.length ? tx<{ productId: number; count: number }[]>`
      select product_id, sum(count)::int as count from order_item
      where order_id = any(${redisIds}::bigint[]) group by product_id order by product_id` : [],
  ]);
  // Mirrors go up while this transaction still holds the product rows, so the stock reconciler
  // (which locks them all) cannot run between the two and count the units twice. Should the commit
  // fail after this, the mirror runs high, which the database's own stock check makes harmless and
  // the next reconcile corrects; a Redis failure here leaves it low until then.
  if (redisLines.length) {
    await returnMirroredStock(redis, [...redisLines])
      .catch((err: unknown) => log('stock mirrors not raised after a give-back; the reconciler will', err));
  }
}

async function currentStatus(tx: Db, orderId: number, userId: number): Promise<OrderStatus> {
  const [row] = await tx<{ status: OrderStatus }[]>`select status from orders where id = ${orderId} and user_id = ${userId}`;
  if (!row) throw new AppError('NOT_FOUND', 'no such order');
  return row.status;
}

function notPending(status: OrderStatus): AppError {
  return new AppError('ORDER_NOT_PENDING', `the order is ${status.replace('_', ' ')}`, { status });
}
