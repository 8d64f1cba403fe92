import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/connections.ts';
import { recreateSchema } from '../../src/database.ts';
import type { OrderNumbers } from '../../src/orders/order-number.ts';
import { QUEUED, type OrderRouteVariant } from '../../src/orders/variants/index.ts';
import { readQueuedRecords } from '../../src/orders/queue/queue-store.ts';
import { clearRedisNamespace } from '../../src/redis-namespace.ts';
import { seed, sessionIdOf, type SeedOptions } from '../../src/seed.ts';
import { saveSessions } from '../../src/sessions.ts';
import { audit, type AuditResult } from '../audit.ts';
import { orderStream } from '../bodies.ts';
import { progress } from '../progress.ts';
import { queueDrained } from '../queued.ts';
import { withSql } from '../run.ts';
import { SCENARIOS } from '../scenarios.ts';
import { startService, type ServiceSettings } from '../service-process.ts';
import { freePort, type OwnServices } from '../../servers/services.ts';
import { PGBOUNCER_INSTALL, startOwnPgBouncer, type OwnPgBouncer } from '../../servers/own-pgbouncer.ts';
import { isSuccess, startClients } from './clients.ts';
import { FAULTS, type FaultName } from './faults.ts';
import { waitForMirrors, type MirrorCheck } from './mirrors.ts';
import { checkOrders, whatTheClientSaw, type OrderCheck } from './order-check.ts';
import { judge, verdict } from './judge.ts';
import { outcomeLabel, recoveredAt, summarize, type Outcomes } from './outcomes.ts';
import { watchService, type ServiceLog } from './service-log.ts';

// One fault under one variant: fresh schema and seed, the service started, the clients ordering,
// the fault injected, the load kept on until orders succeed again and a little longer; then the
// mirrors given time to reconcile, the service stopped (so nothing commits behind the audit), and
// the database audited against what the clients were told.

/** The order shape of mixed-100 (1-3 of 10 products, 1-3 units, some coupons and points). */
const LOAD_SHAPE = SCENARIOS['mixed-100'];

export interface Timings {
  /** Load before the fault, and after the recovery. */
  leadMs: number;
  tailMs: number;
  outageMs: number;
  lockHoldMs: number;
  /** Orders must succeed again within this after the fault's end. */
  recoveryBoundMs: number;
  /** How long the redis variant's mirrors may take to equal the database after the load. */
  mirrorWaitMs: number;
  requestTimeoutMs: number;
}

export interface CellSettings {
  services: OwnServices;
  /** The pgbouncer binary, for the faults that run through a pooler. */
  pgbouncer: string | null;
  databaseUrl: string;
  redisKeyPrefix: string;
  poolSize: number;
  workers: number;
  clients: number;
  seed: SeedOptions;
  timings: Timings;
  numbers: OrderNumbers;
  label: string;
  /** Varies the orders from cell to cell. */
  salt: number;
}

export interface FaultCell extends ServiceLog {
  fault: FaultName;
  variant: OrderRouteVariant;
  description: string;
  /** queued: 202s the consumers rejected once drained (by code), and 202s left without an outcome; null otherwise. */
  queued: { rejected: Record<string, number>; withoutOutcome: number; drainSec: number } | null;
  /** The fault's span in seconds from the first request, and how long it lasted. */
  faultAtSec: number;
  faultSec: number;
  requests: number;
  outcomes: Outcomes;
  audit: AuditResult | null;
  /** 201s that do not name exactly one order of that user with its lines. */
  mismatched: OrderCheck['mismatched'];
  /** Orders committed without a 201, with what the client of that user was told meanwhile. */
  unannounced: { orderNo: string; userId: number; clientSaw: string[] }[];
  /** Requests that never got an answer (connection error, timeout): sent when, relative to the fault's start. */
  unanswered: { userId: number; sentSec: number; waitedSec: number; outcome: string }[];
  /** The redis variant only. */
  mirrors: MirrorCheck | null;
  /** Why this cell fails the bench; empty when it passed. */
  failures: string[];
  /** What it found that breaks a contract but loses nothing. */
  warnings: string[];
}

/** Unanswered requests listed, at most. */
const MAX_LISTED = 30;

export async function runFaultCell(faultName: FaultName, variant: OrderRouteVariant, s: CellSettings): Promise<FaultCell> {
  const fault = FAULTS[faultName];
  const t = s.timings;
  const cellStart = Date.now();
  const took = () => `${((Date.now() - cellStart) / 1000).toFixed(0)} s`;
  const bar = progress(s.label, null);
  const redisUrl = s.services.redisUrl;
  const watch = watchService((line) => bar.note(line));

  await withSql(s.databaseUrl, 1, (sql) => recreateSchema(sql));
  await clearRedisNamespace(redisUrl, s.redisKeyPrefix);
  const redis = createRedis({ redisUrl, redisKeyPrefix: s.redisKeyPrefix });
  await redis.connect();
  let pooler: OwnPgBouncer | null = null;
  try {
    if (fault.throughPooler) {
      if (!s.pgbouncer) throw new Error(`no pgbouncer on PATH (${PGBOUNCER_INSTALL})`);
      // Its server connections: one process's pool, shared by every worker, as the bench's scale-out runs it.
      pooler = await startOwnPgBouncer(s.pgbouncer, s.databaseUrl, { poolSize: s.poolSize });
    }
    return await withSql(s.databaseUrl, 3, async (admin) => {
      await seed(admin, redis, s.seed);
      const settings: ServiceSettings = {
        databaseUrl: pooler ? pooler.urlFor(s.databaseUrl) : s.databaseUrl, redisUrl, redisKeyPrefix: s.redisKeyPrefix, poolSize: s.poolSize,
        port: await freePort(),
        env: {
          ...(pooler ? { DATABASE_POOLER: 'transaction' } : {}),
          WEB_CONCURRENCY: String(s.workers),
          // Fast enough to see reconciliations within the bench's wait. The TTL is shorter than the
          // service's own rule (past REQUEST_TIMEOUT_MS plus a transaction) on purpose: units of a
          // killed request come back within the wait, and a reservation given back before its slow
          // order commits only leaves the mirror high until the next reconcile.
          RECONCILE_INTERVAL_MS: '500',
          RESERVATION_TTL_MS: '3000',
          // queued: a killed worker's unfinished entries are claimed by the new ones within the
          // recovery bound (the service requires more than its request and statement timeouts).
          REQUEST_TIMEOUT_MS: '5000',
          QUEUE_CLAIM_IDLE_MS: '10500',
        },
        onLine: watch.onLine,
        onExit: watch.onExit,
      };
      let service = await startService(settings);
      const users = Array.from({ length: s.clients }, (_, i) => i + 1);
      const clients = startClients({
        url: service.url,
        variant,
        streams: users.map((u) => orderStream(LOAD_SHAPE, s.seed, u, s.salt)),
        sessionIds: users.map(sessionIdOf),
        requestTimeoutMs: t.requestTimeoutMs,
        onRecord: (_, n) => bar.update(n),
      });
      const loadStart = Date.now();
      try {
        await sleep(t.leadMs);
        const span = await fault.inject({
          postgres: s.services.postgres,
          redis: s.services.redis,
          pooler,
          admin,
          async restartService() {
            await service.kill();
            service = await startService(settings);
          },
          async resaveSessions() {
            // A client of its own: the bench's may still be reconnecting to the restarted Redis.
            const operator = createRedis({ redisUrl, redisKeyPrefix: s.redisKeyPrefix });
            await operator.connect();
            await saveSessions(operator, users.map((userId) => ({ userId, sessionId: sessionIdOf(userId) })));
            await operator.quit();
          },
          outageMs: t.outageMs,
          lockHoldMs: t.lockHoldMs,
          note: (line) => bar.note(line),
        });
        while (Date.now() < span.end + t.recoveryBoundMs && recoveredAt(clients.records, span, fault.affects) === null) {
          await sleep(100);
        }
        await sleep(t.tailMs);
        await clients.stop();
        const outcomes = summarize(clients.records, span, fault.affects, t.recoveryBoundMs);
        bar.note(`load stopped: ${clients.records.length} requests, recovery ${outcomes.recoverySec === null ? 'NONE' : `${outcomes.recoverySec} s`}, ` +
          `slowest answer ${outcomes.slowestSec} s`);

        // queued: what was accepted is written after the load; the audit waits for it.
        const drainStart = Date.now();
        const left = variant === QUEUED ? await queueDrained(redis, t.recoveryBoundMs) : 0;
        if (left) throw new Error(`the order queue did not drain within ${t.recoveryBoundMs / 1000} s`);
        const drainSec = (Date.now() - drainStart) / 1000;
        const mirrors = variant === 'redis' || variant === QUEUED ? await waitForMirrors(admin, redis, t.mirrorWaitMs) : null;
        await service.stop(15_000);
        const accepted = clients.records.filter((r) => isSuccess(r.outcome) && r.orderNo).map((r) => ({ userId: r.userId, orderNo: r.orderNo! }));
        const decided = variant === QUEUED ? await queuedOutcomes(redis, s.numbers, accepted) : null;
        // A rejected 202 has no order: every other 202 (and every 201) must name one.
        const created = decided ? accepted.filter((c) => !decided.rejectedNos.has(c.orderNo)) : accepted;
        const audited = await audit(admin, redis, {
          initialStock: s.seed.stock, initialPoints: s.seed.pointsPerUser, checkMirrors: false, created, orderNumbers: s.numbers,
        });
        const orders = await checkOrders(admin, s.numbers, created);
        const cell: FaultCell = {
          fault: faultName, variant, description: fault.describe(t),
          faultAtSec: (span.start - loadStart) / 1000, faultSec: (span.end - span.start) / 1000,
          requests: clients.records.length, outcomes, audit: audited, mismatched: orders.mismatched,
          unannounced: orders.withoutCreated.map((o) => ({ orderNo: o.orderNo, userId: o.userId, clientSaw: whatTheClientSaw(o, clients.records) })),
          unanswered: clients.records.filter((r) => typeof r.outcome !== 'number').slice(0, MAX_LISTED).map((r) => ({
            userId: r.userId, sentSec: (r.sentAt - span.start) / 1000, waitedSec: (r.answeredAt - r.sentAt) / 1000, outcome: outcomeLabel(r),
          })),
          mirrors, ...watch.log, failures: [], warnings: [],
          queued: decided && { rejected: decided.rejected, withoutOutcome: decided.withoutOutcome, drainSec },
        };
        Object.assign(cell, judge(cell, fault.cutsRequests, t.recoveryBoundMs));
        bar.finish(`${verdict(cell)} (${took()})`);
        return cell;
      } finally {
        await clients.stop();
        await service.stop(15_000);
      }
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    bar.finish(`FAILED: ${message} (${took()})`);
    return {
      fault: faultName, variant, description: fault.describe(t), faultAtSec: 0, faultSec: 0, requests: 0,
      outcomes: summarize([], { start: 0, end: 0 }, fault.affects, 0), audit: null, mismatched: [], unannounced: [], unanswered: [], mirrors: null, queued: null,
      ...watch.log, failures: [`the run broke off: ${message}`], warnings: [],
    };
  } finally {
    redis.disconnect();
    await pooler?.remove();
  }
}

/** The queued 202s' outcomes from their status records. */
async function queuedOutcomes(redis: Redis, numbers: OrderNumbers, accepted: { orderNo: string }[]) {
  const records = await readQueuedRecords(redis, accepted.map((c) => numbers.parse(c.orderNo)?.id ?? 0));
  const rejected: Record<string, number> = {};
  const rejectedNos = new Set<string>();
  let withoutOutcome = 0;
  records.forEach((record, i) => {
    if (!record || record.status === 'queued') withoutOutcome++;
    else if (record.status === 'rejected') {
      rejectedNos.add(accepted[i]!.orderNo);
      const code = record.error?.code ?? 'unknown';
      rejected[code] = (rejected[code] ?? 0) + 1;
    }
  });
  return { rejected, rejectedNos, withoutOutcome };
}
