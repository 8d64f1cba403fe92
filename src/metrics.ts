import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

// The service's Prometheus metrics, in a registry of their own per app: two apps in one process
// (tests) never share a counter.

export interface PoolUsage {
  busy: number;
  waiting: number;
}

export interface Metrics {
  registry: Registry;
  /** Order requests by variant and outcome: `201` or the error code. */
  orders: Counter<'variant' | 'code'>;
  requestDuration: Histogram<'method' | 'route' | 'variant' | 'status'>;
  /** serializable-retry: attempts that failed with a conflict and were run again. */
  serializableRetries: Counter;
  /** redis: orders the Redis filter refused as sold out, which never reached PostgreSQL. */
  redisRefused: Counter;
  /** Where the pool gauges read from, once the app has built its pool. */
  observePool(usage: () => PoolUsage): void;
  /** The text GET /metrics answers: this registry's, or the whole service's (src/metrics-cluster.ts). */
  render(): Promise<string>;
  contentType: string;
}

// Seconds. Orders take a few milliseconds uncontended, tens to hundreds on hot rows, and up to
// seconds when serializable-retry backs off or a request waits for a pool connection.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * `processMetrics` adds the process's own (CPU, memory, event loop lag, GC): the composition root
 * of a service process asks for them once; apps built in tests leave them out, since each call
 * starts an event-loop monitor of its own for as long as the process lives.
 */
export function createMetrics(options: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  let poolUsage: () => PoolUsage = () => ({ busy: 0, waiting: 0 });
  const metrics: Metrics = {
    registry,
    orders: new Counter({
      name: 'orders_total', help: 'Order requests by variant and outcome (201 or the error code)',
      labelNames: ['variant', 'code'], registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'http_request_duration_seconds', help: 'HTTP request latency by method, route, variant and status',
      labelNames: ['method', 'route', 'variant', 'status'], buckets: LATENCY_BUCKETS, registers: [registry],
    }),
    serializableRetries: new Counter({
      name: 'orders_serializable_retries_total',
      help: 'serializable-retry: transactions run again after a serialization failure or deadlock',
      registers: [registry],
    }),
    redisRefused: new Counter({
      name: 'orders_redis_refused_total', help: 'redis: orders refused as sold out by the Redis filter', registers: [registry],
    }),
    observePool(usage) { poolUsage = usage; },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
  // Read when scraped, so that the order path pays nothing for them. Summed across workers.
  new Gauge({
    name: 'db_pool_connections_busy', help: 'Pool connections held by requests', registers: [registry],
    collect() { this.set(poolUsage().busy); },
  });
  new Gauge({
    name: 'db_pool_requests_waiting', help: 'Requests waiting for a pool connection', registers: [registry],
    collect() { this.set(poolUsage().waiting); },
  });
  return metrics;
}

/** What variants count, so that they need not know about the rest. */
export type VariantCounters = Pick<Metrics, 'serializableRetries' | 'redisRefused'>;
