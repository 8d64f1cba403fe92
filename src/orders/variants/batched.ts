import { DEFAULT_ORDER_BATCH } from '../../config.ts';
import { OrderBatcher } from '../order-batcher.ts';
import { placeBatch, type BatchedOrder } from '../place-batch.ts';
import type { PlacedOrder } from '../place-order.ts';
import { prepareForVerification } from '../prepare-order.ts';
import type { PlaceOrderFn, VariantDeps } from './types.ts';

// Group commit. Concurrent orders are gathered (up to ORDER_BATCH_MAX, or ORDER_BATCH_WAIT_MS
// after the first; while ORDER_BATCH_IN_FLIGHT batches run, the next one gathers until one of
// them finishes, so batches grow with the load: src/orders/order-batcher.ts) and placed by ONE
// statement, place_orders (sql/place-order.sql): one transaction at READ COMMITTED that locks
// the union of the batch's products in ascending id order, then its coupons, then its points
// rows (one lock order across batches and processes: no deadlock), verifies the orders together,
// each against the rows as the orders before it leave them, and writes those up to the first
// refused one together (a hot row updated once per batch); from the first refused one on, each
// order is placed in a subtransaction of its own. A hot row is locked and its WAL flushed once
// per batch instead of once per order, while each order still succeeds or fails on its own: a
// sold-out, used-coupon or wrong-total order never fails its neighbours and leaves nothing
// written. Each order is priced by the service first, as in one-round-trip.
export function batched({ db, config }: VariantDeps): PlaceOrderFn {
  const { maxOrders, waitMs, inFlight } = config.orderBatch ?? DEFAULT_ORDER_BATCH;
  const batcher = new OrderBatcher<BatchedOrder, PlacedOrder>({
    maxSize: maxOrders, waitMs, maxInFlight: inFlight, run: (batch) => placeBatch(db, batch),
  });
  return async (userId, request, { deadline = Date.now() + db.defaultWaitMs, idempotency } = {}) => {
    const prepared = await prepareForVerification(db, userId, request, deadline, idempotency);
    return batcher.submit({ ...prepared, deadline });
  };
}
