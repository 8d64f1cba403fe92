import { Hono } from 'hono';
import type { AppDeps, AppEnv } from './app-types.ts';
import { AppError, errorBody, toAppError } from './errors.ts';
import { createVariants } from './orders/variants/index.ts';
import { healthRoutes } from './routes/health.ts';
import { orderRoutes } from './routes/orders.ts';
import { productRoutes } from './routes/products.ts';
import { boundedPool } from './transaction.ts';

export type { AppDeps, AppEnv } from './app-types.ts';

export function createApp(deps: AppDeps) {
  const db = boundedPool(deps.sql, deps.config);
  const variants = createVariants({ db, redis: deps.redis, config: deps.config });
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    c.set('deadline', Date.now() + deps.config.requestTimeoutMs);
    await next();
    // While draining, every answer closes its connection, so kept-alive clients move elsewhere
    // (errors and 404s too: they are answered before this runs).
    if (deps.isDraining?.()) c.header('Connection', 'close');
  });
  app.route('/orders', orderRoutes({ ...deps, db, variants }));
  app.route('/products', productRoutes(db));
  app.route('/health', healthRoutes(deps));

  app.notFound((c) => c.json(errorBody(new AppError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`)), 404));
  app.onError((err, c) => {
    const appError = toAppError(err);
    if (appError.code === 'INTERNAL') (deps.onInternalError ?? console.error)(err);
    if (appError.retryAfter !== undefined) c.header('Retry-After', String(appError.retryAfter));
    return c.json(errorBody(appError), appError.status);
  });
  return app;
}
