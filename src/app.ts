import type { Context } from 'hono';
import { routePath } from 'hono/route';
import type { AppDeps, AppEnv } from './app-types.ts';
import { AppError, errorBody, toAppError } from './errors.ts';
import { createLogger, logFunction, logRequest, requestIdFrom, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createVariants, isOrderRouteVariant } from './orders/variants/index.ts';
import { healthRoutes } from './routes/health.ts';
import { mountApiDocs } from './routes/openapi.ts';
import { openApiApp } from './routes/openapi-app.ts';
import { orderRoutes } from './routes/orders.ts';
import { productRoutes } from './routes/products.ts';
import { boundedPool } from './transaction.ts';

export type { AppDeps, AppEnv } from './app-types.ts';

export function createApp(deps: AppDeps) {
  const logger = deps.logger ?? createLogger({ level: 'error' });
  // METRICS=off: no /metrics, and neither requests nor variants count anything.
  const metrics = deps.config.metrics ? deps.metrics ?? createMetrics() : undefined;
  const db = boundedPool(deps.sql, deps.config);
  metrics?.observePool(() => db.slots.usage);
  const variants = createVariants({ db, redis: deps.redis, config: deps.config, metrics, log: logFunction(logger) });
  // An OpenAPIHono, so that the routers' route descriptions merge into one document.
  const app = openApiApp();

  app.use('*', async (c, next) => {
    const started = performance.now();
    const requestId = requestIdFrom(c.req.header('X-Request-Id'));
    c.set('requestId', requestId);
    c.set('deadline', Date.now() + deps.config.requestTimeoutMs);
    // Set before the answer exists, so that every answer made on this context (errors and 404s
    // included) carries it: set afterwards, it would turn the answer into a full Response object
    // again, a measurable share of the service's CPU per order.
    c.header('X-Request-Id', requestId);
    await next();
    // While draining, every answer closes its connection, so kept-alive clients move elsewhere
    // (checked after the answer: a request in flight when the drain began gets it too).
    if (deps.isDraining?.()) c.header('Connection', 'close');
    observe(c, performance.now() - started, logger, metrics);
  });
  // Only a POST naming a known variant gets a variant label: made-up names in the path must not
  // grow the metrics without bound.
  app.use('/orders/:variant', async (c, next) => {
    const variant = c.req.param('variant');
    if (c.req.method === 'POST' && isOrderRouteVariant(variant)) c.set('variant', variant);
    await next();
  });
  if (metrics) {
    app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'Content-Type': metrics.contentType }));
  }
  app.route('/orders', orderRoutes({ ...deps, db, variants, log: logFunction(logger) }));
  app.route('/products', productRoutes(db));
  app.route('/health', healthRoutes(deps));
  mountApiDocs(app);

  app.notFound((c) => c.json(errorBody(new AppError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`)), 404));
  app.onError((err, c) => {
    // @hono/node-server's bindings: the Node request, whose stream holds the error a hang-up left.
    const incoming = (c.env as { incoming?: { errored?: unknown; complete?: boolean } } | undefined)?.incoming;
    const appError = toAppError(err, { requestAbortedWith: incoming?.complete ? undefined : incoming?.errored ?? undefined });
    c.set('failure', { error: appError, cause: err });
    if (appError.retryAfter !== undefined) c.header('Retry-After', String(appError.retryAfter));
    return c.json(errorBody(appError), appError.status);
  });
  return app;
}

/** Counts and logs one answered request. */
function observe(c: Context<AppEnv>, durationMs: number, logger: Logger, metrics: Metrics | undefined) {
  const status = c.res.status;
  const variant = c.get('variant');
  const failure = c.get('failure');
  // An answer no handler failed on (a 404 from notFound) carries no AppError: its status stands for the code.
  const code = failure?.error.code ?? (status >= 400 ? String(status) : undefined);
  if (metrics) {
    const labels = { method: c.req.method, route: routePath(c, -1), variant: variant ?? '', status: String(status) };
    metrics.requestDuration.observe(labels, durationMs / 1000);
    if (variant) metrics.orders.inc({ variant, code: code ?? String(status) });
  }
  logRequest(logger, {
    requestId: c.get('requestId'), method: c.req.method, path: c.req.path, variant, status, code, durationMs,
    err: status === 500 ? failure?.cause : undefined,
  });
}
