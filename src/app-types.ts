import type { Redis } from 'ioredis';
import type { Config } from './config.ts';
import type { Sql } from './connections.ts';
import type { AppError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

// What the app is built from, in a module of its own so that routes can name it without
// importing the app that imports them.

export interface AppDeps {
  sql: Sql;
  redis: Redis;
  /** `admission` absent: no admission control (as with both limits 0); `queue` absent: DEFAULT_QUEUE. */
  config: Pick<Config, 'retry' | 'hashidsSalt' | 'bodyLimitBytes' | 'poolSize' | 'requestTimeoutMs' | 'reservations' | 'lifecycle' | 'orderBatch' | 'sessionCacheMs' | 'metrics'> &
    Partial<Pick<Config, 'admission' | 'queue'>>;
  /** A connection of /health's own, so that it answers while the pool is exhausted (defaults to `sql`). */
  healthSql?: Sql;
  /** True once the process is shutting down: /health answers 503 and connections are not kept alive. */
  isDraining?: () => boolean;
  /**
   * Where request lines and failures go. Without one, only failures that reach a client as 500
   * (bugs) are written, to stdout: what an app embedded elsewhere (a test) should still show.
   */
  logger?: Logger;
  /** The registry GET /metrics serves (with config.metrics on); without one the app makes its own. */
  metrics?: Metrics;
}

export type AppEnv = {
  Variables: {
    userId: number;
    /** Epoch ms by which the request's transaction must have started (REQUEST_TIMEOUT_MS after arrival). */
    deadline: number;
    /** X-Request-Id: the client's when sane, else generated; on every log line of the request. */
    requestId: string;
    /** POST /orders/:variant naming a known variant: the metrics' and log's variant label. */
    variant: string;
    /** What answered the request with an error (set by the app's onError). */
    failure: { error: AppError; cause: unknown };
  };
};
