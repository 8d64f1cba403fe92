import type { Redis } from 'ioredis';
import type { Config } from '../../config.ts';
import type { VariantCounters } from '../../metrics.ts';
import type { Database } from '../../transaction.ts';
import type { IdempotencyClaim } from '../idempotency.ts';
import type { PlacedOrder } from '../place-order.ts';
import type { OrderRequest } from '../request.ts';
import type { Log } from '../stock-reconciler.ts';

export interface VariantDeps {
  db: Database;
  redis: Redis;
  /** `orderBatch` (batched variant) defaults to DEFAULT_ORDER_BATCH where the caller's config lacks it. */
  config: Pick<Config, 'retry' | 'reservations'> & Partial<Pick<Config, 'orderBatch'>>;
  /** Failures that do not reach the client but leave repair work (a failed give-back); default console.error. */
  log?: Log;
  /** Counts what only a variant sees (retries, Redis refusals); absent with METRICS=off. */
  metrics?: VariantCounters;
}

export interface PlaceOptions {
  /** Epoch ms by which the order's transaction must have started (else 503 SERVICE_BUSY). */
  deadline?: number;
  /** The request's Idempotency-Key: stored with the order, in the order's own transaction. */
  idempotency?: IdempotencyClaim;
}

/** One way of running the shared placeOrder: what differs between variants is only this wrapper. */
export type PlaceOrderFn = (userId: number, request: OrderRequest, options?: PlaceOptions) => Promise<PlacedOrder>;
