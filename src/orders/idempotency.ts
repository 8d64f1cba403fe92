import { createHash } from 'node:crypto';
import { AppError, errorBody, idempotencyKeyInUse, type ErrorCode } from '../errors.ts';
import type { Db } from './queries.ts';
import type { OrderRequest } from './request.ts';

// Idempotent submission (the IETF httpapi Idempotency-Key draft): a client that lost an answer
// sends the same request again with the same key and gets the first outcome back, never a second
// order. The key of a placed order is written by the statement that inserts the order, inside the
// order's transaction (queries.ts insertOrder), so both commit or neither does. A transaction-scoped
// advisory lock on the key, taken first in that transaction, turns a concurrent repeat away at
// once (409) instead of letting it queue behind the first on the same rows.

/** What the order's transaction needs to store the key with the order. */
export interface IdempotencyClaim {
  key: string;
  /** Hash of the variant and the validated request: the same key with another body is refused. */
  fingerprint: string;
  ttlSeconds: number;
}

/** The stored outcome of a key's first submission. */
export interface StoredOutcome {
  fingerprint: string;
  statusCode: number;
  response: Record<string, unknown>;
  /** The order placed (201 only) and when, to rebuild its number. */
  order: { id: number; createdAt: Date } | null;
}

const MAX_KEY_LENGTH = 255;

/**
 * The Idempotency-Key header's value: a structured-field string ("...") as the draft specifies,
 * or the same characters unquoted; 1 to 255 visible ASCII characters other than `"` and `\`.
 * Undefined without the header.
 */
export function parseIdempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const quoted = /^"(.*)"$/.exec(header);
  const key = quoted ? quoted[1]! : header;
  // Visible ASCII but the quote and backslash, which a structured-field string would have to escape.
  if (key.length < 1 || key.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key) || /["\\]/.test(key)) {
    throw new AppError('VALIDATION_FAILED', `Idempotency-Key must be 1 to ${MAX_KEY_LENGTH} visible ASCII characters, no " or \\`,
      { issues: [{ path: 'Idempotency-Key', message: 'not a valid key' }] });
  }
  return key;
}

export function fingerprintOf(variant: string, request: OrderRequest): string {
  return createHash('sha256').update(`${variant}\n${JSON.stringify(request)}`).digest('base64url');
}

/** The outcome stored under a key, if it has not expired. */
export async function findStoredOutcome(db: Db, userId: number, key: string): Promise<StoredOutcome | undefined> {
  const [row] = await db<{ fingerprint: string; statusCode: number; response: Record<string, unknown>;
    orderId: string | null; orderCreatedAt: Date | null }[]>`
    select k.fingerprint, k.status_code, k.response, k.order_id, o.created_at as order_created_at
    from idempotency_key k left join orders o on o.id = k.order_id
    where k.user_id = ${userId} and k.key = ${key} and k.expires_at > now()`;
  if (!row) return undefined;
  return {
    fingerprint: row.fingerprint,
    statusCode: row.statusCode,
    response: row.response,
    order: row.orderId === null ? null : { id: Number(row.orderId), createdAt: row.orderCreatedAt! },
  };
}

/**
 * First statement of an order's transaction when it carries a key (sql/init.sql,
 * lock_idempotency_key): fails with IDEMPOTENCY_KEY_IN_USE while another transaction holds the
 * key. Without a transaction (no-tx) the lock ends with the statement: it guards nothing there.
 */
export async function claimKey(db: Db, userId: number, key: string): Promise<void> {
  await db`select lock_idempotency_key(${userId}, ${key})`;
}

/** Another request with the same key is running. */
export const keyInUse = idempotencyKeyInUse;

// Refusals that the same request would meet again: stored and replayed like a success. Others
// (busy, timeouts, serialization failures, an unavailable database) are worth retrying: not stored.
const FINAL_REFUSALS = new Set<ErrorCode>([
  'UNKNOWN_PRODUCT', 'OFF_SHELF', 'PRICE_CHANGED', 'SNAPSHOT_CHANGED', 'OUT_OF_STOCK',
  'COUPON_INVALID', 'POINTS_INSUFFICIENT', 'TOTAL_MISMATCH',
]);

export function isFinalRefusal(err: AppError): boolean {
  return FINAL_REFUSALS.has(err.code) && err.retryAfter === undefined;
}

/**
 * Stores a final refusal under the key, after its transaction rolled back. A submission with the
 * same key that got in between (once this one's lock was released) keeps its own outcome.
 */
export async function storeRefusal(db: Db, userId: number, claim: IdempotencyClaim, err: AppError) {
  await db`
    insert into idempotency_key (user_id, key, fingerprint, status_code, response, expires_at)
    values (${userId}, ${claim.key}, ${claim.fingerprint}, ${err.status}, ${asJsonParameter(errorBody(err))}::json,
            now() + make_interval(secs => ${claim.ttlSeconds}))
    on conflict (user_id, key) do update
      set fingerprint = excluded.fingerprint, status_code = excluded.status_code, response = excluded.response,
          order_id = null, created_at = now(), expires_at = excluded.expires_at
      where idempotency_key.expires_at <= now()`;
}

/** The same key sent with another request. */
export function keyReused(): AppError {
  return new AppError('IDEMPOTENCY_KEY_REUSED',
    'this Idempotency-Key was used for a different request; use a new key for a new order');
}

/** Deletes up to `limit` expired keys; returns how many. */
export async function pruneExpiredKeys(db: Db, limit: number): Promise<number> {
  const rows = await db`
    delete from idempotency_key where ctid = any(array(
      select ctid from idempotency_key where expires_at <= now() limit ${limit}))
    returning 1`;
  return rows.length;
}

/**
 * A value for a `$n::json` parameter: postgres.js serializes it with JSON.stringify, so the stored
 * text keeps its keys in order (postgres.js's own sql.json would send jsonb, which reorders them).
 */
function asJsonParameter(value: object): string {
  return value as unknown as string;
}
