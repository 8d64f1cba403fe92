import { z } from 'zod';

// The only module that reads process.env. Everything else receives a Config.

const envSchema = z.object({
  DATABASE_URL: z.string().default('postgres://postgres@127.0.0.1:5432/orders'),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  REDIS_KEY_PREFIX: z.string().default(''),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  // Bounds the number of concurrent transactions: the main lever on lock waits and 40001 rates.
  DB_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(16),
  RETRY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(20),
  RETRY_BASE_DELAY_MS: z.coerce.number().min(0).max(10_000).default(5),
  RETRY_MAX_DELAY_MS: z.coerce.number().min(0).max(60_000).default(300),
  HASHIDS_SALT: z.string().default('order-placement-postgres'),
  BODY_LIMIT_BYTES: z.coerce.number().int().min(256).default(16 * 1024),
});

export interface Config {
  databaseUrl: string;
  redisUrl: string;
  /** Prepended to every Redis key, so that test and bench runs never touch each other's keys. */
  redisKeyPrefix: string;
  port: number;
  poolSize: number;
  retry: { maxAttempts: number; baseDelayMs: number; maxDelayMs: number };
  hashidsSalt: string;
  bodyLimitBytes: number;
}

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    port: e.PORT,
    poolSize: e.DB_POOL_SIZE,
    retry: { maxAttempts: e.RETRY_MAX_ATTEMPTS, baseDelayMs: e.RETRY_BASE_DELAY_MS, maxDelayMs: e.RETRY_MAX_DELAY_MS },
    hashidsSalt: e.HASHIDS_SALT,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
  };
}

/**
 * The service URLs the environment sets explicitly (undefined when unset), for tools that find
 * or start services themselves when none is given (the bench).
 */
export function explicitServiceUrls(env: NodeJS.ProcessEnv = process.env): { databaseUrl?: string; redisUrl?: string } {
  return { databaseUrl: env.DATABASE_URL || undefined, redisUrl: env.REDIS_URL || undefined };
}
