import { AppError } from '../errors.ts';
import { ordersByRequestKey, type KeyedOrder } from './order-functions.ts';
import type { Db } from './queries.ts';

// An order placed by one autocommit statement commits with that statement. When the connection
// is lost before its answer arrived, the statement may have committed: the orders are looked up
// by the request keys they were sent with (as transaction.ts does for a lost COMMIT).

/** How long to keep asking (the database may be restarting), and how often. */
const ASK_FOR_MS = 3_000;
const ASK_EVERY_MS = 250;

/** The committed orders among `keys`, or undefined when the database could not be asked in time. */
export async function committedByKey(db: Db, keys: string[]): Promise<Map<string, KeyedOrder> | undefined> {
  const until = Date.now() + ASK_FOR_MS;
  for (;;) {
    try {
      return await ordersByRequestKey(db, keys);
    } catch {
      if (Date.now() + ASK_EVERY_MS > until) return undefined;
      await new Promise((resolve) => setTimeout(resolve, ASK_EVERY_MS));
    }
  }
}

/**
 * Nobody could tell whether the order committed. Unlike CommitOutcomeUnknown this carries no
 * order number: the database assigns the id in the very statement whose answer was lost. A
 * client that sent an Idempotency-Key learns the outcome by sending the request again.
 */
export function outcomeUnknown(): AppError {
  return new AppError('OUTCOME_UNKNOWN',
    'the database connection was lost while the order was placed: it may have been placed', {}, 1);
}
