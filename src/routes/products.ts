import { Hono } from 'hono';
import type { AppDeps, AppEnv } from '../app.ts';
import { listProducts } from '../orders/queries.ts';

export function productRoutes({ sql }: AppDeps) {
  return new Hono<AppEnv>().get('/', async (c) => c.json(await listProducts(sql)));
}
