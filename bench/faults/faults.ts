import { setTimeout as sleep } from 'node:timers/promises';
import type { Sql } from '../../src/connections.ts';
import type { OwnPostgres } from '../../servers/own-postgres.ts';
import type { OwnRedis } from '../../servers/own-redis.ts';
import type { FaultSpan } from './outcomes.ts';

// The faults the service must survive under load. Each one is injected while the clients keep
// ordering, and says when it began and when its cause was gone, so that the clients' records can
// be read against that span. Whatever it stops it starts again, even when something throws.

export const FAULT_NAMES = ['redis-restart', 'redis-restart-empty', 'redis-kill', 'postgres-restart', 'pooler-restart', 'service-kill', 'row-lock-10s'] as const;
export type FaultName = typeof FAULT_NAMES[number];

/** The product the lock fault holds; the load buys products 1..10, so some orders need it and most do not. */
export const LOCKED_PRODUCT = 1;

export interface FaultContext {
  postgres: OwnPostgres;
  redis: OwnRedis;
  /** The PgBouncer between the service and PostgreSQL, for the faults that run through one; null otherwise. */
  pooler: { stop(): Promise<void>; start(): Promise<void> } | null;
  /** A connection of the bench's own (no service timeouts), for the lock. */
  admin: Sql;
  /** SIGKILL the service with its workers and start it again on the same port; resolves once it listens. */
  restartService(): Promise<void>;
  /** What an operator does after losing Redis's data: save the seeded sessions again. */
  resaveSessions(): Promise<void>;
  /** How long Redis and PostgreSQL stay down; how long the row lock is held. */
  outageMs: number;
  lockHoldMs: number;
  note(line: string): void;
}

export interface Fault {
  name: FaultName;
  describe(c: Pick<FaultContext, 'outageMs' | 'lockHoldMs'>): string;
  /** Orders the fault can refuse: the recovery is their first success afterwards. */
  affects(products: number[]): boolean;
  /**
   * The service dies mid-request: requests may go unanswered and their orders commit without a 201.
   * Under any other fault the service must answer every request, and every order must get its 201.
   */
  cutsRequests: boolean;
  /** The service reaches PostgreSQL through a transaction-pooling PgBouncer of the bench's own (DATABASE_POOLER=transaction). */
  throughPooler?: boolean;
  inject(c: FaultContext): Promise<FaultSpan>;
}

const every = () => true;
const seconds = (ms: number) => `${+(ms / 1000).toFixed(1)} s`;

/** Stops a server, keeps it down for the outage and starts it again, even when something throws. */
async function outage(c: FaultContext, name: string, server: { stop(): Promise<void>; start(): Promise<void> },
  stopped = `${name} stopped`): Promise<FaultSpan> {
  const start = Date.now();
  try {
    await server.stop();
    c.note(stopped);
    await sleep(c.outageMs);
  } finally {
    await server.start();
  }
  c.note(`${name} started again`);
  return { start, end: Date.now() };
}

async function restartRedis(c: FaultContext, keepData: boolean): Promise<FaultSpan> {
  const { start } = await outage(c, 'Redis', { stop: () => c.redis.stop({ keepData }), start: () => c.redis.start() },
    `Redis stopped (${keepData ? 'data saved' : 'data dropped'})`);
  if (!keepData) {
    await c.resaveSessions();
    c.note('sessions saved again');
  }
  return { start, end: Date.now() };
}

export const FAULTS: Record<FaultName, Fault> = {
  'redis-restart': {
    name: 'redis-restart',
    describe: (c) => `Redis shut down with SAVE, down ${seconds(c.outageMs)}, started again with its data`,
    affects: every,
    cutsRequests: false,
    inject: (c) => restartRedis(c, true),
  },
  'redis-restart-empty': {
    name: 'redis-restart-empty',
    describe: (c) => `Redis shut down with NOSAVE, down ${seconds(c.outageMs)}, started empty; the sessions saved again ` +
      '(mirrors are the service\'s to restore)',
    affects: every,
    cutsRequests: false,
    inject: (c) => restartRedis(c, false),
  },
  'redis-kill': {
    name: 'redis-kill',
    describe: (c) => `Redis killed with SIGKILL (a crash), down ${seconds(c.outageMs)}, started again from its append-only file ` +
      '(synced on every write)',
    affects: every,
    cutsRequests: false,
    inject: (c) => outage(c, 'Redis', { stop: () => c.redis.kill(), start: () => c.redis.start() }, 'Redis killed'),
  },
  'postgres-restart': {
    name: 'postgres-restart',
    describe: (c) => `PostgreSQL fast shutdown (sessions terminated), down ${seconds(c.outageMs)}, started again`,
    affects: every,
    cutsRequests: false,
    inject: (c) => outage(c, 'PostgreSQL', c.postgres),
  },
  'pooler-restart': {
    name: 'pooler-restart',
    describe: (c) => `the service runs through a PgBouncer (transaction pooling); PgBouncer stopped (every connection cut), ` +
      `down ${seconds(c.outageMs)}, started again on the same port`,
    affects: every,
    cutsRequests: false,
    throughPooler: true,
    async inject(c) {
      if (!c.pooler) throw new Error('pooler-restart needs the service behind a pooler');
      return outage(c, 'PgBouncer', c.pooler);
    },
  },
  'service-kill': {
    name: 'service-kill',
    describe: () => 'the service and its workers SIGKILLed mid-load, then started again on the same port',
    affects: every,
    cutsRequests: true,
    async inject(c) {
      const start = Date.now();
      await c.restartService();
      c.note('service killed and listening again');
      return { start, end: Date.now() };
    },
  },
  'row-lock-10s': {
    name: 'row-lock-10s',
    describe: (c) => `another session holds SELECT ... FOR UPDATE on product ${LOCKED_PRODUCT} for ${seconds(c.lockHoldMs)}`,
    affects: (products) => products.includes(LOCKED_PRODUCT),
    cutsRequests: false,
    async inject(c) {
      let start = 0;
      await c.admin.begin(async (tx) => {
        await tx`select id from product where id = ${LOCKED_PRODUCT} for update`;
        start = Date.now();
        c.note(`product ${LOCKED_PRODUCT} locked`);
        await sleep(c.lockHoldMs);
      });
      c.note(`product ${LOCKED_PRODUCT} released`);
      return { start, end: Date.now() };
    },
  },
};
