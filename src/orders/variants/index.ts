import { batched } from './batched.ts';
import { noTx } from './no-tx.ts';
import { oneRoundTrip } from './one-round-trip.ts';
import { redisPrefiltered } from './redis.ts';
import { rowLock } from './row-lock.ts';
import { serializableRetry } from './serializable-retry.ts';
import { serializable } from './serializable.ts';
import type { PlaceOrderFn, VariantDeps } from './types.ts';

export const VARIANTS = {
  'no-tx': noTx,
  serializable,
  'serializable-retry': serializableRetry,
  'row-lock': rowLock,
  redis: redisPrefiltered,
  'one-round-trip': oneRoundTrip,
  batched,
} satisfies Record<string, (deps: VariantDeps) => PlaceOrderFn>;

export type VariantName = keyof typeof VARIANTS;
export const VARIANT_NAMES = Object.keys(VARIANTS) as VariantName[];
/** Variants that must never lose or oversell a unit (all but the unprotected baseline). */
export const TRANSACTIONAL_VARIANTS = VARIANT_NAMES.filter((v) => v !== 'no-tx');

/**
 * The asynchronous variant (src/orders/queue/): answers 202 and writes the order later, so it is
 * no PlaceOrderFn; the order route serves it beside the synchronous ones.
 */
export const QUEUED = 'queued';
/** Every name POST /orders/{variant} takes. */
export const ORDER_ROUTE_VARIANTS = [...VARIANT_NAMES, QUEUED] as const;
export type OrderRouteVariant = VariantName | typeof QUEUED;

export function isOrderRouteVariant(name: string): name is OrderRouteVariant {
  return name === QUEUED || isVariantName(name);
}

export function isVariantName(name: string): name is VariantName {
  return Object.hasOwn(VARIANTS, name);
}

export function createVariants(deps: VariantDeps): Record<VariantName, PlaceOrderFn> {
  return Object.fromEntries(VARIANT_NAMES.map((name) => [name, VARIANTS[name](deps)])) as Record<VariantName, PlaceOrderFn>;
}

export type { PlaceOrderFn, VariantDeps } from './types.ts';
