import { createRoute } from '@hono/zod-openapi';
import { z } from 'zod';
import { listProducts } from '../orders/queries.ts';
import { money } from '../orders/request.ts';
import { withConnection, type Database } from '../transaction.ts';
import { DATABASE_FAILURES, errorResponses } from './openapi-errors.ts';
import { openApiApp } from './openapi-app.ts';

const productSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  price: money,
  stock: z.number().int(),
  onShelf: z.boolean(),
  snapshotId: z.number().int().meta({ description: 'What an order line names as `snapshotId`.' }),
}).meta({ id: 'Product' });

const listRoute = createRoute({
  method: 'get',
  path: '/',
  summary: 'The catalog',
  description: 'Every product with its price, stock and current snapshot: what an order needs.',
  responses: {
    200: { description: 'The products by id', content: { 'application/json': { schema: z.array(productSchema) } } },
    ...errorResponses(DATABASE_FAILURES),
  },
});

export function productRoutes(db: Database) {
  return openApiApp().openapi(listRoute, async (c) =>
    c.json(await withConnection(db, () => listProducts(db.sql), c.get('deadline')), 200));
}
