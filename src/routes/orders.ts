import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { AppDeps, AppEnv } from '../app-types.ts';
import { AppError, CommitOutcomeUnknown, errorBody } from '../errors.ts';
import { createOrderNumbers, dateStamp } from '../orders/order-number.ts';
import type { PlacedOrder } from '../orders/place-order.ts';
import { findOrder } from '../orders/queries.ts';
import { orderRequestSchema, type OrderRequest } from '../orders/request.ts';
import { isVariantName, VARIANT_NAMES, type PlaceOrderFn, type VariantName } from '../orders/variants/index.ts';
import { withConnection, type Database } from '../transaction.ts';
import { requireSession } from './auth.ts';

export function orderRoutes({ db, redis, config, variants }: AppDeps & { db: Database; variants: Record<VariantName, PlaceOrderFn> }) {
  const orderNumbers = createOrderNumbers(config.hashidsSalt);
  const app = new Hono<AppEnv>();

  app.use('*', requireSession(redis));

  app.post('/:variant',
    bodyLimit({
      maxSize: config.bodyLimitBytes,
      // The body is left unread, so the connection cannot carry another request: say so, or a
      // kept-alive client sends its next request on a socket the server is about to drop.
      onError: (c) => c.json(errorBody(new AppError('PAYLOAD_TOO_LARGE', `the body exceeds ${config.bodyLimitBytes} bytes`)),
        413, { Connection: 'close' }),
    }),
    async (c) => {
      const variant = c.req.param('variant');
      if (!isVariantName(variant)) {
        throw new AppError('UNKNOWN_VARIANT', `no variant "${variant}"`, { variants: VARIANT_NAMES });
      }
      const request = parseOrderRequest(await c.req.text());
      const order = await variants[variant](c.get('userId'), request, { deadline: c.get('deadline') })
        .catch((err: unknown) => { throw withOrderNo(err); });
      return c.json({
        orderNo: orderNumbers.format(order.id, order.createdAt),
        totalAmount: order.totalAmount,
        pointsUsed: order.pointsUsed,
        status: 'pending_payment',
      }, 201);
    });

  app.get('/:orderNo', async (c) => {
    const orderNo = c.req.param('orderNo');
    const parsed = orderNumbers.parse(orderNo);
    const found = parsed && await withConnection(db, () => findOrder(db.sql, parsed.id, c.get('userId')), c.get('deadline'));
    // Someone else's order is answered exactly like a missing one, so numbers cannot be probed.
    if (!found || dateStamp(found.order.createdAt) !== parsed.date) {
      throw new AppError('NOT_FOUND', `no order ${orderNo}`);
    }
    const { order, items } = found;
    return c.json({
      orderNo,
      status: order.status,
      totalAmount: order.totalAmount,
      couponId: order.couponId,
      pointsUsed: order.pointsUsed,
      createdAt: order.createdAt.toISOString(),
      items,
    });
  });

  /** The buyer of an order whose commit went unanswered learns its number, to look it up. */
  function withOrderNo(err: unknown) {
    if (!(err instanceof CommitOutcomeUnknown)) return err;
    const order = err.result as PlacedOrder;
    const orderNo = orderNumbers.format(order.id, order.createdAt);
    return new AppError(err.code, `${err.message}: GET /orders/${orderNo} tells`, { orderNo }, err.retryAfter);
  }

  return app;
}

function parseOrderRequest(body: string): OrderRequest {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new AppError('MALFORMED_JSON', 'the body is not valid JSON');
  }
  const result = orderRequestSchema.safeParse(json);
  if (!result.success) {
    throw new AppError('VALIDATION_FAILED', 'the order does not match the schema', {
      issues: result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return result.data;
}
