import { withConnection } from '../../transaction.ts';
import { placeOrder } from '../place-order.ts';
import type { PlaceOrderFn, VariantDeps } from './types.ts';

// The reference's baseline: no transaction, every statement commits on its own.
// Two buyers can both pass the stock check, and a write that fails (stock CHECK, used coupon)
// leaves the other writes in place: orders for units never taken, orders the client was told
// failed, a coupon on two orders.
// Kept to show that damage, never to be copied.
export function noTx({ db }: VariantDeps): PlaceOrderFn {
  return (userId, request, { deadline, idempotency } = {}) =>
    withConnection(db, () => placeOrder(db.sql, userId, request, { idempotency }), deadline);
}
