import { isConnectionLoss } from '../../errors.ts';
import { busy } from '../../connection-slots.ts';
import { withConnection, type Database } from '../../transaction.ts';
import { committedByKey, outcomeUnknown } from '../lost-answer.ts';
import { orderRefusal, placeOrderCall } from '../order-functions.ts';
import type { PlacedOrder } from '../place-order.ts';
import { prepareForVerification } from '../prepare-order.ts';
import { firstFailure, type VerifiedOrderInput } from '../verified-order.ts';
import type { PlaceOrderFn, VariantDeps } from './types.ts';

// The whole order in ONE round trip: a single autocommit statement at READ COMMITTED calls
// place_order (sql/place-order.sql), which locks the products in ascending id order, then the
// coupon, then the points row, verifies every input the service priced the order from, and writes
// stock, sales, points, order, lines and coupon, all or nothing. The locks are held for one
// statement's execution plus its commit, never across a network round trip: the shortest a hot
// row can be held. A refusal names its cause as row-lock's would; when the service's own pricing
// refuses (wrong total, coupon below its threshold), a second read without locks finds out
// whether an earlier check fails first.
export function oneRoundTrip({ db }: VariantDeps): PlaceOrderFn {
  return async (userId, request, { deadline = Date.now() + db.defaultWaitMs, idempotency } = {}) => {
    const { input, pricingFailure } = await prepareForVerification(db, userId, request, deadline, idempotency);
    if (pricingFailure) {
      const refusal = await withConnection(db, () => orderRefusal(db.sql, input), deadline);
      throw firstFailure(input, refusal, pricingFailure);
    }
    const result = await withConnection(db, () => {
      // Granted too late: the client may have given up, and must not find an order it was never told of.
      if (Date.now() > deadline) throw busy();
      return placeOrderCall(db.sql, input);
    }, deadline).catch((err: unknown) => answerAfterLoss(db, input, err));
    if (result.refusal) throw firstFailure(input, result.refusal);
    return { id: Number(result.orderId), createdAt: result.createdAt!, totalAmount: input.total, pointsUsed: input.pointsUsed };
  };
}

/**
 * The connection died with the statement sent: it committed exactly if an order carries its
 * request key. Found: that order is the answer; not found: the original failure (nothing written).
 */
async function answerAfterLoss(db: Database, input: VerifiedOrderInput, err: unknown) {
  if (!isConnectionLoss(err)) throw err;
  const committed = await committedByKey(db.sql, [input.requestKey]);
  if (!committed) throw outcomeUnknown();
  const order: PlacedOrder | undefined = committed.get(input.requestKey);
  if (!order) throw err;
  return { orderId: String(order.id), createdAt: order.createdAt, refusal: null };
}
