import { expireDueOrders, type LifecycleDeps } from './lifecycle.ts';
import { pruneExpiredKeys } from './idempotency.ts';
import { withConnection } from '../transaction.ts';

// Housekeeping after placement: expires orders left unpaid past their deadline (giving back what
// they held) and deletes Idempotency-Keys past theirs. Safe with several service processes
// sweeping at once (expireDueOrders skips rows another transaction holds).

/** Orders expired per transaction: small enough that one sweep never holds hot rows for long. */
const BATCH = 100;

export interface SweepResult { expired: number; keysPruned: number }

/** Sweeps until nothing is due. */
export async function sweepOnce(deps: LifecycleDeps): Promise<SweepResult> {
  let expired = 0;
  for (let n = BATCH; n === BATCH;) {
    n = await expireDueOrders(deps, BATCH);
    expired += n;
  }
  let keysPruned = 0;
  for (let n = BATCH; n === BATCH;) {
    n = await withConnection(deps.db, () => pruneExpiredKeys(deps.db.sql, BATCH));
    keysPruned += n;
  }
  return { expired, keysPruned };
}

/**
 * Sweeps every `intervalMs` (never when 0), one sweep at a time; failures are logged and the next
 * period tries again. stop() waits for a sweep in progress.
 */
export function startOrderSweeper(deps: LifecycleDeps, intervalMs: number): { stop(): Promise<void> } {
  let running: Promise<unknown> | null = null;
  const tick = () => {
    running ??= sweepOnce(deps)
      .catch((err: unknown) => deps.log('order sweep failed; retrying next period', err))
      .finally(() => { running = null; });
  };
  const timer = intervalMs > 0 ? setInterval(tick, intervalMs).unref() : undefined;
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
