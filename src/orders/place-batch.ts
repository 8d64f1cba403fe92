import { busy } from '../connection-slots.ts';
import { isConnectionLoss } from '../errors.ts';
import { withConnection, type Database } from '../transaction.ts';
import { committedByKey, outcomeUnknown } from './lost-answer.ts';
import type { Pending } from './order-batcher.ts';
import { placeOrdersCall, type FunctionResult } from './order-functions.ts';
import type { PlacedOrder } from './place-order.ts';
import { firstFailure, type PreparedOrder } from './verified-order.ts';

export interface BatchedOrder extends PreparedOrder {
  /** Epoch ms by which the order's batch must have started. */
  deadline: number;
}

/**
 * Places one batch in one statement (place_orders: one transaction, one round trip, one commit)
 * and settles each order with its own outcome.
 */
export async function placeBatch(db: Database, batch: Pending<BatchedOrder, PlacedOrder>[]): Promise<void> {
  // The batch waits for a connection until its newest order's deadline: its orders arrived within
  // the batch wait of each other, so none waits much beyond its own, and none is started after it.
  const latest = Math.max(...batch.map((e) => e.item.deadline));
  await withConnection(db, async () => {
    const now = Date.now();
    const live = batch.filter((e) => {
      if (now <= e.item.deadline) return true;
      e.reject(busy());
      return false;
    });
    if (live.length === 0) return;
    let results: Map<number, FunctionResult>;
    try {
      results = await placeOrdersCall(db.sql, live.map((e) => ({ input: e.item.input, verifyOnly: !!e.item.pricingFailure })));
    } catch (err) {
      await settleAfterLoss(db, live, err);
      return;
    }
    live.forEach((entry, idx) => settle(entry, results.get(idx)!));
  }, latest);
}

function settle({ item, resolve, reject }: Pending<BatchedOrder, PlacedOrder>, r: FunctionResult) {
  if (r.orderId !== null) {
    resolve({ id: Number(r.orderId), createdAt: r.createdAt!, totalAmount: item.input.total, pointsUsed: item.input.pointsUsed });
    return;
  }
  // Not written: the database's refusal, or (verify-only orders it found nothing wrong with) the pricing's.
  reject(firstFailure(item.input, r.refusal, item.pricingFailure));
}

/**
 * The statement failed. Lost with the statement sent, the batch may have committed: the orders
 * carrying its request keys are those it placed; the others were refused or never placed, and
 * get the original failure (nothing of theirs was written). Any other failure: nothing committed.
 */
async function settleAfterLoss(db: Database, live: Pending<BatchedOrder, PlacedOrder>[], err: unknown) {
  const writing = live.filter((e) => !e.item.pricingFailure);
  if (!isConnectionLoss(err) || writing.length === 0) throw err;
  const committed = await committedByKey(db.sql, writing.map((e) => e.item.input.requestKey));
  for (const entry of live) {
    const order = committed?.get(entry.item.input.requestKey);
    if (order) entry.resolve(order);
    else entry.reject(committed || entry.item.pricingFailure ? err : outcomeUnknown());
  }
}
