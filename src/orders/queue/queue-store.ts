import type { Redis } from 'ioredis';
import type { Line } from '../redis-stock.ts';
import { RESERVATIONS_KEY, stockKey } from '../redis-stock.ts';
import type { OrderRequest } from '../request.ts';

// The queued variant's durable state in Redis: the queue of accepted orders (a stream read by a
// consumer group, one consumer per service process), each order's status record (what GET
// answers before the order row exists, and after a rejection), and the units each accepted order
// holds, as a reservation of the stock mirrors (redis-stock.ts) that the order row settles.
// Every step that changes more than one of them is one Lua script, so that no crash can leave
// units taken without a queue entry, an entry without its units, or an outcome recorded without
// the entry leaving the queue (or the other way round).
//
// Durable only as far as the Redis server is: run it with `appendonly yes` and `appendfsync
// always` (the README says why this queue, and the bench and tests start theirs that way), or a
// crash loses the last second of accepted orders.

export const QUEUE_KEY = 'order-queue';
export const QUEUE_GROUP = 'placers';
const recordKey = (orderId: number) => `queued-order:${orderId}`;
const idempotencyKey = (userId: number, key: string) => `queued-key:${userId}:${key}`;

/** What an entry of the queue carries: everything the consumer needs to write the order. */
export interface QueuedOrder {
  orderId: number;
  /** Epoch ms of the 202: the order's created_at, part of its order number. */
  createdAt: number;
  userId: number;
  /** The order row's request key and reservation id. */
  requestKey: string;
  request: OrderRequest;
}

export type QueuedStatus = 'queued' | 'placed' | 'rejected';

/** The status record of a queued order, kept for QUEUE_RECORD_TTL_SECONDS. */
export interface QueuedRecord {
  status: QueuedStatus;
  /** The order's request key: which acceptance the record belongs to. */
  requestKey: string;
  userId: number;
  createdAt: number;
  request: OrderRequest;
  /** Epoch ms when the consumer recorded the outcome (placed: after the commit); absent while queued. */
  decidedAt?: number;
  /** A rejection: the refusal's code, message and details, as a synchronous variant answers them. */
  error?: { code: string; message: string } & Record<string, unknown>;
}

// Accepts an order: checks the queue's length (backpressure), then every line's units, then takes
// the units, records the reservation, appends the entry and writes the status record, all or
// nothing. With an Idempotency-Key, a key already used answers the order it accepted instead.
// A step already taken changes nothing (ioredis resends a command that got no reply after a
// reconnect, though it may have run): its reservation, or its status record once the order was
// decided, exists under its request key. (A record under the same order id with another request
// key is left from a database whose ids started over: it is overwritten.)
// KEYS: reservations, queue, status record, idempotency key (or a placeholder), stock mirrors...
// ARGV: reservation id, reservation JSON, queue limit, entry JSON, record JSON, record TTL (s),
//       idempotency value ("" for none), idempotency TTL (s), then each line's units.
// Returns {0} accepted, {1, i} line i short, {2, i} line i has no mirror, {3} queue full,
// {4, value} the idempotency key's earlier order.
const ACCEPT_LUA = `
if ARGV[7] ~= '' then
  local earlier = redis.call('GET', KEYS[4])
  if earlier then return {4, earlier} end
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {0} end
local decided = redis.call('GET', KEYS[3])
if decided and cjson.decode(decided).requestKey == ARGV[1] then return {0} end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[3]) then return {3} end
for i = 5, #KEYS do
  local stock = tonumber(redis.call('GET', KEYS[i]))
  if stock == nil then return {2, i - 4} end
  if stock < tonumber(ARGV[i + 4]) then return {1, i - 4} end
end
for i = 5, #KEYS do redis.call('DECRBY', KEYS[i], ARGV[i + 4]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], '*', 'order', ARGV[4])
redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[6])
if ARGV[7] ~= '' then redis.call('SET', KEYS[4], ARGV[7], 'EX', ARGV[8]) end
return {0}`;

// The order row committed: its reservation is settled (the units stay taken), the record says so
// and the entry leaves the queue. Recorded whoever holds the entry: the row is the truth.
// KEYS: reservations, queue, status record. ARGV: group, entry id, reservation id, record JSON, TTL.
const PLACED_LUA = `
redis.call('HDEL', KEYS[1], ARGV[3])
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return 1`;

// The database refused the order: its units go back (only while its reservation is open, so
// exactly once whatever runs twice), the record says why and the entry leaves the queue. Only the
// consumer that holds the entry records a rejection: one that lost it to a claim (it was too slow)
// leaves the outcome to the new holder. A missing mirror stays missing (redis-stock.ts).
// KEYS: reservations, queue, status record, stock mirrors... ARGV: group, entry id, reservation id,
// record JSON, TTL, consumer, then each line's units. Returns 1 recorded, 0 not this consumer's.
const REJECTED_LUA = `
if #redis.call('XPENDING', KEYS[2], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[6]) == 0 then return 0 end
if redis.call('HDEL', KEYS[1], ARGV[3]) == 1 then
  for i = 4, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[i + 3]) end
  end
end
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return 1`;

type ScriptArgs = (string | number)[];
interface QueueScripts {
  acceptQueued(numberOfKeys: number, ...keysThenArgs: ScriptArgs): Promise<[number, (number | string)?]>;
  recordPlaced(numberOfKeys: number, ...keysThenArgs: ScriptArgs): Promise<number>;
  recordRejected(numberOfKeys: number, ...keysThenArgs: ScriptArgs): Promise<number>;
}

/** Defined at construction with the stock scripts (see STOCK_SCRIPTS for why). */
export const QUEUE_SCRIPTS = {
  acceptQueued: { lua: ACCEPT_LUA }, recordPlaced: { lua: PLACED_LUA }, recordRejected: { lua: REJECTED_LUA },
};

function scripts(redis: Redis): Redis & QueueScripts {
  if (typeof (redis as Partial<QueueScripts>).acceptQueued !== 'function') {
    throw new Error('this Redis client lacks the queue scripts: make it with createRedis (src/connections.ts)');
  }
  return redis as Redis & QueueScripts;
}

export interface AcceptArgs {
  order: QueuedOrder;
  /** Epoch ms after which the stock reconciler may give the units back if no order row took them. */
  reservationDeadline: number;
  maxQueued: number;
  recordTtlSeconds: number;
  /** The Idempotency-Key, the request's fingerprint and how long the key is kept (s), when the buyer sent a key. */
  idempotency?: QueuedIdempotency;
}

export interface QueuedIdempotency { key: string; fingerprint: string; ttlSeconds: number }

export type AcceptResult =
  | { accepted: true }
  | { accepted: false; reason: 'short' | 'no_mirror'; productId: number }
  | { accepted: false; reason: 'full' }
  | { accepted: false; reason: 'replay'; orderId: number; createdAt: number; fingerprint: string };

export async function acceptQueued(redis: Redis, a: AcceptArgs): Promise<AcceptResult> {
  const { order } = a;
  const lines: Line[] = order.request.items.map((i) => ({ productId: i.productId, count: i.count }));
  const record: QueuedRecord = { status: 'queued', requestKey: order.requestKey, userId: order.userId, createdAt: order.createdAt, request: order.request };
  const reservation = JSON.stringify({ deadline: a.reservationDeadline, lines: lines.map((l) => [l.productId, l.count]) });
  const idem = a.idempotency ? JSON.stringify({ orderId: order.orderId, createdAt: order.createdAt, fingerprint: a.idempotency.fingerprint }) : '';
  const [code, value] = await scripts(redis).acceptQueued(4 + lines.length,
    RESERVATIONS_KEY, QUEUE_KEY, recordKey(order.orderId),
    a.idempotency ? idempotencyKey(order.userId, a.idempotency.key) : 'queued-key:none',
    ...lines.map((l) => stockKey(l.productId)),
    order.requestKey, reservation, a.maxQueued, JSON.stringify(order), JSON.stringify(record), a.recordTtlSeconds, idem,
    a.idempotency?.ttlSeconds ?? 0, ...lines.map((l) => l.count));
  switch (code) {
    case 0: return { accepted: true };
    case 3: return { accepted: false, reason: 'full' };
    case 4: {
      const earlier = JSON.parse(String(value)) as { orderId: number; createdAt: number; fingerprint: string };
      return { accepted: false, reason: 'replay', ...earlier };
    }
    default: return { accepted: false, reason: code === 1 ? 'short' : 'no_mirror', productId: lines[Number(value) - 1]!.productId };
  }
}

/** An entry as the consumer received it. */
export interface QueueEntry { entryId: string; order: QueuedOrder }

export async function recordPlaced(redis: Redis, entry: QueueEntry, ttlSeconds: number) {
  const { order } = entry;
  const record: QueuedRecord = {
    status: 'placed', requestKey: order.requestKey, userId: order.userId, createdAt: order.createdAt, request: order.request, decidedAt: Date.now(),
  };
  await scripts(redis).recordPlaced(3, RESERVATIONS_KEY, QUEUE_KEY, recordKey(order.orderId),
    QUEUE_GROUP, entry.entryId, order.requestKey, JSON.stringify(record), ttlSeconds);
}

/** False when the entry is no longer this consumer's (another claimed it): nothing recorded. */
export async function recordRejected(redis: Redis, entry: QueueEntry, consumer: string,
  error: QueuedRecord['error'], ttlSeconds: number): Promise<boolean> {
  const { order } = entry;
  const record: QueuedRecord = {
    status: 'rejected', requestKey: order.requestKey, userId: order.userId, createdAt: order.createdAt, request: order.request,
    decidedAt: Date.now(), error,
  };
  const items = order.request.items;
  const recorded = await scripts(redis).recordRejected(3 + items.length, RESERVATIONS_KEY, QUEUE_KEY, recordKey(order.orderId),
    ...items.map((i) => stockKey(i.productId)),
    QUEUE_GROUP, entry.entryId, order.requestKey, JSON.stringify(record), ttlSeconds, consumer, ...items.map((i) => i.count));
  return recorded === 1;
}

export async function readQueuedRecord(redis: Redis, orderId: number): Promise<QueuedRecord | null> {
  const raw = await redis.get(recordKey(orderId));
  return raw === null ? null : JSON.parse(raw) as QueuedRecord;
}

/** The records of many orders at once (the bench's audit), null where there is none. */
export async function readQueuedRecords(redis: Redis, orderIds: number[]): Promise<(QueuedRecord | null)[]> {
  const records: (QueuedRecord | null)[] = [];
  for (let i = 0; i < orderIds.length; i += 1000) {
    const raw = await redis.mget(orderIds.slice(i, i + 1000).map(recordKey));
    records.push(...raw.map((r) => (r === null ? null : JSON.parse(r) as QueuedRecord)));
  }
  return records;
}

/** Entries in the queue: accepted and not yet placed or rejected. */
export function queueLength(redis: Redis): Promise<number> {
  return redis.xlen(QUEUE_KEY);
}

/**
 * Null when the Redis server syncs its append-only file on every write (an accepted order
 * survives a crash of the server), else what it does instead. Unknown (CONFIG refused, as on
 * some managed servers) counts as no problem found.
 */
export async function queueDurabilityProblem(redis: Redis): Promise<string | null> {
  try {
    const [, appendonly] = await redis.config('GET', 'appendonly') as string[];
    const [, fsync] = await redis.config('GET', 'appendfsync') as string[];
    if (appendonly !== 'yes') return 'Redis runs without its append-only file (appendonly no): a crash loses accepted orders';
    if (fsync !== 'always') return `Redis syncs its append-only file "${fsync}", not "always": a crash loses the last second of accepted orders`;
    return null;
  } catch {
    return null;
  }
}
