import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AppDeps, AppEnv } from '../app-types.ts';
import { DEFAULT_QUEUE } from '../config.ts';
import { AppError, CommitOutcomeUnknown, errorBody, toAppError } from '../errors.ts';
import {
  findStoredOutcome, fingerprintOf, isFinalRefusal, keyReused, parseIdempotencyKey, storeRefusal,
  type IdempotencyClaim, type StoredOutcome,
} from '../orders/idempotency.ts';
import { cancelOrder, payOrder, type LifecycleDeps, type Log, type OrderStatus } from '../orders/lifecycle.ts';
import { createOrderNumbers, dateStamp } from '../orders/order-number.ts';
import type { PlacedOrder } from '../orders/place-order.ts';
import { findOrder } from '../orders/queries.ts';
import { ORDER_ROUTE_VARIANTS, QUEUED, type PlaceOrderFn, type VariantName } from '../orders/variants/index.ts';
import { acceptOrder } from '../orders/queue/accept-order.ts';
import { orderIdBlocks } from '../orders/queue/order-ids.ts';
import { readQueuedRecord, type QueuedRecord } from '../orders/queue/queue-store.ts';
import { withConnection, type Database } from '../transaction.ts';
import { admissionControl } from './admission.ts';
import { requireSession } from './auth.ts';
import { bodyLimit } from './body-limit.ts';
import { readBodyAsJson } from './json-body.ts';
import { openApiApp, refuseInvalid, validationFailed } from './openapi-app.ts';
import { cancelOrderRoute, getOrderRoute, payOrderRoute, placeOrderRoute, type PlacedAnswer } from './orders-api.ts';

export function orderRoutes({ db, redis, config, variants, log }:
  AppDeps & { db: Database; variants: Record<VariantName, PlaceOrderFn>; log: Log }) {
  const orderNumbers = createOrderNumbers(config.hashidsSalt);
  const lifecycle: LifecycleDeps = { db, redis, paymentTtlSeconds: config.lifecycle.paymentTtlSeconds, log };
  const queue = { db, redis, orderIds: orderIdBlocks(db), config: config.queue ?? DEFAULT_QUEUE };
  const app = openApiApp();

  app.use('*', requireSession(redis, config.sessionCacheMs));

  const admission = admissionControl(redis, config.admission);
  const placeOrder = placeOrderRoute([
    // Before the body is read: a refused order costs one Redis round trip.
    ...(admission ? [admission] : []),
    bodyLimit({
      maxSize: config.bodyLimitBytes,
      // The body is left unread, so the connection cannot carry another request: say so, or a
      // kept-alive client sends its next request on a socket the server is about to drop.
      onError: (c) => {
        const error = new AppError('PAYLOAD_TOO_LARGE', `the body exceeds ${config.bodyLimitBytes} bytes`);
        c.set('failure', { error, cause: error });
        return c.json(errorBody(error), 413, { Connection: 'close' });
      },
    }),
    readBodyAsJson,
  ]);

  app.openapi(placeOrder, async (c) => {
      const { variant } = c.req.valid('param');
      const key = parseIdempotencyKey(c.req.valid('header')['Idempotency-Key']);
      const request = c.req.valid('json');
      const userId = c.get('userId');
      const deadline = c.get('deadline');
      const idempotency = key === undefined ? undefined
        : { key, fingerprint: fingerprintOf(variant, request), ttlSeconds: config.lifecycle.idempotencyKeyTtlSeconds };

      if (variant === QUEUED) {
        // Its Idempotency-Key lives in Redis with the queue: no database read before the 202.
        const accepted = await acceptOrder(queue, userId, request, deadline, idempotency).catch((err: unknown) => {
          throw withOrderNo(err);
        });
        const orderNo = orderNumbers.format(accepted.orderId, accepted.createdAt);
        c.header('Location', `/orders/${orderNo}`);
        if (accepted.replayed) c.header('Idempotent-Replayed', 'true');
        return c.json({ orderNo, status: 'queued' as const }, 202);
      }

      // A repeat of a finished submission is answered from its stored outcome, before any work
      // (for the redis variant: before any Redis take).
      const stored = idempotency && await withConnection(db, () => findStoredOutcome(db.sql, userId, idempotency.key), deadline);
      if (stored) return replay(c, stored, idempotency!);

      let order: PlacedOrder;
      try {
        order = await variants[variant](userId, request, { deadline, idempotency });
      } catch (err) {
        if (!idempotency) throw withOrderNo(err);
        // A submission with the same key committed while this one ran (its key refused this
        // order's, or made it a serialization failure): its outcome is the answer.
        const first = await withConnection(db, () => findStoredOutcome(db.sql, userId, idempotency.key), deadline)
          .catch(() => undefined); // the database is failing: the original error says so
        if (first) return replay(c, first, idempotency);
        const refusal = toAppError(err);
        if (isFinalRefusal(refusal)) {
          await withConnection(db, () => storeRefusal(db.sql, userId, idempotency, refusal), deadline)
            .catch((storeErr: unknown) => log(`Idempotency-Key outcome not stored; a repeat will be processed anew`, storeErr));
        }
        throw withOrderNo(err);
      }
      return c.json({
        orderNo: orderNumbers.format(order.id, order.createdAt),
        totalAmount: order.totalAmount,
        pointsUsed: order.pointsUsed,
        status: 'pending_payment' as const,
      }, 201);
    }, (result, c) => {
      if (result.success) return;
      // The variant is an enum for the API description; a name outside it is a missing resource.
      if (result.target === 'param') {
        throw new AppError('UNKNOWN_VARIANT', `no variant "${c.req.param('variant')}"`, { variants: ORDER_ROUTE_VARIANTS });
      }
      if (result.target === 'json') throw validationFailed('the order', result.error);
      refuseInvalid(result, c);
    });

  app.openapi(getOrderRoute, async (c) =>
    c.json(await orderView(c.req.valid('param').orderNo, c.get('userId'), c.get('deadline')), 200));

  app.openapi(payOrderRoute, async (c) => {
    const { orderNo, userId, deadline } = lifecycleTarget(c);
    const { id } = await ownWrittenOrder(orderNo, userId, deadline);
    await payOrder(lifecycle, id, userId, deadline);
    return c.json(await orderView(orderNo, userId, deadline), 200);
  });

  app.openapi(cancelOrderRoute, async (c) => {
    const { orderNo, userId, deadline } = lifecycleTarget(c);
    const { id } = await ownWrittenOrder(orderNo, userId, deadline);
    await cancelOrder(lifecycle, id, userId, deadline);
    return c.json(await orderView(orderNo, userId, deadline), 200);
  });

  function lifecycleTarget(c: Context<AppEnv>) {
    return { orderNo: c.req.param('orderNo')!, userId: c.get('userId'), deadline: c.get('deadline') };
  }

  /**
   * The order a number names, if it is this user's. Someone else's order is answered exactly like
   * a missing one, so numbers cannot be probed. A queued order not written yet (or rejected) has
   * no row: its status record answers. The record is read first: read after the row, a record
   * the consumer finished between the two reads would leave neither. The row, when there is one,
   * is the truth whatever the record says.
   */
  async function ownOrder(orderNo: string, userId: number, deadline: number) {
    const parsed = orderNumbers.parse(orderNo);
    if (!parsed) throw new AppError('NOT_FOUND', `no order ${orderNo}`);
    const record = await readQueuedRecord(redis, parsed.id);
    const queued = record && record.userId === userId && dateStamp(new Date(record.createdAt)) === parsed.date
      && record.status !== 'placed' ? record : undefined;
    const found = await withConnection(db, () => findOrder(db.sql, parsed.id, userId), deadline);
    if (found && dateStamp(found.order.createdAt) === parsed.date) return { id: parsed.id, ...found, queued: undefined };
    if (queued) return { id: parsed.id, order: undefined, items: undefined, queued };
    throw new AppError('NOT_FOUND', `no order ${orderNo}`);
  }

  /** Pay and cancel: only a written order can be paid or cancelled. */
  async function ownWrittenOrder(orderNo: string, userId: number, deadline: number) {
    const found = await ownOrder(orderNo, userId, deadline);
    if (found.queued) {
      const { status } = found.queued;
      throw new AppError('ORDER_NOT_PENDING', status === 'queued'
        ? 'the order is queued: it can be paid or cancelled once it is placed'
        : 'the order was rejected', { status }, status === 'queued' ? 1 : undefined);
    }
    return found;
  }

  async function orderView(orderNo: string, userId: number, deadline: number) {
    const { order, items, queued } = await ownOrder(orderNo, userId, deadline);
    if (queued) return queuedView(orderNo, queued);
    return {
      orderNo,
      status: order.status as OrderStatus,
      totalAmount: order.totalAmount,
      couponId: order.couponId,
      pointsUsed: order.pointsUsed,
      createdAt: order.createdAt.toISOString(),
      paidAt: order.paidAt?.toISOString() ?? null,
      cancelledAt: order.cancelledAt?.toISOString() ?? null,
      expiredAt: order.expiredAt?.toISOString() ?? null,
      items,
    };
  }

  /** A queued order without its row: what was submitted, and the rejection if it was rejected. */
  function queuedView(orderNo: string, { status, createdAt, request, error }: QueuedRecord) {
    return {
      orderNo,
      status: status as 'queued' | 'rejected',
      totalAmount: request.totalAmount,
      couponId: request.couponId ?? null,
      pointsUsed: 0,
      createdAt: new Date(createdAt).toISOString(),
      paidAt: null,
      cancelledAt: null,
      expiredAt: null,
      items: request.items.map((i) => ({ productId: i.productId, snapshotId: i.snapshotId, name: null, count: i.count, unitPrice: i.price })),
      ...(error ? { rejection: error } : {}),
    };
  }

  /** The first submission's outcome, again: same status, same body, marked as a replay. */
  function replay(c: Context<AppEnv>, stored: StoredOutcome, claim: IdempotencyClaim): PlacedAnswer {
    if (stored.fingerprint !== claim.fingerprint) throw keyReused();
    const body = stored.order
      ? { orderNo: orderNumbers.format(stored.order.id, stored.order.createdAt), ...stored.response }
      : stored.response;
    c.header('Idempotent-Replayed', 'true');
    // Typed as the 201 the route returns; a replay repeats whichever documented answer the first
    // submission got (a 201 or a refusal), from the database.
    return c.json(body, stored.statusCode as ContentfulStatusCode) as unknown as PlacedAnswer;
  }

  /** The buyer of an order whose commit went unanswered learns its number, to look it up. */
  function withOrderNo(err: unknown) {
    if (!(err instanceof CommitOutcomeUnknown)) return err;
    const order = err.result as PlacedOrder;
    const orderNo = orderNumbers.format(order.id, order.createdAt);
    return new AppError(err.code, `${err.message}: GET /orders/${orderNo} tells`, { orderNo }, err.retryAfter);
  }

  return app;
}
