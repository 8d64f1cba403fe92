import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Sql } from '../../src/connections.ts';
import { readMirroredStock } from '../../src/orders/redis-stock.ts';

// After a fault the redis variant's stock mirrors may be off for a while (units taken by orders
// that never finished, mirrors lost with Redis's data) until the service's reconciler repairs
// them. Polled with the load stopped: how long until they equal the database, or what is left.

export interface MirrorCheck {
  /** Seconds from the first look until every mirror equalled the database stock; null if never within the wait. */
  equalAfterSec: number | null;
  /** At the last look, the products whose mirror differed (null: no mirror at all). */
  mismatches: { productId: number; database: number; mirror: number | null }[];
}

export async function waitForMirrors(sql: Sql, redis: Redis, waitMs: number): Promise<MirrorCheck> {
  const started = Date.now();
  let mismatches: MirrorCheck['mismatches'] = [];
  for (;;) {
    try {
      const products = await sql<{ id: number; stock: number }[]>`select id, stock from product order by id`;
      const mirrors = await readMirroredStock(redis, products.map((p) => p.id));
      mismatches = products.filter((p) => mirrors.get(p.id) !== p.stock)
        .map((p) => ({ productId: p.id, database: p.stock, mirror: mirrors.get(p.id) ?? null }));
      if (!mismatches.length) return { equalAfterSec: (Date.now() - started) / 1000, mismatches };
    } catch {
      // Redis or PostgreSQL still reconnecting after the fault: look again.
    }
    if (Date.now() - started >= waitMs) return { equalAfterSec: null, mismatches };
    await sleep(250);
  }
}
