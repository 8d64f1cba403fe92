import { inTransaction } from '../../transaction.ts';
import { orderCommitCheck, placeOrder } from '../place-order.ts';
import type { PlaceOrderFn, VariantDeps } from './types.ts';

// One SERIALIZABLE transaction. PostgreSQL aborts any order whose reads a concurrent order made
// stale (SQLSTATE 40001); that abort reaches the client as 409 SERIALIZATION_FAILURE.
// Correct, but on hot rows many buyers are turned away and have to retry themselves.
export function serializable({ db }: VariantDeps): PlaceOrderFn {
  return (userId, request, { deadline, idempotency } = {}) =>
    inTransaction(db, 'serializable', (tx) => placeOrder(tx, userId, request, { idempotency }), deadline, orderCommitCheck(db.sql));
}
