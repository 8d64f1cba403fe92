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
  return {
    format: (id, createdAt) => dateStamp(createdAt) + hashids.encode(id),
    parse(orderNo) {
      const match = /^(\d{8})([0-9a-zA-Z]{6,})$/.exec(orderNo);
      if (!match) return null;
      const [, date, hash] = match as unknown as [string, string, string];
      const decoded = hashids.decode(hash);
      if (decoded.length !== 1) return null;
      // Hashids decodes some foreign strings too; only the canonical encoding is ours.
      if (hashids.encode(decoded) !== hash) return null;
      return { id: Number(decoded[0]), date };
    },
  };
}

export function dateStamp(d: Date): string {
  return d.toISOString().slice(0, 10).replaceAll('-', '');
}
