import type { Redis } from 'ioredis';
import type { Sql } from '../connections.ts';
import { AppError } from '../errors.ts';
import { withConnection, type Database } from '../transaction.ts';
import { existingProductIds, type Db } from './queries.ts';
import { openReservationIds, rebuildMirrors, type Line, type ReconcileResult } from './redis-stock.ts';

// Repairs the stock mirrors of the redis and queued variants (see redis-stock.ts for what they
// promise; a queued order's reservation stays open until its order row is written or it is
// rejected, up to QUEUE_RECORD_TTL_SECONDS): restores
// mirrors Redis lost, lowers mirrors that ran high after other variants' sales, settles
// reservations whose order committed and gives back those of processes that died. Correct with
// any number of service processes running it at once, and atomic with respect to their takes.
//
// Why it is correct: order transactions lock their product rows first, so while this holds every
// product row no order can commit. It reads the stock S under those locks, then the reservations
// open in Redis, then which of them have a committed order; a reservation opened after that read
// cannot have committed either (the locks are still held), so counting it as held is right. The
// final Lua step sees the open reservations at its own moment, atomically with takes and
// give-backs, and sets mirror := S - units held.

export type Log = (message: string, err?: unknown) => void;

// Orders for the rows already locked wait for the reconciler while it waits for the next row: keep
// that well under the orders' own lock timeout (DB_LOCK_TIMEOUT_MS, 1 s by default). A row held
// longer (a stuck session) makes the run fail; the next period tries again.
const LOCK_WAIT_MS = 300;

/** One run; `now` (epoch ms) decides which reservations are past their deadline. */
export async function reconcileStockMirrors(sql: Sql, redis: Redis,
  { now }: { now?: number } = {}): Promise<ReconcileResult> {
  return sql.begin('isolation level read committed', async (tx) => {
    await tx`select set_config('lock_timeout', ${String(LOCK_WAIT_MS)}, true)`;
    const products = await tx<{ id: number; stock: number }[]>`select id, stock from product order by id for update`;
    const open = await openReservationIds(redis);
    const committed = open.length ? await committedReservations(tx, open) : [];
    return rebuildMirrors(redis, products, committed, now ?? Date.now());
  }) as Promise<ReconcileResult>;
}

async function committedReservations(db: Db, ids: string[]): Promise<string[]> {
  const rows = await db<{ reservationId: string }[]>`
    select reservation_id from orders where reservation_id = any(${ids}::uuid[])`;
  return rows.map((r) => r.reservationId);
}

const runs = new WeakMap<Redis, Promise<ReconcileResult>>();

/**
 * reconcileStockMirrors, or the run already in progress in this process (keyed by its Redis
 * client): requests that all find a mirror missing share one run instead of queueing on the locks.
 */
export function reconcileOrJoin(sql: Sql, redis: Redis): Promise<ReconcileResult> {
  let run = runs.get(redis);
  if (!run) {
    run = reconcileStockMirrors(sql, redis).finally(() => runs.delete(redis));
    runs.set(redis, run);
  }
  return run;
}

/**
 * Reconciles every `intervalMs` (never when 0) in the background, one run at a time per process;
 * failures are logged and retried next period. The first run is after one period: run
 * reconcileStockMirrors yourself at start-up. stop() waits for a run in progress.
 */
export function startStockReconciler({ sql, redis, intervalMs, log = console.error }:
  { sql: Sql; redis: Redis; intervalMs: number; log?: Log }): { stop(): Promise<void> } {
  let last: Promise<unknown> = Promise.resolve();
  const tick = () => {
    last = reconcileOrJoin(sql, redis).catch((err: unknown) => log('stock reconcile failed; retrying next period', err));
  };
  const timer = intervalMs > 0 ? setInterval(tick, intervalMs).unref() : undefined;
  return {
    async stop() {
      clearInterval(timer);
      await last;
    },
  };
}

/**
 * No mirror: the product does not exist, or Redis lost its data (restarted empty, key evicted).
 * Only the second is repaired, so that orders naming unknown products cannot keep every product
 * row locked by back-to-back reconciles.
 */
export async function rebuildMissingMirror(db: Database, redis: Redis, lines: Line[], deadline: number | undefined) {
  const ids = lines.map((l) => l.productId);
  const existing = await withConnection(db, () => existingProductIds(db.sql, ids), deadline);
  const unknown = ids.find((id) => !existing.has(id));
  if (unknown !== undefined) {
    throw new AppError('UNKNOWN_PRODUCT', `product ${unknown} does not exist`, { productId: unknown });
  }
  await reconcileOrJoin(db.sql, redis);
}
