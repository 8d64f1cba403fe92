import { createRoute } from '@hono/zod-openapi';
import type { MiddlewareHandler, TypedResponse } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-types.ts';
import type { ErrorCode } from '../errors.ts';
import { money, orderRequestSchema } from '../orders/request.ts';
import { ORDER_ROUTE_VARIANTS } from '../orders/variants/index.ts';
import { DATABASE_FAILURES, errorResponses } from './openapi-errors.ts';

// The order routes as the API description states them: what they take, what they answer, and
// every error code each can answer. The handlers are in orders.ts.

const bearer = [{ bearer: [] }];

const orderNoParam = z.object({
  orderNo: z.string().meta({ description: 'As POST /orders/{variant} answered it', example: '20261124Ao6ZoJ' }),
});

const placedSchema = z.object({
  orderNo: z.string().meta({ example: '20261124Ao6ZoJ' }),
  totalAmount: money,
  pointsUsed: z.number().int(),
  status: z.literal('pending_payment'),
}).meta({ id: 'PlacedOrder' });

export type PlacedAnswer = TypedResponse<z.infer<typeof placedSchema>, 201, 'json'>;

const acceptedSchema = z.object({
  orderNo: z.string().meta({ example: '20261124Ao6ZoJ' }),
  status: z.literal('queued'),
}).meta({ id: 'QueuedOrder' });

const errorSchema = z.object({ code: z.string(), message: z.string() }).catchall(z.unknown());

const orderSchema = z.object({
  orderNo: z.string(),
  status: z.enum(['queued', 'rejected', 'pending_payment', 'paid', 'cancelled', 'expired']).meta({
    description: '`queued`: accepted by the queued variant, not written yet (amounts and lines as submitted); ' +
      '`rejected`: the queued order was refused when it was written (`rejection` says why)',
  }),
  totalAmount: money,
  couponId: z.number().int().nullable(),
  pointsUsed: z.number().int(),
  createdAt: z.iso.datetime(),
  paidAt: z.iso.datetime().nullable(),
  cancelledAt: z.iso.datetime().nullable(),
  expiredAt: z.iso.datetime().nullable(),
  items: z.array(z.object({
    productId: z.number().int(),
    snapshotId: z.number().int(),
    name: z.string().nullable().meta({ description: 'The name as it was when the order was placed (null while it is queued or once rejected)' }),
    count: z.number().int(),
    unitPrice: money,
  })),
  rejection: errorSchema.optional().meta({ description: 'A rejected queued order: the refusal, as a synchronous variant answers it' }),
}).meta({ id: 'Order' });

const orderAnswer = (description: string) => ({ description, content: { 'application/json': { schema: orderSchema } } });

/** Every code POST /orders/{variant} can answer. */
export const PLACE_ORDER_ERRORS: ErrorCode[] = [
  'MALFORMED_JSON', 'UNAUTHORIZED', 'RATE_LIMITED', 'UNKNOWN_VARIANT', 'PAYLOAD_TOO_LARGE',
  'VALIDATION_FAILED', 'UNKNOWN_PRODUCT', 'IDEMPOTENCY_KEY_REUSED',
  'OUT_OF_STOCK', 'PRICE_CHANGED', 'SNAPSHOT_CHANGED', 'OFF_SHELF', 'COUPON_INVALID', 'POINTS_INSUFFICIENT',
  'TOTAL_MISMATCH', 'SERIALIZATION_FAILURE', 'IDEMPOTENCY_KEY_IN_USE', 'CONFLICT',
  ...DATABASE_FAILURES, 'OUTCOME_UNKNOWN',
];

const LIFECYCLE_ERRORS: ErrorCode[] = ['UNAUTHORIZED', 'NOT_FOUND', 'ORDER_NOT_PENDING', 'SERIALIZATION_FAILURE', ...DATABASE_FAILURES];

export function placeOrderRoute(middleware: MiddlewareHandler<AppEnv>[]) {
  return createRoute({
    method: 'post',
    path: '/{variant}',
    summary: 'Place an order',
    description: 'The variants differ only in concurrency control; each places the same order. ' +
      'The server recomputes the total and refuses the order (409 `TOTAL_MISMATCH`, with its own total ' +
      'as `expected`) when it differs from `totalAmount`. The body is read as JSON whatever its `Content-Type`. ' +
      '`queued` accepts the order (202) after taking its units in Redis and writes it moments later: ' +
      'GET the `Location` to learn whether it was placed or rejected.',
    security: bearer,
    // Runs before the validators: the body limit refuses a body too large before it is read.
    middleware,
    request: {
      params: z.object({
        variant: z.enum(ORDER_ROUTE_VARIANTS).meta({ description: 'The concurrency control to place it with', example: 'row-lock' }),
      }),
      headers: z.object({
        'Idempotency-Key': z.string().optional().meta({
          description: 'Optional, 1 to 255 visible ASCII characters (no `"` or `\\`), quoted or not. A repeat with the ' +
            'same key gets the first outcome back (marked `Idempotent-Replayed: true`) and places nothing.',
          example: 'order-2026-11-24-0001',
        }),
      }),
      body: { required: true, content: { 'application/json': { schema: orderRequestSchema } } },
    },
    responses: {
      201: { description: 'Placed, awaiting payment', content: { 'application/json': { schema: placedSchema } } },
      202: {
        description: 'queued: accepted, its units taken; written or rejected moments later',
        headers: { Location: { schema: { type: 'string' }, description: 'GET it for the order\'s status' } },
        content: { 'application/json': { schema: acceptedSchema } },
      },
      ...errorResponses(PLACE_ORDER_ERRORS),
    },
  });
}

export const getOrderRoute = createRoute({
  method: 'get',
  path: '/{orderNo}',
  summary: 'One of the caller\'s orders',
  description: 'With its lines. Anybody else\'s order is answered like a missing one (404).',
  security: bearer,
  request: { params: orderNoParam },
  responses: {
    200: orderAnswer('The order'),
    ...errorResponses(['UNAUTHORIZED', 'NOT_FOUND', ...DATABASE_FAILURES]),
  },
});

export const payOrderRoute = createRoute({
  method: 'post',
  path: '/{orderNo}/pay',
  summary: 'Record the payment of an order',
  description: '`pending_payment` -> `paid`; again on a paid order: the same answer. One past its payment deadline is expired instead (409).',
  security: bearer,
  request: { params: orderNoParam },
  responses: { 200: orderAnswer('The order, paid'), ...errorResponses(LIFECYCLE_ERRORS) },
});

export const cancelOrderRoute = createRoute({
  method: 'post',
  path: '/{orderNo}/cancel',
  summary: 'Cancel an unpaid order',
  description: '`pending_payment` -> `cancelled`, giving back its units, coupon and points; again: the same answer.',
  security: bearer,
  request: { params: orderNoParam },
  responses: { 200: orderAnswer('The order, cancelled'), ...errorResponses(LIFECYCLE_ERRORS) },
});
