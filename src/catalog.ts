import type { Sql } from './connections.ts';

/**
 * Changes what a product shows. A new name or price writes a new immutable snapshot and points the
 * product at it, so orders placed against the old snapshot keep what the buyer saw, and buyers
 * still holding the old snapshot id are told (SNAPSHOT_CHANGED / PRICE_CHANGED).
 */
export async function updateProduct(sql: Sql, productId: number,
  change: { name?: string; price?: string; onShelf?: boolean }): Promise<{ snapshotId: number }> {
  return sql.begin(async (tx) => {
    const [current] = await tx<{ name: string; price: string; snapshotId: number }[]>`
      select name, price, snapshot_id from product where id = ${productId} for update`;
    if (!current) throw new Error(`product ${productId} does not exist`);
    let snapshotId = current.snapshotId;
    if (change.name !== undefined || change.price !== undefined) {
      const [snapshot] = await tx<{ id: number }[]>`
        insert into product_snapshot (product_id, name, price)
        values (${productId}, ${change.name ?? current.name}, ${change.price ?? current.price})
        returning id`;
      snapshotId = snapshot!.id;
    }
    await tx`
      update product set
        name = coalesce(${change.name ?? null}, name),
        price = coalesce(${change.price ?? null}::numeric, price),
        on_shelf = coalesce(${change.onShelf ?? null}::boolean, on_shelf),
        snapshot_id = ${snapshotId},
        updated_at = now()
      where id = ${productId}`;
    return { snapshotId };
  });
}
