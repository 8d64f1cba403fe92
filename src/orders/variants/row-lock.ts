import { inTransaction } from '../../transaction.ts';
import { orderCommitCheck, placeOrder } from '../place-order.ts';
import type { PlaceOrderFn, VariantDeps } from './types.ts';

// READ COMMITTED with row locks. Every row whose value decides the order (products, coupon,
// points) is read with SELECT ... FOR UPDATE, so concurrent orders queue on those rows and each
// sees the latest committed stock once it holds the lock: no 40001 to retry. Products are locked
// in ascending id order, so two orders over the same products cannot deadlock.
export function rowLock({ db }: VariantDeps): PlaceOrderFn {
  return (userId, request, { deadline, idempotency } = {}) =>
    inTransaction(db, 'read committed', (tx) => placeOrder(tx, userId, request, { idempotency }), deadline, orderCommitCheck(db.sql));
}
