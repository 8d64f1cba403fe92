import type postgres from 'postgres';
import type { IdempotencyClaim } from './idempotency.ts';
import type { Coupon } from './pricing.ts';

// Every statement of order placement, shared by all variants. Each takes `db`: the pool when a
// variant runs without a transaction, the transaction handle otherwise.

export type Db = postgres.Sql | postgres.TransactionSql;

export interface ProductRow {
  id: number;
  name: string;
  price: string;
  stock: number;
  onShelf: boolean;
  snapshotId: number;
}

/**
 * Locks the products in ascending id order (the ORDER BY sits below the row locks), so two orders
 * for [A, B] and [B, A] queue on A instead of deadlocking.
 */
export function lockProducts(db: Db, sortedIds: number[]) {
  return db<ProductRow[]>`
    select id, name, price, stock, on_shelf, snapshot_id
    from product where id = any(${sortedIds}::int[])
    order by id
    for update`;
}

export interface CouponRow {
  id: number;
  kind: 'discount' | 'reduction';
  rate: string | null;
  threshold: string | null;
  amount: string | null;
  status: 'unused' | 'used';
}

export async function lockCoupon(db: Db, couponId: number, userId: number): Promise<CouponRow | undefined> {
  const [row] = await db<CouponRow[]>`
    select id, kind, rate, threshold, amount, status
    from user_coupon where id = ${couponId} and user_id = ${userId}
    for update`;
  return row;
}

export function toCoupon(row: CouponRow): Coupon {
  return row.kind === 'discount'
    ? { id: row.id, kind: 'discount', rate: row.rate! }
    : { id: row.id, kind: 'reduction', threshold: row.threshold!, amount: row.amount! };
}

export async function lockPointsBalance(db: Db, userId: number): Promise<number> {
  const [row] = await db<{ balance: number }[]>`
    select balance from points where user_id = ${userId} for update`;
  return row?.balance ?? 0;
}

export interface StockChange { productId: number; count: number }

export async function takeStock(db: Db, sortedItems: StockChange[]) {
  // The materialized CTE locks the rows in id order before the update touches them. Inside a
  // transaction the rows are locked already; without one (no-tx) this keeps two multi-product
  // updates from deadlocking on rows they reach in different orders.
  const ids = sortedItems.map((i) => i.productId);
  await db`
    with locked as materialized (
      select id from product where id = any(${ids}::int[]) order by id for update
    )
    update product p
    set stock = p.stock - v.count, sales = p.sales + v.count, updated_at = now()
    from locked, unnest(${ids}::int[], ${sortedItems.map((i) => i.count)}::int[]) as v(id, count)
    where p.id = locked.id and p.id = v.id`;
}

export async function spendPoints(db: Db, userId: number, points: number) {
  await db`update points set balance = balance - ${points} where user_id = ${userId}`;
}

export interface NewOrder {
  userId: number;
  /** Two decimals (pricing's total, `toFixed(2)`). */
  totalAmount: string;
  couponId: number | null;
  pointsUsed: number;
  lines: { productId: number; snapshotId: number; count: number; unitPrice: string }[];
  /** The redis variant's reservation (null elsewhere): its row tells the reconciler the order committed. */
  reservationId: string | null;
  /** Stored with the order: a second insert under the same key fails (idempotency_key_pkey). */
  idempotency?: IdempotencyClaim;
}

/**
 * Inserts the order with its lines and marks its coupon used, in one statement (one round trip
 * while the locks are held). `couponMarked` is false when the coupon was already used: a guard for
 * variants that hold no lock on it.
 */
export async function insertOrder(db: Db, o: NewOrder): Promise<{ id: number; createdAt: Date; couponMarked: boolean }> {
  const key = o.idempotency;
  const [row] = await db<{ id: string; createdAt: Date; couponMarked: boolean }[]>`
    with new_order as (
      insert into orders (user_id, total_amount, coupon_id, points_used, reservation_id)
      values (${o.userId}, ${o.totalAmount}, ${o.couponId}, ${o.pointsUsed}, ${o.reservationId}::uuid)
      returning id, created_at
    ), lines as (
      insert into order_item (order_id, product_id, snapshot_id, count, unit_price)
      select new_order.id, l.product_id, l.snapshot_id, l.count, l.unit_price
      from new_order, unnest(
        ${o.lines.map((l) => l.productId)}::int[], ${o.lines.map((l) => l.snapshotId)}::int[],
        ${o.lines.map((l) => l.count)}::int[], ${o.lines.map((l) => l.unitPrice)}::numeric[]
      ) as l(product_id, snapshot_id, count, unit_price)
    ), coupon as (
      update user_coupon set status = 'used', order_id = (select id from new_order), used_at = now()
      where id = ${o.couponId}::int and status = 'unused'
      returning id
    ), idempotency as (
      insert into idempotency_key (user_id, key, fingerprint, status_code, response, order_id, expires_at)
      select ${o.userId}, ${key?.key ?? null}::text, ${key?.fingerprint ?? null}::text, 201,
        idempotency_response(${o.totalAmount}::numeric, ${o.pointsUsed}::int),
        new_order.id, now() + make_interval(secs => ${key?.ttlSeconds ?? 0}::int)
      from new_order where ${key?.key ?? null}::text is not null
    )
    select id, created_at, exists (select 1 from coupon) as coupon_marked from new_order`;
  return { id: Number(row!.id), createdAt: row!.createdAt, couponMarked: row!.couponMarked };
}

// Reads outside order placement.

/** Those of `ids` that name a product (no lock: for telling an unknown product from a lost mirror). */
export async function existingProductIds(db: Db, ids: number[]): Promise<Set<number>> {
  const rows = await db<{ id: number }[]>`select id from product where id = any(${ids}::int[])`;
  return new Set(rows.map((r) => r.id));
}

export function listProducts(db: Db) {
  return db<ProductRow[]>`
    select id, name, price, stock, on_shelf, snapshot_id from product order by id`;
}

export interface OrderRow {
  id: string;
  userId: number;
  totalAmount: string;
  couponId: number | null;
  pointsUsed: number;
  status: string;
  createdAt: Date;
  paidAt: Date | null;
  cancelledAt: Date | null;
  expiredAt: Date | null;
}

export async function findOrder(db: Db, id: number, userId: number) {
  const [order] = await db<OrderRow[]>`
    select id, user_id, total_amount, coupon_id, points_used, status, created_at, paid_at, cancelled_at, expired_at
    from orders where id = ${id} and user_id = ${userId}`;
  if (!order) return undefined;
  const items = await db<{ productId: number; snapshotId: number; name: string; count: number; unitPrice: string }[]>`
    select i.product_id, i.snapshot_id, s.name, i.count, i.unit_price
    from order_item i join product_snapshot s on s.id = i.snapshot_id
    where i.order_id = ${id} order by i.product_id`;
  return { order, items };
}

export async function orderExists(db: Db, id: number): Promise<boolean> {
  const [row] = await db`select 1 from orders where id = ${id}`;
  return row !== undefined;
}
