import type { Redis } from 'ioredis';
import type { Config } from './config.ts';
import type { Sql } from './connections.ts';

// What the app is built from, in a module of its own so that routes can name it without
// importing the app that imports them.

export interface AppDeps {
  sql: Sql;
  redis: Redis;
  config: Pick<Config, 'retry' | 'hashidsSalt' | 'bodyLimitBytes' | 'poolSize' | 'requestTimeoutMs' | 'reservations'>;
  /** A connection of /health's own, so that it answers while the pool is exhausted (defaults to `sql`). */
  healthSql?: Sql;
  /** True once the process is shutting down: /health answers 503 and connections are not kept alive. */
  isDraining?: () => boolean;
  /** Called with failures that reach the client as 500, which are bugs. */
  onInternalError?: (err: unknown) => void;
}

export type AppEnv = {
  Variables: {
    userId: number;
    /** Epoch ms by which the request's transaction must have started (REQUEST_TIMEOUT_MS after arrival). */
    deadline: number;
  };
};
