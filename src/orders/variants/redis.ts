import { AppError, CommitOutcomeUnknown, isRedisCommandTimeout } from '../../errors.ts';
import { inTransaction } from '../../transaction.ts';
import { orderCommitCheck, placeOrder } from '../place-order.ts';
import {
  giveBackReservation, newReservation, settleReservation, takeMirroredStock, type Line, type Reservation, type TakeResult,
} from '../redis-stock.ts';
import { rebuildMissingMirror, type Log } from '../stock-reconciler.ts';
import type { PlaceOrderFn, VariantDeps } from './types.ts';

// Redis as an admission filter in front of the row-lock transaction. One Lua script checks and
// takes the units of every line at once in Redis (atomic, all-or-nothing) and records them as a
// reservation, so a sold-out storm is answered without touching PostgreSQL. Admitted orders still
// run the database transaction, which still decrements the database stock and stores the
// reservation id on the order row: PostgreSQL stays the source of truth. After the commit the
// reservation is settled; when the order is known to have failed it is given back, once.
// What the mirror promises (redis-stock.ts): right after a reconcile, the database stock minus the
// units of orders in flight. Between reconciles it can run high (other variants' sales, stock
// changed by hand, a reservation that expired while its order still committed: the database
// refuses what it lacks) or low (units held by a process that died mid-order, until its
// reservation's deadline). No order is ever placed without its database stock.
export function redisPrefiltered(variantDeps: VariantDeps): PlaceOrderFn {
  const deps: Deps = { ...variantDeps, log: variantDeps.log ?? console.error };
  const { db, redis, log } = deps;
  const check = orderCommitCheck(db.sql);
  return async (userId, request, { deadline, idempotency } = {}) => {
    const lines = request.items.map(({ productId, count }) => ({ productId, count }));
    const reservation = await reserve(deps, lines, deadline);
    const order = await inTransaction(db, 'read committed',
      (tx) => placeOrder(tx, userId, request, { reservationId: reservation.id, idempotency }), deadline, check)
      .catch(async (err: unknown) => {
        // The COMMIT's answer was lost and nobody could tell whether it applied: giving back now
        // could free units a committed order took. The reconciler asks the database later and
        // settles the reservation, or gives it back after its deadline.
        if (!(err instanceof CommitOutcomeUnknown)) await giveBack(deps, reservation);
        throw err;
      });
    // The order exists whatever happens here; a reservation left open is settled by the reconciler.
    await settleReservation(redis, reservation.id)
      .catch((err: unknown) => log(`reservation ${reservation.id}: settle failed, the reconciler settles it`, err));
    return order;
  };
}

type Deps = VariantDeps & { log: Log };

/** Takes the lines' units in Redis as a new reservation; a missing mirror is rebuilt once. */
async function reserve(deps: Deps, lines: Line[], deadline: number | undefined): Promise<Reservation> {
  let reservation = newReservation(lines, deps.config.reservations.ttlMs);
  let take = await tryTake(deps, reservation);
  if (!take.taken && take.reason === 'no_mirror') {
    await rebuildMissingMirror(deps.db, deps.redis, lines, deadline);
    reservation = newReservation(lines, deps.config.reservations.ttlMs);
    take = await tryTake(deps, reservation);
  }
  if (take.taken) return reservation;
  const { productId } = take;
  if (take.reason === 'short') deps.metrics?.redisRefused.inc();
  throw take.reason === 'short'
    ? new AppError('OUT_OF_STOCK', `product ${productId} is sold out`, { productId })
    // Rebuilt a moment ago and missing again: Redis is losing its data.
    : new AppError('SERVICE_UNAVAILABLE', `the stock mirror of product ${productId} is unavailable`, { productId }, 1);
}

/** Never throws: the client gets the original failure, and a reservation left open is the reconciler's. */
async function giveBack({ redis, log }: Deps, reservation: Reservation) {
  await giveBackReservation(redis, reservation).catch((err: unknown) =>
    log(`reservation ${reservation.id}: give-back failed, the reconciler frees it after its deadline`, err));
}

async function tryTake(deps: Deps, reservation: Reservation): Promise<TakeResult> {
  try {
    return await takeMirroredStock(deps.redis, reservation);
  } catch (err) {
    // A timed-out take was sent and may still run on the server. Commands on one connection run
    // in order, so a give-back sent now runs after it and undoes it (or finds nothing to undo).
    if (isRedisCommandTimeout(err)) void giveBack(deps, reservation);
    throw err;
  }
}
