import pRetry from 'p-retry';
import { isSerializationFailure } from '../../errors.ts';
import { serializable } from './serializable.ts';
import type { PlaceOrderFn, VariantDeps } from './types.ts';

// SERIALIZABLE, and the server retries instead of the buyer. The *whole* transaction is re-run:
// its reads are stale, so retrying only the failed statement would act on old stock.
// Jittered exponential backoff spreads the retries of colliding orders apart; attempts are
// bounded, after which the 40001 reaches the client as 409 with Retry-After.
export function serializableRetry(deps: VariantDeps): PlaceOrderFn {
  const once = serializable(deps);
  const { maxAttempts, baseDelayMs, maxDelayMs } = deps.config.retry;
  return (userId, request) =>
    pRetry(() => once(userId, request), {
      retries: maxAttempts - 1,
      factor: 2,
      minTimeout: baseDelayMs,
      maxTimeout: maxDelayMs,
      randomize: true,
      shouldRetry: ({ error }) => isSerializationFailure(error),
    });
}
