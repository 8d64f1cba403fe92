import { Hono } from 'hono';
import type { Redis } from 'ioredis';
import type { Config } from './config.ts';
import type { Sql } from './connections.ts';
import { AppError, errorBody, toAppError } from './errors.ts';
import { healthRoutes } from './routes/health.ts';
import { orderRoutes } from './routes/orders.ts';
import { productRoutes } from './routes/products.ts';

export interface AppDeps {
  sql: Sql;
  redis: Redis;
  config: Pick<Config, 'retry' | 'hashidsSalt' | 'bodyLimitBytes'>;
  /** Called with failures that reach the client as 500, which are bugs. */
  onInternalError?: (err: unknown) => void;
}

export type AppEnv = { Variables: { userId: number } };

export function createApp(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.route('/orders', orderRoutes(deps));
  app.route('/products', productRoutes(deps));
  app.route('/health', healthRoutes(deps));

  app.notFound((c) => c.json(errorBody(new AppError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`)), 404));
  app.onError((err, c) => {
    const appError = toAppError(err);
    if (appError.status >= 500 && appError.code === 'INTERNAL') (deps.onInternalError ?? console.error)(err);
    if (appError.retryAfter !== undefined) c.header('Retry-After', String(appError.retryAfter));
    return c.json(errorBody(appError), appError.status as 400);
  });
  return app;
}
