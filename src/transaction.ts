import type postgres from 'postgres';
import { busy, ConnectionSlots } from './connection-slots.ts';
import type { Sql } from './connections.ts';
import { CommitOutcomeUnknown, isConnectionLoss } from './errors.ts';

// How every variant reaches the database: a pool plus a bounded wait for one of its connections.

export interface Database {
  sql: Sql;
  slots: ConnectionSlots;
  /** How long a request may wait for a connection when the caller sets no deadline of its own. */
  defaultWaitMs: number;
}

export function boundedPool(sql: Sql, options: { poolSize: number; requestTimeoutMs: number }): Database {
  return { sql, slots: new ConnectionSlots(options.poolSize), defaultWaitMs: options.requestTimeoutMs };
}

export type Isolation = 'read committed' | 'serializable';

/** How to find out, after the connection died during COMMIT, whether the transaction committed. */
export interface CommitCheck<T> {
  committed(result: T): Promise<boolean>;
}

/** How long to keep asking (the database may be restarting), and how often. */
const CHECK_FOR_MS = 3_000;
const CHECK_EVERY_MS = 250;

/**
 * One transaction at the given isolation, on a connection obtained by `deadline` at the latest.
 * Once begun it is never cut short from here: the session's lock and statement timeouts bound it.
 *
 * When the connection is lost after `fn` finished, COMMIT was sent and may have been applied: a
 * "failed" answer could then be false. With a `check`, the outcome is looked up: committed ->
 * the result; not committed -> the original error; no answer -> CommitOutcomeUnknown.
 */
export async function inTransaction<T>(db: Database, isolation: Isolation, fn: (tx: postgres.TransactionSql) => Promise<T>,
  deadline?: number, check?: CommitCheck<T>): Promise<T> {
  const until = deadline ?? Date.now() + db.defaultWaitMs;
  let started = false;
  let finished: { result: T } | undefined;
  const transaction = withConnection(db, () => db.sql.begin(`isolation level ${isolation}`, async (tx) => {
    // A connection granted in time can still take long to open (a database restarting); a
    // transaction that could only begin after the deadline is not started: its client may have
    // given up, and must not find an order it was never told of.
    if (Date.now() > until) throw busy();
    started = true;
    const result = await fn(tx);
    finished = { result };
    return result;
  }) as Promise<T>, until);
  try {
    // Past the deadline, a transaction not yet begun never will (see above): answer now instead of
    // waiting for a connection to open. One that has begun is waited for: its outcome is the answer.
    return await beforeDeadline(transaction, until, () => !started);
  } catch (err) {
    if (!finished || !check || !isConnectionLoss(err)) throw err;
    const committed = await askUntil(() => check.committed(finished!.result), Date.now() + CHECK_FOR_MS);
    if (committed === true) return finished.result;
    if (committed === false) throw err;
    throw new CommitOutcomeUnknown(finished.result);
  }
}

function beforeDeadline<T>(work: Promise<T>, until: number, stillWaiting: () => boolean): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    const check = () => {
      if (stillWaiting()) reject(busy());
    };
    timer = setTimeout(check, Math.max(0, until - Date.now()) + 1);
  });
  work.catch(() => {}); // settled later, unobserved, when the deadline answered first
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

async function askUntil(ask: () => Promise<boolean>, until: number): Promise<boolean | undefined> {
  for (;;) {
    try {
      return await ask();
    } catch {
      if (Date.now() + CHECK_EVERY_MS > until) return undefined;
      await new Promise((resolve) => setTimeout(resolve, CHECK_EVERY_MS));
    }
  }
}

/** Work on the pool outside a transaction (no-tx, reads), with the same bounded wait. */
export function withConnection<T>(db: Database, fn: () => Promise<T>, deadline = Date.now() + db.defaultWaitMs): Promise<T> {
  return db.slots.run(deadline, fn);
}
