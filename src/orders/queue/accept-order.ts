import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { QueueConfig } from '../../config.ts';
import { AppError, CommitOutcomeUnknown, isRedisOutcomeUnknown } from '../../errors.ts';
import type { Database } from '../../transaction.ts';
import { keyReused } from '../idempotency.ts';
import type { OrderRequest } from '../request.ts';
import { rebuildMissingMirror } from '../stock-reconciler.ts';
import { prepareOrder } from '../verified-order.ts';
import type { OrderIds } from './order-ids.ts';
import { acceptQueued, type AcceptResult, type QueuedIdempotency, type QueuedOrder } from './queue-store.ts';

// The queued variant's request path: asynchronous placement. The order is checked against the
// stock mirrors, its units taken and the order appended to the durable queue in one Redis step
// (queue-store.ts); the buyer gets 202 with the order's number at once, and a consumer
// (queue-consumer.ts) writes the order, or rejects it, moments later. Nothing touches PostgreSQL
// on this path, except to fetch a block of order ids now and then.

export interface AcceptedOrder {
  orderId: number;
  createdAt: Date;
  /** True when an earlier submission with the same Idempotency-Key was accepted: this is its order. */
  replayed: boolean;
}

export interface AcceptDeps {
  db: Database;
  redis: Redis;
  orderIds: OrderIds;
  config: QueueConfig;
}

/**
 * Accepts an order into the queue. Throws TOTAL_MISMATCH (409) when an order without a coupon does
 * not add up (its prices are the buyer's: no lookup needed), OUT_OF_STOCK (409) when the mirrors
 * lack a line's units, UNKNOWN_PRODUCT (422), SERVICE_BUSY (503, Retry-After 1) when the queue
 * holds QUEUE_MAX_LENGTH orders, IDEMPOTENCY_KEY_REUSED (422) for a key used with another request,
 * OUTCOME_UNKNOWN (503, CommitOutcomeUnknown with the order) when Redis did not answer the step.
 */
export async function acceptOrder(deps: AcceptDeps, userId: number, request: OrderRequest, deadline: number,
  idempotency?: QueuedIdempotency): Promise<AcceptedOrder> {
  // Refused here rather than rejected after the 202, its units taken meanwhile. With a coupon the
  // price needs the coupon's definition: the consumer checks it.
  if (request.couponId === undefined) {
    const failure = prepareOrder(userId, request, undefined).pricingFailure;
    if (failure) throw failure.error;
  }
  let result = await tryAccept(deps, userId, request, deadline, idempotency);
  if (!result.accepted && result.reason === 'no_mirror') {
    await rebuildMissingMirror(deps.db, deps.redis, request.items, deadline);
    result = await tryAccept(deps, userId, request, deadline, idempotency);
  }
  if (result.accepted) return { orderId: result.order.orderId, createdAt: new Date(result.order.createdAt), replayed: false };
  switch (result.reason) {
    case 'replay':
      if (result.fingerprint !== idempotency?.fingerprint) throw keyReused();
      return { orderId: result.orderId, createdAt: new Date(result.createdAt), replayed: true };
    case 'full':
      throw new AppError('SERVICE_BUSY', `the order queue holds ${deps.config.maxLength} orders: try again shortly`, {}, 1);
    case 'short':
      throw new AppError('OUT_OF_STOCK', `product ${result.productId} is sold out`, { productId: result.productId });
    case 'no_mirror':
      // Rebuilt a moment ago and missing again: Redis is losing its data.
      throw new AppError('SERVICE_UNAVAILABLE', `the stock mirror of product ${result.productId} is unavailable`,
        { productId: result.productId }, 1);
  }
}

async function tryAccept(deps: AcceptDeps, userId: number, request: OrderRequest, deadline: number,
  idempotency: QueuedIdempotency | undefined): Promise<(AcceptResult & { accepted: false }) | { accepted: true; order: QueuedOrder }> {
  const now = Date.now();
  const order: QueuedOrder = { orderId: await deps.orderIds.next(deadline), createdAt: now, userId, requestKey: randomUUID(), request };
  const result = await acceptQueued(deps.redis, {
    order,
    reservationDeadline: now + deps.config.recordTtlSeconds * 1000,
    maxQueued: deps.config.maxLength,
    recordTtlSeconds: deps.config.recordTtlSeconds,
    idempotency,
  }).catch((err: unknown) => {
    // Sent and unanswered, the step may have run: the buyer learns the number to look up.
    if (isRedisOutcomeUnknown(err)) {
      throw new CommitOutcomeUnknown({ id: order.orderId, createdAt: new Date(now) },
        'Redis did not answer while the order was queued: it may have been accepted');
    }
    throw err;
  });
  if (result.accepted) return { accepted: true, order };
  // Not accepted: the id was never shown to anyone, so the next order takes it.
  deps.orderIds.giveBack(order.orderId);
  return result;
}
