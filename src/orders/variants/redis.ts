import { AppError } from '../../errors.ts';
import { giveBackMirroredStock, takeMirroredStock } from '../redis-stock.ts';
import { rowLock } from './row-lock.ts';
import type { PlaceOrderFn, VariantDeps } from './types.ts';

// Redis as an admission filter in front of the row-lock transaction. One Lua script checks and
// takes the units of every line at once in Redis (atomic, all-or-nothing), so a sold-out storm is
// answered without touching PostgreSQL. Admitted orders still run the database transaction, which
// still decrements the database stock: PostgreSQL stays the source of truth. If anything fails
// after the Redis take, the units go back to Redis exactly once, so the mirror never leaks.
export function redisPrefiltered(deps: VariantDeps): PlaceOrderFn {
  const inDatabase = rowLock(deps);
  return async (userId, request) => {
    const lines = request.items.map(({ productId, count }) => ({ productId, count }));
    const take = await takeMirroredStock(deps.redis, lines);
    if (!take.taken) {
      const { productId } = take;
      throw take.reason === 'short'
        ? new AppError('OUT_OF_STOCK', `product ${productId} is sold out`, { productId })
        : new AppError('UNKNOWN_PRODUCT', `product ${productId} does not exist`, { productId });
    }
    try {
      return await inDatabase(userId, request);
    } catch (err) {
      // If Redis is down now, the mirror stays low: safe (the database still decides), and the
      // next start-up reloads it. The client gets the original failure either way.
      await giveBackMirroredStock(deps.redis, lines).catch(() => {});
      throw err;
    }
  };
}
