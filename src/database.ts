import { fileURLToPath } from 'node:url';
import { createSql, type Sql } from './connections.ts';

const INIT_SCRIPT = fileURLToPath(new URL('../sql/init.sql', import.meta.url));
const PLACE_ORDER_SCRIPT = fileURLToPath(new URL('../sql/place-order.sql', import.meta.url));

/** Drops and recreates every table (sql/init.sql), then the order functions over them (sql/place-order.sql). */
export async function recreateSchema(sql: Sql) {
  await sql.file(INIT_SCRIPT).simple();
  await sql.file(PLACE_ORDER_SCRIPT).simple();
}

/** The URL of another database on the same server (same credentials, host and options). */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

// Creating and dropping whole databases, so that every test and bench run works on its own.
// `serverUrl` is any URL of the server; the statements run from its `postgres` database.

export async function createDatabase(serverUrl: string, name: string) {
  await onServer(serverUrl, (admin) => admin.unsafe(`create database ${quoteName(name)}`));
}

/** Creates the database of `url` unless it exists already. */
export async function ensureDatabase(url: string) {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  await onServer(url, async (admin) => {
    const [exists] = await admin`select 1 from pg_database where datname = ${name}`;
    if (!exists) await admin.unsafe(`create database ${quoteName(name)}`);
  });
}

export async function dropDatabase(serverUrl: string, name: string) {
  await onServer(serverUrl, (admin) => admin.unsafe(`drop database if exists ${quoteName(name)} with (force)`));
}

async function onServer(serverUrl: string, run: (admin: Sql) => Promise<unknown>) {
  const admin = createSql({ databaseUrl: withDatabase(serverUrl, 'postgres'), poolSize: 1 });
  try {
    await run(admin);
  } finally {
    await admin.end();
  }
}

function quoteName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a safe database name: ${name}`);
  return `"${name}"`;
}
