import { withConnection, type Database } from '../../transaction.ts';

// Order ids for queued orders, taken from the orders table's own sequence ahead of time, in
// blocks: a queued order gets its id (and so its order number) when it is accepted, without a
// database round trip. Ids from the sequence never collide with those other variants' orders get
// from it; an id taken and never used (the order was refused, the process died) is a gap, as a
// rolled-back insert leaves one.

export interface OrderIds {
  /** The next id; waits for the database only when the block ran out. */
  next(deadline: number): Promise<number>;
  /** An id taken by next() and used for nothing: the next call gets it again. */
  giveBack(id: number): void;
}

export function orderIdBlocks(db: Database, blockSize = 256): OrderIds {
  let ids: number[] = [];
  let refill: Promise<void> | undefined;

  const fetchBlock = (deadline: number) => {
    refill ??= withConnection(db, async () => {
      const rows = await db.sql<{ id: string }[]>`
        select nextval('orders_id_seq') as id from generate_series(1, ${blockSize})`;
      ids.push(...rows.map((r) => Number(r.id)));
    }, deadline).finally(() => { refill = undefined; });
    return refill;
  };

  return {
    async next(deadline) {
      while (ids.length === 0) await fetchBlock(deadline);
      const id = ids.shift()!;
      // Half the block left: the next one is fetched while this one is used up.
      if (ids.length === blockSize >> 1) void fetchBlock(deadline).catch(() => {});
      return id;
    },
    giveBack(id) {
      ids.unshift(id);
    },
  };
}
