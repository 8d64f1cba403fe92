import type { Redis } from 'ioredis';
import type { Config } from '../../config.ts';
import type { Sql } from '../../connections.ts';
import type { PlacedOrder } from '../place-order.ts';
import type { OrderRequest } from '../request.ts';

export interface VariantDeps {
  sql: Sql;
  redis: Redis;
  config: Pick<Config, 'retry'>;
}

/** One way of running the shared placeOrder: what differs between variants is only this wrapper. */
export type PlaceOrderFn = (userId: number, request: OrderRequest) => Promise<PlacedOrder>;
