import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Db } from './queries.ts';

// Redis mirrors of product stock, used by the `redis` variant as an admission filter only;
// PostgreSQL stays the source of truth. What a mirror promises: right after a reconcile
// (stock-reconciler.ts) it equals the database stock minus the units held by orders in flight.
// Between reconciles it can run high (units sold by other variants, stock changed by hand, a
// reservation that expired while its order still committed), and then the database refuses what
// it does not have; or low, by the units a process that died mid-order held, until that
// reservation's deadline. Either way no order is placed without its database stock: every
// admitted order still takes its units in the database transaction.
//
// Every take records a reservation atomically with the units it takes, so that units held by a
// process that died (or by a take that timed out on the client but still ran on the server) can be
// found and given back. The order row carries the reservation id: a reservation whose order
// committed is settled (closed, its units stay taken), one whose order failed is given back once,
// one whose commit outcome is unknown is left to the reconciler, which asks the database.

export const stockKey = (productId: number) => `stock:${productId}`;

// Open reservations, id -> JSON {deadline, lines: [[productId, count], ...]}: one hash rather than
// a key per reservation, so that every script names every key it touches in KEYS (ioredis
// prefixes KEYS, not ARGV).
export const RESERVATIONS_KEY = 'reservations';

// All-or-nothing: either every line has enough units, all are taken and the reservation is
// recorded with them, or nothing changes. A reservation already recorded takes nothing again:
// ioredis resends a command that got no reply after a reconnect, though it may have run.
// Returns 0 when taken, i when line i is short, -i when line i has no mirror.
const TAKE_LUA = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
for i = 2, #KEYS do
  local stock = tonumber(redis.call('GET', KEYS[i]))
  if stock == nil then return -(i - 1) end
  if stock < tonumber(ARGV[i + 1]) then return i - 1 end
end
for i = 2, #KEYS do redis.call('DECRBY', KEYS[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 0`;

// Only a reservation still open gives its units back, and it is closed in the same step: called
// twice, or after the reconciler closed it, it changes nothing. A missing mirror stays missing
// (created here it would hold just these units, and the variant would sell too little); the next
// take that finds it missing has the reconciler rebuild it. Returns 1 when given back.
const GIVE_BACK_LUA = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[i]) end
end
return 1`;

// Units a cancelled or expired order gives back to the mirrors. A missing mirror stays missing,
// as in GIVE_BACK_LUA. KEYS: the mirrors; ARGV: the units.
const RETURN_LUA = `
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[i]) end
end
return 1`;

// The reconciler's step, run while it holds every product row lock (see stock-reconciler.ts).
// KEYS: the reservations, then each product's mirror. ARGV: now, each product's id, each
// product's database stock, then the ids of reservations whose order committed. Every
// reservation open *now* is settled (its order committed), expired (past its deadline: given
// back, i.e. no longer counted) or held; each mirror := database stock - units held.
// A mirror may come out negative: units held beyond the stock, which the database will refuse
// and give back. Returns {mirrors changed, reservations settled, reservations expired}.
const RECONCILE_LUA = `
local now, n = tonumber(ARGV[1]), #KEYS - 1
local indexOf, mirror = {}, {}
for i = 1, n do
  indexOf[tonumber(ARGV[1 + i])] = i
  mirror[i] = tonumber(ARGV[1 + n + i])
end
local committed = {}
for j = 2 + 2 * n, #ARGV do committed[ARGV[j]] = true end
local settled, expired = 0, 0
local open = redis.call('HGETALL', KEYS[1])
for k = 1, #open, 2 do
  local id, reservation = open[k], cjson.decode(open[k + 1])
  if committed[id] then
    redis.call('HDEL', KEYS[1], id)
    settled = settled + 1
  elseif reservation.deadline <= now then
    redis.call('HDEL', KEYS[1], id)
    expired = expired + 1
  else
    for _, line in ipairs(reservation.lines) do
      local i = indexOf[line[1]]
      if i then mirror[i] = mirror[i] - line[2] end
    end
  end
end
local changed = 0
for i = 1, n do
  if tonumber(redis.call('GET', KEYS[1 + i])) ~= mirror[i] then
    redis.call('SET', KEYS[1 + i], mirror[i])
    changed = changed + 1
  end
end
return {changed, settled, expired}`;

type ScriptArgs = (string | number)[];
interface StockScripts {
  takeStock(numberOfKeys: number, ...keysThenArgs: ScriptArgs): Promise<number>;
  giveBackStock(numberOfKeys: number, ...keysThenArgs: ScriptArgs): Promise<number>;
  returnStock(numberOfKeys: number, ...keysThenArgs: ScriptArgs): Promise<number>;
  reconcileStock(numberOfKeys: number, ...keysThenArgs: ScriptArgs): Promise<[number, number, number]>;
}
const SCRIPTS: Record<keyof StockScripts, string> = {
  takeStock: TAKE_LUA, giveBackStock: GIVE_BACK_LUA, returnStock: RETURN_LUA, reconcileStock: RECONCILE_LUA,
};

/**
 * The scripts in the form ioredis defines them at construction (`new Redis(url, { scripts })`, as
 * createRedis does). Defined later on a client that pipelines automatically, a command would be
 * missing from a pipeline already gathering when it was defined ("pipeline[name] is not a function").
 */
export const STOCK_SCRIPTS = Object.fromEntries(Object.entries(SCRIPTS).map(([name, lua]) => [name, { lua }]));

/** The client as one with this module's scripts. */
function scripts(redis: Redis): Redis & StockScripts {
  if (typeof (redis as Partial<StockScripts>).takeStock !== 'function') {
    throw new Error('this Redis client lacks the stock scripts: make it with createRedis (src/connections.ts)');
  }
  return redis as Redis & StockScripts;
}

export interface Line { productId: number; count: number }

export interface Reservation {
  id: string;
  lines: Line[];
  /** Epoch ms after which the reconciler gives the units back, unless the order committed. */
  deadline: number;
}

export function newReservation(lines: Line[], ttlMs: number, now = Date.now()): Reservation {
  return { id: randomUUID(), lines, deadline: now + ttlMs };
}

export type TakeResult =
  | { taken: true }
  | { taken: false; reason: 'short' | 'no_mirror'; productId: number };

/** Takes the units of every line and records the reservation, or changes nothing. */
export async function takeMirroredStock(redis: Redis, reservation: Reservation): Promise<TakeResult> {
  const { id, lines, deadline } = reservation;
  const record = JSON.stringify({ deadline, lines: lines.map((l) => [l.productId, l.count]) });
  const result = await scripts(redis).takeStock(1 + lines.length, RESERVATIONS_KEY,
    ...lines.map((l) => stockKey(l.productId)), id, record, ...lines.map((l) => l.count));
  if (result === 0) return { taken: true };
  const line = lines[Math.abs(result) - 1]!;
  return { taken: false, reason: result > 0 ? 'short' : 'no_mirror', productId: line.productId };
}

/** The order committed: closes the reservation, its units stay taken. Closing it twice is harmless. */
export async function settleReservation(redis: Redis, id: string) {
  await redis.hdel(RESERVATIONS_KEY, id);
}

/** The order failed: gives the units back if the reservation is still open. True when it was. */
export async function giveBackReservation(redis: Redis, { id, lines }: Reservation): Promise<boolean> {
  const result = await scripts(redis).giveBackStock(1 + lines.length, RESERVATIONS_KEY,
    ...lines.map((l) => stockKey(l.productId)), id, ...lines.map((l) => l.count));
  return result === 1;
}

/** A settled order ended unpaid: its units go back to the mirrors (see lifecycle.ts for when). */
export async function returnMirroredStock(redis: Redis, lines: Line[]) {
  await scripts(redis).returnStock(lines.length, ...lines.map((l) => stockKey(l.productId)), ...lines.map((l) => l.count));
}

export function openReservationIds(redis: Redis): Promise<string[]> {
  return redis.hkeys(RESERVATIONS_KEY);
}

export interface ReconcileResult {
  /** Mirrors set to a new value (missing ones included). */
  mirrorsChanged: number;
  /** Reservations closed because their order had committed. */
  settled: number;
  /** Reservations given back because their deadline passed without an order. */
  expired: number;
}

/**
 * Sets every mirror to its database stock minus the units of the reservations open at that moment,
 * settling the `committed` ones and giving back the expired ones. Correct only while the caller
 * holds every product row lock (see stock-reconciler.ts).
 */
export async function rebuildMirrors(redis: Redis, products: { id: number; stock: number }[],
  committed: string[], now: number): Promise<ReconcileResult> {
  const [mirrorsChanged, settled, expired] = await scripts(redis).reconcileStock(1 + products.length,
    RESERVATIONS_KEY, ...products.map((p) => stockKey(p.id)),
    now, ...products.map((p) => p.id), ...products.map((p) => p.stock), ...committed);
  return { mirrorsChanged, settled, expired };
}

export async function readMirroredStock(redis: Redis, productIds: number[]): Promise<Map<number, number | null>> {
  const values = productIds.length ? await redis.mget(productIds.map(stockKey)) : [];
  return new Map(productIds.map((id, i) => [id, values[i] == null ? null : Number(values[i])]));
}

/**
 * Copies every product's stock from PostgreSQL and forgets every reservation, in one step. For a
 * reset only (seed), with no order in flight: it would lose the units orders in flight hold.
 * A running service repairs its mirrors with the reconciler instead.
 */
export async function loadStockMirrors(db: Db, redis: Redis): Promise<number> {
  const rows = await db<{ id: number; stock: number }[]>`select id, stock from product`;
  const tx = redis.multi().del(RESERVATIONS_KEY);
  if (rows.length) tx.mset(rows.flatMap((r) => [stockKey(r.id), String(r.stock)]));
  await tx.exec();
  return rows.length;
}
