import type { Redis } from 'ioredis';
import type { Config } from '../../config.ts';
import type { Database } from '../../transaction.ts';
import type { PlacedOrder } from '../place-order.ts';
import type { OrderRequest } from '../request.ts';
import type { Log } from '../stock-reconciler.ts';

export interface VariantDeps {
  db: Database;
  redis: Redis;
  config: Pick<Config, 'retry' | 'reservations'>;
  /** Failures that do not reach the client but leave repair work (a failed give-back); default console.error. */
  log?: Log;
}

export interface PlaceOptions {
  /** Epoch ms by which the order's transaction must have started (else 503 SERVICE_BUSY). */
  deadline?: number;
}

/** One way of running the shared placeOrder: what differs between variants is only this wrapper. */
export type PlaceOrderFn = (userId: number, request: OrderRequest, options?: PlaceOptions) => Promise<PlacedOrder>;
