import Hashids from 'hashids';

// Readable order numbers: the creation date (UTC, yyyymmdd) followed by the hashid of the order id.
// The date makes numbers sortable and easy to read out; the hashid hides the sequence.

export interface OrderNumbers {
  format(id: number, createdAt: Date): string;
  /** The order id and date a number stands for, or null for anything that is not one of ours. */
  parse(orderNo: string): { id: number; date: string } | null;
}

export function createOrderNumbers(salt: string): OrderNumbers {
  const hashids = new Hashids(salt, 6);
  // Order ids are handled as JS numbers, so only safe positive integers are ours, and no hashid of
  // ours is longer than that of the largest one. Longer strings are refused before decoding:
  // hashids decodes a long string as one huge number, hundreds of ms of event loop for 16 KB.
  const maxLength = 8 + hashids.encode(Number.MAX_SAFE_INTEGER).length;
  return {
    format: (id, createdAt) => dateStamp(createdAt) + hashids.encode(id),
    parse(orderNo) {
      if (orderNo.length > maxLength) return null;
      const match = /^(\d{8})([0-9a-zA-Z]{6,})$/.exec(orderNo);
      if (!match) return null;
      const [, date, hash] = match as unknown as [string, string, string];
      const decoded = hashids.decode(hash);
      // Values beyond 2^53 decode as bigints; as numbers they would reach PostgreSQL beyond its range.
      const id = decoded[0];
      if (decoded.length !== 1 || !isSafePositiveInteger(id)) return null;
      // Hashids decodes some foreign strings too; only the canonical encoding is ours.
      if (hashids.encode(id) !== hash) return null;
      return { id, date };
    },
  };
}

function isSafePositiveInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

export function dateStamp(d: Date): string {
  return d.toISOString().slice(0, 10).replaceAll('-', '');
}
