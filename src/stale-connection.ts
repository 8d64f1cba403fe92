import postgres from 'postgres';
import { isConnectionLoss } from './errors.ts';

// A pooled server connection can be closed by the server while it sits idle and be handed out at
// that very moment. Through PgBouncer this is routine when the database's idle_session_timeout is
// shorter than the pooler's server_idle_timeout (the service cannot pin the former: between
// transactions the server connection is the pooler's): the transaction's BEGIN fails, with
// PgBouncer's "server conn crashed?" (08P01) or, as PgBouncer drops the client connection too,
// the driver's CONNECTION_CLOSED. (Directly, the service's sessions pin idle_session_timeout off,
// so createSql applies this only through a pooler.) Nothing of the transaction ran then:
// postgres.js waits for BEGIN's answer before it calls the transaction's function. So `begin` is
// tried again, a bounded number of times, when it failed that way *fast*: a stale connection fails
// within a round trip, whereas a slow failure is a wait that already took its time (PgBouncer's
// query_wait_timeout, a connect timeout) and must not be repeated. Once the function has been
// called, every failure is the caller's (the function may have had effects; the commit may have
// happened).

/** How often a transaction may begin at all: the first attempt and two retries. */
const BEGIN_ATTEMPTS = 3;
/** A failure later than this after the attempt began was a wait, not a stale connection. */
const STALE_FAILS_WITHIN_MS = 500;

/** True for an error that says the connection was gone rather than that the database refused work. */
function isStaleConnection(err: unknown): boolean {
  return isConnectionLoss(err) ||
    (err instanceof postgres.PostgresError && err.code === '08P01' && err.message === 'server conn crashed?');
}

/**
 * `sql` whose `begin(options?, fn)` begins again, up to three attempts in all, a transaction that
 * failed fast on a stale connection before `fn` was called; `onRetry` hears of each such failure.
 * Every other property is `sql`'s own. Rejects with the last attempt's error.
 */
export function retryStaleBegin(sql: postgres.Sql, onRetry: (err: unknown) => void = () => {}): postgres.Sql {
  const begin = async (...args: unknown[]) => {
    const { mode, fn } = beginArguments(args);
    for (let attempt = 1; ; attempt++) {
      const started = Date.now();
      let called = false;
      try {
        return await sql.begin(mode, (tx) => {
          called = true;
          return fn(tx);
        });
      } catch (err) {
        const retry = !called && attempt < BEGIN_ATTEMPTS && Date.now() - started <= STALE_FAILS_WITHIN_MS && isStaleConnection(err);
        if (!retry) throw err;
        onRetry(err);
      }
    }
  };
  return new Proxy(sql, {
    get(target, property, receiver) {
      return property === 'begin' ? begin : Reflect.get(target, property, receiver);
    },
  });
}

/** postgres.js's `begin(fn)` and `begin(mode, fn)`, as one shape. */
export function beginArguments(args: unknown[]): { mode: string; fn: (tx: postgres.TransactionSql) => unknown } {
  const [mode, fn] = typeof args[0] === 'function' ? ['', args[0]] : [args[0] as string, args[1]];
  return { mode, fn: fn as (tx: postgres.TransactionSql) => unknown };
}
