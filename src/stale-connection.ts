import postgres from 'postgres';

// A pooled server connection can be closed by the server while it sits idle and be handed out at
// that very moment. Through PgBouncer this is routine when the database's idle_session_timeout is
// shorter than the pooler's server_idle_timeout (the service cannot pin the former: between
// transactions the server connection is the pooler's): PgBouncer answers the transaction's BEGIN
// with "server conn crashed?" (08P01) and closes the client connection, whose next use fails with
// the driver's CONNECTION_CLOSED. An admin's pg_terminate_backend or a firewall dropping idle
// sockets does the same without a pooler. Nothing of the transaction ran then: postgres.js waits
// for BEGIN's answer before it calls the transaction's function. So `begin` is retried on another
// connection, a bounded number of times; once the function has been called, every failure is the
// caller's (the function may have had effects; the commit may have happened).

/** How often a transaction may begin at all: the first attempt and two retries. */
export const BEGIN_ATTEMPTS = 3;

// A connection that was open and is now gone, or that the server (or pooler) refused to go on
// with: not a database that is down (ECONNREFUSED, CONNECT_TIMEOUT: retrying would only double
// the wait) and not one the service itself closed (CONNECTION_ENDED, CONNECTION_DESTROYED).
const STALE_CODES = new Set([
  'CONNECTION_CLOSED', 'ECONNRESET', 'EPIPE', // the driver's and the socket's
  '08006', '08P01', // connection_failure; protocol_violation, PgBouncer's code for a lost server connection
  '57P05', // idle_session_timeout: the server closed the session as it was handed out
]);

/** True for a failure that means the connection was stale, not that the database refused work. */
export function isStaleConnection(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && STALE_CODES.has(code);
}

/**
 * `sql` whose `begin(options?, fn)` retries, up to BEGIN_ATTEMPTS in all, a transaction that
 * failed on a stale connection before `fn` was called; every other property is `sql`'s own.
 * Rejects with the last attempt's error.
 */
export function retryStaleBegin(sql: postgres.Sql): postgres.Sql {
  const begin = async (options: unknown, fn?: unknown) => {
    const [mode, body] = typeof options === 'function' ? ['', options] : [options as string, fn];
    for (let attempt = 1; ; attempt++) {
      let called = false;
      try {
        return await sql.begin(mode, (tx) => {
          called = true;
          return (body as (tx: postgres.TransactionSql) => unknown)(tx);
        });
      } catch (err) {
        if (called || attempt >= BEGIN_ATTEMPTS || !isStaleConnection(err)) throw err;
      }
    }
  };
  return new Proxy(sql, {
    get(target, property, receiver) {
      return property === 'begin' ? begin : Reflect.get(target, property, receiver);
    },
  });
}
