import type { Config } from './config.ts';

// What the service's SQL and its reading of values depend on, pinned on every connection it opens
// rather than taken from the database's defaults, which an operator may have set otherwise
// (`ALTER DATABASE ... SET`, `ALTER ROLE ... SET`). A direct connection sends them at connect
// (startup parameters outrank database and role defaults); through a transaction pooler, which
// refuses them there, every transaction sets them with SET LOCAL (src/pooler.ts).

export type SessionSettings = Record<string, string>;

/** Timeouts in milliseconds; 0 is no limit. */
type Timeouts = Config['db'];

/** The service's own pools: every wait bounded. Admin work (schema, seed, audit): no limit. */
const NO_LIMIT: Timeouts = { lockTimeoutMs: 0, statementTimeoutMs: 0, idleInTransactionTimeoutMs: 0 };

/**
 * The settings every connection pins, by PostgreSQL's own (case-insensitive) names, each value as
 * `pg_settings.setting` shows it, so that what a session really has can be compared.
 */
export function sessionSettings(timeouts: Timeouts = NO_LIMIT): SessionSettings {
  return {
    // postgres.js parses timestamps from their ISO text (German style turns every order into
    // `Invalid time value`) and intervals from PostgreSQL's own style.
    DateStyle: 'ISO, MDY',
    IntervalStyle: 'postgres',
    // Dates derived in SQL (the audit's "made on the day its number says") are UTC dates, like the
    // date in an order number.
    TimeZone: 'UTC',
    extra_float_digits: '1',
    standard_conforming_strings: 'on',
    // Unqualified table names are the schema's (sql/init.sql creates it in `public`).
    search_path: 'public',
    // What a statement outside an explicit transaction means: one-round-trip and batched are a
    // single autocommit statement each, defined as READ COMMITTED (at a SERIALIZABLE default, 25
    // of 30 orders on one product failed with 40001 instead of queueing), and they write.
    default_transaction_isolation: 'read committed',
    default_transaction_read_only: 'off',
    default_transaction_deferrable: 'off',
    // A server that closes idle pool connections would fail the next request sent on one.
    idle_session_timeout: '0',
    lock_timeout: String(timeouts.lockTimeoutMs),
    statement_timeout: String(timeouts.statementTimeoutMs),
    idle_in_transaction_session_timeout: String(timeouts.idleInTransactionTimeoutMs),
  };
}

/**
 * The ones a transaction-pooling pooler accepts at connect and restores on whichever server
 * connection it hands out (PgBouncer tracks exactly these, with client_encoding and
 * application_name); every other setting would be refused at connect.
 */
export const POOLER_TRACKED = ['DateStyle', 'TimeZone', 'standard_conforming_strings'];

/**
 * What a transaction pooler's transactions pin (SET LOCAL): all but idle_session_timeout, which
 * acts between transactions, and those are the pooler's (its server_idle_timeout).
 */
export function perTransaction(settings: SessionSettings): SessionSettings {
  const { idle_session_timeout: _betweenTransactions, ...inTransaction } = settings;
  return inTransaction;
}

export function startupParameters(settings: SessionSettings, pooler: boolean): SessionSettings {
  return pooler ? Object.fromEntries(POOLER_TRACKED.map((name) => [name, settings[name]!])) : settings;
}

/** PGOPTIONS for libpq clients (pgbench): `-c name=value` each, spaces escaped as libpq wants. */
export function pgOptions(settings: SessionSettings): string {
  return Object.entries(settings).map(([name, value]) => `-c ${name}=${value.replaceAll('\\', '\\\\').replaceAll(' ', '\\ ')}`).join(' ');
}

/**
 * One simple-protocol statement list that sets them for the current transaction only: under a
 * transaction pooler the next transaction may be another client's on the same server connection,
 * so a session-wide SET would leak to it. Values are the service's own (constants and integers).
 */
export function setLocalStatements(settings: SessionSettings): string {
  return Object.entries(settings).map(([name, value]) => `set local ${name} = '${value.replaceAll("'", "''")}'`).join('; ');
}

/** The settings a session reports, to compare with what was pinned. */
export const READ_SETTINGS_SQL = `
  select name, setting,
         pg_is_in_recovery() as in_recovery,
         current_setting('session_replication_role') as replication_role
  from pg_settings where lower(name) = any($1::text[])`;

export interface SessionReport {
  settings: { name: string; setting: string }[];
  inRecovery: boolean;
  replicationRole: string;
}

/**
 * Null when the session has what was pinned and nothing the service cannot pin is against it;
 * else the one sentence that says which setting, what it is and what to do.
 */
export function sessionProblem(wanted: SessionSettings, report: SessionReport, pooler: boolean): string | null {
  // Superuser-only, so not pinnable by an ordinary role: at `replica`, triggers and foreign keys
  // do not fire and the schema's last line of defence is gone.
  if (report.replicationRole !== 'origin') {
    return `the database sets session_replication_role = '${report.replicationRole}', which switches off the foreign keys the orders rely on; the service needs 'origin' (ALTER DATABASE ... RESET session_replication_role)`;
  }
  if (report.inRecovery) return 'the database is a read-only standby (in recovery); point DATABASE_URL at the primary';
  const have = new Map(report.settings.map((s) => [s.name.toLowerCase(), s.setting]));
  for (const [name, value] of Object.entries(wanted)) {
    const actual = have.get(name.toLowerCase());
    if (actual !== value) {
      const hint = pooler
        ? 'the pooler or the database overrides it'
        : 'a connection pooler that ignores startup parameters is in between? then set DATABASE_POOLER=transaction';
      return `the database session has ${name} = '${actual}' where the service pinned '${value}' (${hint})`;
    }
  }
  return null;
}
