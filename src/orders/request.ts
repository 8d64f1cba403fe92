import { z } from 'zod';

// The order request as a client sends it. Money travels as decimal strings so that no
// float ever rounds a price; counts are small integers so that no order can overflow.

// Canonical decimals only (no leading zero but in "0.xx"): one amount, one spelling.
export const money = z.string().regex(/^(0|[1-9]\d{0,7})(\.\d{1,2})?$/,
  'a decimal string with at most 8 digits before the point and 2 after, no leading zero, e.g. "9.99"');
const id = z.number().int().positive().max(2_147_483_647);

export const orderItemSchema = z.object({
  productId: id,
  snapshotId: id,
  count: z.number().int().min(1).max(99),
  price: money,
});

export const orderRequestSchema = z.object({
  items: z.array(orderItemSchema).min(1).max(50)
    .refine((items) => new Set(items.map((i) => i.productId)).size === items.length,
      { message: 'a product may appear at most once per order' }),
  couponId: id.optional(),
  points: z.number().int().min(0).max(1_000_000_000).optional(),
  totalAmount: money,
});

export type OrderItem = z.infer<typeof orderItemSchema>;
export type OrderRequest = z.infer<typeof orderRequestSchema>;
