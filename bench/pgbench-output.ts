// What pgbench prints at the end of a run, as figures. Only the summary lines are read:
//
//   number of transactions actually processed: 38624          (-t: "10000/10000")
//   number of failed transactions: 0 (0.000%)                  (PostgreSQL 15 and later)
//   tps = 4828.112233 (without initial connection time)        (14 and later)
//   tps = 4828.112233 (excluding connections establishing)     (13 and earlier, next to "including")

export interface PgbenchFigures {
  /** Transactions per second, connection set-up excluded. */
  tps: number;
  /** Transactions that completed (each one call of the script). */
  processed: number;
  /** Transactions that failed without aborting their client (null: this pgbench does not say). */
  failed: number | null;
}

export function parsePgbenchOutput(text: string): PgbenchFigures | null {
  const tps = /^tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)$/m.exec(text)?.[1];
  const processed = /^number of transactions actually processed: (\d+)/m.exec(text)?.[1];
  if (tps === undefined || processed === undefined) return null;
  const failed = /^number of failed transactions: (\d+)/m.exec(text)?.[1];
  return { tps: Number(tps), processed: Number(processed), failed: failed === undefined ? null : Number(failed) };
}
