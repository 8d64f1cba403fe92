import { z } from 'zod';

// The order request as a client sends it. Money travels as decimal strings so that no
// float ever rounds a price; counts are small integers so that no order can overflow.

// Canonical decimals only (no leading zero but in "0.xx"): one amount, one spelling.
export const money = z.string().regex(/^(0|[1-9]\d{0,7})(\.\d{1,2})?$/,
  'a decimal string with at most 8 digits before the point and 2 after, no leading zero, e.g. "9.99"')
  .meta({ id: 'Money', description: 'A decimal amount as a string, at most 2 decimals: "9.99".', example: '9.99' });
const id = z.number().int().positive().max(2_147_483_647);

export const orderItemSchema = z.object({
  productId: id,
  snapshotId: id.meta({ description: 'The product snapshot the buyer saw (GET /products); refused once the product changed.' }),
  count: z.number().int().min(1).max(99),
  price: money.meta({ description: 'The unit price the buyer saw; refused if the product costs otherwise now.' }),
}).meta({ id: 'OrderItem' });

/**
 * An order that the seeded data accepts (`npm run db:reset`): 2 x product 1 at 9.99 and 1 x
 * product 2 at 19.99 make 39.97, and 100 points pay 1.00 of it. The API description shows it.
 */
export const EXAMPLE_ORDER = {
  items: [
    { productId: 1, snapshotId: 1, count: 2, price: '9.99' },
    { productId: 2, snapshotId: 2, count: 1, price: '19.99' },
  ],
  points: 100,
  totalAmount: '38.97',
};

export const orderRequestSchema = z.object({
  items: z.array(orderItemSchema).min(1).max(50)
    .refine((items) => new Set(items.map((i) => i.productId)).size === items.length,
      { message: 'a product may appear at most once per order' }),
  couponId: id.optional().meta({ description: 'One of the buyer\'s coupons, each usable once.' }),
  points: z.number().int().min(0).max(1_000_000_000).optional()
    .meta({ description: 'Points to spend; 100 points pay 1.00.' }),
  totalAmount: money.meta({ description: 'The total the buyer expects to pay; the server recomputes it and refuses another.' }),
}).meta({ id: 'OrderRequest', description: 'An order as the buyer confirmed it.', example: EXAMPLE_ORDER });

export type OrderItem = z.infer<typeof orderItemSchema>;
export type OrderRequest = z.infer<typeof orderRequestSchema>;
