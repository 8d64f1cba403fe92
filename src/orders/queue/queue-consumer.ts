import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { QueueConfig } from '../../config.ts';
import { toAppError } from '../../errors.ts';
import { withConnection, type Database } from '../../transaction.ts';
import { isFinalRefusal } from '../idempotency.ts';
import { ordersByRequestKey, placeOrdersCall } from '../order-functions.ts';
import { prepareForVerification } from '../prepare-order.ts';
import type { Log } from '../stock-reconciler.ts';
import { firstFailure, type PreparedOrder } from '../verified-order.ts';
import { QUEUE_GROUP, QUEUE_KEY, recordPlaced, recordRejected, type QueueEntry, type QueuedOrder } from './queue-store.ts';

// A consumer of the order queue, one per service process: reads accepted orders in batches and
// writes each batch with place_orders, the batched variant's statement (one transaction, the
// batch's rows locked once in the one lock order, the orders verified and written together up to
// the first refused one, each after it in a subtransaction of its own, and one batch at a time
// across processes). Batches grow with the load by themselves: while one is
// written the next gathers in the stream, and the next read takes up to QUEUE_BATCH_MAX of them.
//
// Exactly one outcome per accepted order, whatever dies when:
// - an order row carries the entry's request key (unique): a redelivered entry whose order
//   committed is recognised by it before anything is written again, and recorded as placed; and
//   place_orders itself answers a queued order whose row exists with that row (sql/place-order.sql);
// - an outcome (placed or rejected) is recorded together with the entry's acknowledgement, in one
//   Lua step (queue-store.ts); an entry left unacknowledged (the process died, the database
//   failed) is read again: by this consumer once the failure passes, by any other after
//   QUEUE_CLAIM_IDLE_MS;
// - a rejection is recorded only by the consumer that holds the entry, and an entry is taken over
//   only after longer than a write can last (QUEUE_CLAIM_IDLE_MS > REQUEST_TIMEOUT_MS +
//   DB_STATEMENT_TIMEOUT_MS: the waits for connections share one deadline, then the statement),
//   so a slow consumer's write has ended before a newer holder decides.

export interface QueueConsumerDeps {
  db: Database;
  /** The service's client (it has the queue scripts); the consumer opens a blocking one of its own. */
  redis: Redis;
  config: QueueConfig & { requestTimeoutMs: number };
  log: Log;
  /** The consumer's name in the group (default: host, pid and a random suffix). */
  name?: string;
}

export interface QueueConsumer {
  readonly name: string;
  /** Finishes the batch being written (if any) and stops reading. */
  stop(): Promise<void>;
}

/** A write that collides on this was the same order, written already (the request key is its own). */
const SAME_ORDER_CONSTRAINTS = new Set(['orders_request_key_idx']);
/** Times an order is tried when it fails for a reason of the moment; then it is rejected with that reason. */
const MAX_ATTEMPTS = 5;

/** How long one read waits for new entries, and the pause after a failure (ms). */
const BLOCK_MS = 100;
const RETRY_PAUSE_MS = 200;

export async function startQueueConsumer(deps: QueueConsumerDeps): Promise<QueueConsumer> {
  const { db, redis, config, log } = deps;
  const name = deps.name ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  // Blocking reads on a connection of their own: on the shared one they would hold back every
  // command queued behind them (auto-pipelining), and outlast its command timeout.
  const reader = redis.duplicate({ commandTimeout: BLOCK_MS + 5_000, enableAutoPipelining: false });
  reader.on('error', () => {});
  await reader.connect();
  await ensureGroup(reader);

  let stopped = false;
  // This consumer's own unfinished entries (left by a failure, or by a process of the same name
  // before it) are read again first, then at most every RETRY_PAUSE_MS while some remain: new
  // entries are read in between, so one order that cannot be written never stops the others.
  let retryOwn = true;
  let retryOwnAt = 0;
  let lastClaim = 0;
  // Where the scan for idle entries of other consumers goes on (XAUTOCLAIM's cursor).
  let claimCursor = '0-0';
  const attempts = new Map<string, number>();
  const retryLater = () => {
    retryOwn = true;
    retryOwnAt = Date.now() + RETRY_PAUSE_MS;
  };

  const loop = (async () => {
    while (!stopped) {
      try {
        let entries: QueueEntry[] = [];
        let redelivered = true;
        const now = Date.now();
        if (retryOwn && now >= retryOwnAt) {
          entries = await read(reader, name, config.batchMax, '0');
          if (entries.length === 0) retryOwn = false;
        } else if (now - lastClaim >= config.claimIdleMs / 2) {
          lastClaim = now;
          [claimCursor, entries] = await claimIdle(reader, name, config, claimCursor);
        }
        if (entries.length === 0) {
          entries = await read(reader, name, config.batchMax, '>');
          redelivered = false;
        }
        const left = entries.length ? await writeBatch(deps, name, entries, redelivered, attempts) : 0;
        // Orders refused for a reason of the moment (a conflict, a timeout): again after a pause.
        if (left) retryLater();
      } catch (err) {
        retryLater();
        if (stopped) break;
        if ((err as Error).message?.includes('NOGROUP')) await ensureGroup(reader).catch(() => {});
        else log('order queue: a batch failed; its entries are read again', err);
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
      }
    }
  })();

  return {
    name,
    async stop() {
      stopped = true;
      await loop;
      reader.disconnect();
    },
  };
}

/** The group exists from the stream's start (entries accepted before any consumer ran are read too). */
async function ensureGroup(redis: Redis) {
  await redis.xgroup('CREATE', QUEUE_KEY, QUEUE_GROUP, '0', 'MKSTREAM').catch((err: Error) => {
    if (!err.message.includes('BUSYGROUP')) throw err;
  });
}

type RawEntry = [id: string, fields: string[] | null];

async function read(redis: Redis, consumer: string, count: number, from: '0' | '>'): Promise<QueueEntry[]> {
  const reply = (from === '>'
    ? await redis.xreadgroup('GROUP', QUEUE_GROUP, consumer, 'COUNT', count, 'BLOCK', BLOCK_MS, 'STREAMS', QUEUE_KEY, from)
    : await redis.xreadgroup('GROUP', QUEUE_GROUP, consumer, 'COUNT', count, 'STREAMS', QUEUE_KEY, from)) as [string, RawEntry[]][] | null;
  return parseEntries(reply?.[0]?.[1] ?? []);
}

/**
 * Entries other consumers received and left unfinished for longer than the claim time, scanning
 * the group's pending entries from `cursor` on; returns where the next scan goes on.
 */
async function claimIdle(redis: Redis, consumer: string, config: QueueConfig, cursor: string): Promise<[string, QueueEntry[]]> {
  const [next, entries] = await redis.xautoclaim(QUEUE_KEY, QUEUE_GROUP, consumer, config.claimIdleMs, cursor,
    'COUNT', config.batchMax) as [string, RawEntry[], string[]];
  return [next, parseEntries(entries)];
}

function parseEntries(raw: RawEntry[]): QueueEntry[] {
  // An entry deleted while pending comes back without fields: nothing is left to do for it.
  return raw.filter(([, fields]) => fields && fields[0] === 'order')
    .map(([entryId, fields]) => ({ entryId, order: JSON.parse(fields![1]!) as QueuedOrder }));
}

/**
 * Writes one batch and records each entry's outcome. Throws (leaving entries unacknowledged, to
 * be read again) when the database or Redis failed; a failure that is not final for one order
 * (its write conflicted, a timeout) leaves that entry for the next round.
 */
async function writeBatch(deps: QueueConsumerDeps, consumer: string, entries: QueueEntry[], redelivered: boolean,
  attempts: Map<string, number>): Promise<number> {
  const { db, redis, config, log } = deps;
  const deadline = Date.now() + config.requestTimeoutMs;
  const ttl = config.recordTtlSeconds;
  let todo = entries;
  if (redelivered) {
    // Entries read before: the order may have committed before its outcome was recorded.
    const committed = await withConnection(db, () => ordersByRequestKey(db.sql, entries.map((e) => e.order.requestKey)), deadline);
    await Promise.all(entries.filter((e) => committed.has(e.order.requestKey)).map((e) => recordPlaced(redis, e, ttl)));
    todo = entries.filter((e) => !committed.has(e.order.requestKey));
    if (todo.length === 0) return 0;
  }
  const prepared: PreparedOrder[] = await Promise.all(todo.map(async ({ order }) => {
    const p = await prepareForVerification(db, order.userId, order.request, deadline);
    p.input.requestKey = order.requestKey;
    p.input.accepted = { orderId: order.orderId, createdAt: new Date(order.createdAt), reservationId: order.requestKey };
    return p;
  }));
  const results = await withConnection(db,
    () => placeOrdersCall(db.sql, prepared.map((p) => ({ input: p.input, verifyOnly: !!p.pricingFailure }))), deadline);
  const settled = await Promise.all(todo.map(async (entry, idx) => {
    const r = results.get(idx)!;
    // Its key is taken: the same order committed meanwhile (a consumer that lost the entry to a claim).
    if (r.orderId !== null || (r.refusal?.code === 'SQL_ERROR' && SAME_ORDER_CONSTRAINTS.has(r.refusal.constraint as string))) {
      attempts.delete(entry.entryId);
      await recordPlaced(redis, entry, ttl);
      return true;
    }
    const error = toAppError(firstFailure(prepared[idx]!.input, r.refusal, prepared[idx]!.pricingFailure));
    if (!isFinalRefusal(error)) {
      // Not the order's fault: read again later, a few times; then the buyer is told why.
      const tried = (attempts.get(entry.entryId) ?? 0) + 1;
      log(`order queue: order ${entry.order.orderId} not written (${error.code}: ${error.message}), attempt ${tried} of ${MAX_ATTEMPTS}`);
      if (tried < MAX_ATTEMPTS) {
        attempts.set(entry.entryId, tried);
        return false;
      }
    }
    attempts.delete(entry.entryId);
    await recordRejected(redis, entry, consumer, { code: error.code, message: error.message, ...error.details }, ttl);
    return true;
  }));
  return settled.filter((done) => !done).length;
}
