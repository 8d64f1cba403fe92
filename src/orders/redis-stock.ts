import type { Redis, Result } from 'ioredis';
import type { Db } from './queries.ts';

// Redis mirrors of product stock, used by the `redis` variant as an admission filter only.
// PostgreSQL stays the source of truth: a mirror may run low (units not yet given back), never
// high, so the filter can turn a buyer away early but can never let the database oversell.

const stockKey = (productId: number) => `stock:${productId}`;

// All-or-nothing: either every line has enough units and all are taken, or nothing changes.
// Returns 0 when taken, i when line i is short, -i when line i has no mirror.
const TAKE_STOCK_LUA = `
for i, key in ipairs(KEYS) do
  local stock = tonumber(redis.call('GET', key))
  if stock == nil then return -i end
  if stock < tonumber(ARGV[i]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('DECRBY', key, ARGV[i])
end
return 0`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    takeStock(numberOfKeys: number, ...keysThenCounts: (string | number)[]): Result<number, Context>;
  }
}

export function defineStockCommands(redis: Redis) {
  redis.defineCommand('takeStock', { lua: TAKE_STOCK_LUA });
}

export interface Line { productId: number; count: number }

export type TakeResult =
  | { taken: true }
  | { taken: false; reason: 'short' | 'no_mirror'; productId: number };

export async function takeMirroredStock(redis: Redis, lines: Line[]): Promise<TakeResult> {
  const result = await redis.takeStock(lines.length, ...lines.map((l) => stockKey(l.productId)),
    ...lines.map((l) => l.count));
  if (result === 0) return { taken: true };
  const line = lines[Math.abs(result) - 1]!;
  return { taken: false, reason: result > 0 ? 'short' : 'no_mirror', productId: line.productId };
}

export async function giveBackMirroredStock(redis: Redis, lines: Line[]) {
  const tx = redis.multi();
  for (const l of lines) tx.incrby(stockKey(l.productId), l.count);
  await tx.exec();
}

export async function readMirroredStock(redis: Redis, productIds: number[]): Promise<Map<number, number | null>> {
  const values = productIds.length ? await redis.mget(productIds.map(stockKey)) : [];
  return new Map(productIds.map((id, i) => [id, values[i] == null ? null : Number(values[i])]));
}

/** Copies every product's stock from PostgreSQL; run at reset and at start-up, never under load. */
export async function loadStockMirrors(db: Db, redis: Redis): Promise<number> {
  const rows = await db<{ id: number; stock: number }[]>`select id, stock from product`;
  if (rows.length) await redis.mset(rows.flatMap((r) => [stockKey(r.id), String(r.stock)]));
  return rows.length;
}
