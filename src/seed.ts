import { Decimal } from 'decimal.js';
import type { Redis } from 'ioredis';
import type { Sql } from './connections.ts';
import { loadStockMirrors } from './orders/redis-stock.ts';
import { saveSessions } from './sessions.ts';

// Deterministic seed data: the same options always give the same ids, prices and sessions,
// so tests, the bench and the README's curl example can rely on them.

export interface SeedOptions {
  products: number;
  stock: number;
  /** Price of product 1; product i costs basePrice + (i - 1) x priceStep. */
  basePrice: string;
  priceStep: string;
  users: number;
  /** Per user, alternating kinds: discount x0.85, then reduction 10.00 off from 100.00. */
  couponsPerUser: number;
  pointsPerUser: number;
}

export const DEFAULT_SEED: SeedOptions = {
  products: 10,
  stock: 1000,
  basePrice: '9.99',
  priceStep: '10.00',
  users: 100,
  couponsPerUser: 4,
  pointsPerUser: 10_000,
};

export const DISCOUNT_RATE = '0.85';
export const REDUCTION = { threshold: '100.00', amount: '10.00' };

export interface Seeded {
  products: { id: number; snapshotId: number; price: string }[];
  users: { userId: number; sessionId: string }[];
}

export const sessionIdOf = (userId: number) => `seed-${userId}`;

export function productPrice(options: Pick<SeedOptions, 'basePrice' | 'priceStep'>, productId: number): string {
  return new Decimal(options.basePrice).plus(new Decimal(options.priceStep).times(productId - 1)).toFixed(2);
}

/** Fills a freshly created schema (see recreateSchema) and the Redis sessions and stock mirrors (no reservation left open). */
export async function seed(sql: Sql, redis: Redis, options: SeedOptions = DEFAULT_SEED): Promise<Seeded> {
  const o = options;
  await sql.begin(async (tx) => {
    await tx`
      insert into product (id, name, price, stock)
      select i, 'Product ' || i, ${o.basePrice}::numeric + (i - 1) * ${o.priceStep}::numeric, ${o.stock}
      from generate_series(1, ${o.products}::int) i`;
    await tx`
      insert into product_snapshot (id, product_id, name, price)
      select id, id, name, price from product`;
    await tx`update product set snapshot_id = id`;
    // Explicit ids above: move the identities past them for rows created later (new snapshots).
    await tx`select setval(pg_get_serial_sequence('product', 'id'), greatest(${o.products}::int, 1))`;
    await tx`select setval(pg_get_serial_sequence('product_snapshot', 'id'), greatest(${o.products}::int, 1))`;
    await tx`
      insert into user_coupon (user_id, kind, rate, threshold, amount)
      select u, kind, case when kind = 'discount' then ${DISCOUNT_RATE}::numeric end,
             case when kind = 'reduction' then ${REDUCTION.threshold}::numeric end,
             case when kind = 'reduction' then ${REDUCTION.amount}::numeric end
      from generate_series(1, ${o.users}::int) u, generate_series(1, ${o.couponsPerUser}::int) k,
           lateral (select (case when k % 2 = 1 then 'discount' else 'reduction' end)::coupon_kind as kind) c
      order by u, k`;
    await tx`
      insert into points (user_id, balance)
      select u, ${o.pointsPerUser} from generate_series(1, ${o.users}::int) u`;
  });

  const users = Array.from({ length: o.users }, (_, i) => ({ userId: i + 1, sessionId: sessionIdOf(i + 1) }));
  await saveSessions(redis, users);
  await loadStockMirrors(sql, redis);
  const products = Array.from({ length: o.products }, (_, i) => ({
    id: i + 1, snapshotId: i + 1, price: productPrice(o, i + 1),
  }));
  return { products, users };
}

/**
 * Empties every table and seeds again, without dropping anything: a running service's prepared
 * statements stay valid (unlike after recreateSchema), so a warmed-up service can be reused.
 */
export async function reseed(sql: Sql, redis: Redis, options: SeedOptions = DEFAULT_SEED): Promise<Seeded> {
  await sql`truncate order_item, user_coupon, points, orders, product_snapshot, product restart identity cascade`;
  return seed(sql, redis, options);
}

/** Coupon ids of a user, in seed order (odd positions discount, even positions reduction). */
export function couponIdsOf(options: Pick<SeedOptions, 'couponsPerUser'>, userId: number): number[] {
  const first = (userId - 1) * options.couponsPerUser + 1;
  return Array.from({ length: options.couponsPerUser }, (_, k) => first + k);
}
