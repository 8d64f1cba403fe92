import { Hono } from 'hono';
import type { AppEnv } from '../app-types.ts';
import { listProducts } from '../orders/queries.ts';
import { withConnection, type Database } from '../transaction.ts';

export function productRoutes(db: Database) {
  return new Hono<AppEnv>().get('/', async (c) =>
    c.json(await withConnection(db, () => listProducts(db.sql), c.get('deadline'))));
}
