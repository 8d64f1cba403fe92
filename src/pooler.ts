import type postgres from 'postgres';
import { perTransaction, setLocalStatements, type SessionSettings } from './session-settings.ts';
import { beginArguments } from './stale-connection.ts';

// Through a transaction-pooling pooler (PgBouncer's `pool_mode = transaction`, and the managed
// poolers that behave the same way) each transaction may run on another server connection, shared
// with other clients. So nothing may outlive a transaction: session settings are set per
// transaction (SET LOCAL; a session SET would leak to the next client), and statements are not
// prepared by name (createSql turns that off). A statement outside a transaction would run on the
// server connection's defaults, its isolation included: here every one becomes a transaction of
// its own that begins by pinning the settings, which keeps its meaning (one statement, committed
// on its own) and its bounds (lock, statement and idle timeouts).

/**
 * The pool as the rest of the service uses it, for a transaction pooler: `sql.begin` pins the
 * settings first in every transaction (pipelined with the transaction's first statement: no extra
 * round trip), and a tagged-template statement outside one runs as `begin; set local ...; the
 * statement; commit`. `unsafe` and `file` are refused outside a transaction (schema and seed
 * work goes to PostgreSQL itself: db:reset says so); every other property is the pool's own. A
 * fragment (a template inside another) must come from a transaction handle, as the service's do.
 */
export function pinnedPerTransaction(sql: postgres.Sql, settings: SessionSettings): postgres.Sql {
  const pins = setLocalStatements(perTransaction(settings));
  const begin = (...args: unknown[]) => {
    const { mode, fn } = beginArguments(args);
    return sql.begin(transactionModes(mode), (tx) => {
      // Not awaited: it leaves with the transaction's first statement. Were it to fail, that
      // statement fails too (the transaction is aborted), so nothing runs unpinned.
      tx.unsafe(pins).catch(() => {});
      return fn(tx);
    });
  };
  return new Proxy(sql, {
    apply(target, self, args: unknown[]) {
      const first = args[0] as { raw?: unknown } | undefined;
      if (!Array.isArray(first?.raw)) return Reflect.apply(target, self, args); // identifiers, values
      return begin('', (tx: postgres.TransactionSql) =>
        (tx as unknown as (...a: unknown[]) => unknown)(...args));
    },
    get(target, property, receiver) {
      if (property === 'begin') return begin;
      // They would run unpinned on whatever server connection: only inside a transaction here.
      if (property === 'unsafe' || property === 'file') {
        return () => { throw new Error(`sql.${property} outside a transaction cannot be pinned through a transaction pooler: use it on a transaction`); };
      }
      return Reflect.get(target, property, receiver);
    },
  });
}

/**
 * A transaction's own modes, named in its BEGIN: the server connection's defaults (which SET LOCAL
 * of the defaults cannot change once the transaction has begun) decide nothing. READ COMMITTED
 * unless the caller names an isolation; read-write unless it asks for read only.
 */
export function transactionModes(mode: string): string {
  const isolation = /isolation level/i.test(mode) ? '' : 'isolation level read committed ';
  const access = /read (only|write)/i.test(mode) ? '' : ' read write';
  return `${isolation}${mode}${access}`.trim();
}
