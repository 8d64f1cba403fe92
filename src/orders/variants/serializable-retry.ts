import pRetry from 'p-retry';
import { isSerializationFailure } from '../../errors.ts';
import { inTransaction } from '../../transaction.ts';
import { orderCommitCheck, placeOrder } from '../place-order.ts';
import type { PlaceOrderFn, VariantDeps } from './types.ts';

// SERIALIZABLE, and the server retries instead of the buyer. The *whole* transaction is re-run:
// its reads are stale, so retrying only the failed statement would act on old stock.
// Jittered exponential backoff spreads the retries of colliding orders apart; attempts are
// bounded, after which the 40001 reaches the client as 409 with Retry-After. Each attempt gives
// its connection back before the backoff, so sleeping buyers do not hold the pool.
export function serializableRetry({ db, config, metrics }: VariantDeps): PlaceOrderFn {
  const { maxAttempts, baseDelayMs, maxDelayMs } = config.retry;
  const check = orderCommitCheck(db.sql);
  return (userId, request, { deadline, idempotency } = {}) =>
    pRetry(() => inTransaction(db, 'serializable', (tx) => placeOrder(tx, userId, request, { idempotency }), deadline, check), {
      retries: maxAttempts - 1,
      factor: 2,
      minTimeout: baseDelayMs,
      maxTimeout: maxDelayMs,
      randomize: true,
      // Asked only while attempts are left: true means the order runs again.
      shouldRetry: ({ error }) => {
        const retry = isSerializationFailure(error);
        if (retry) metrics?.serializableRetries.inc();
        return retry;
      },
    });
}
