import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../src/config.ts';
import { closeAll, connectAll, createRedis, createSql, postgresUnreachable, redactUrl } from '../src/connections.ts';
import { ensureDatabase, recreateSchema } from '../src/database.ts';
import { runMain } from '../src/entry-point.ts';
import { money } from '../src/orders/request.ts';
import { DEFAULT_SEED, seed } from '../src/seed.ts';

const int = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`an integer >= ${min}`);
  return n;
};
const price = (value: string) => {
  if (!money.safeParse(value).success) throw new InvalidArgumentError('a decimal like 9.99');
  return value;
};

const program = new Command('db:reset')
  .description('Drop and recreate the schema in DATABASE_URL, then seed products, users, sessions, coupons, points and Redis stock mirrors.')
  .option('--products <n>', 'number of products', int(1), DEFAULT_SEED.products)
  .option('--stock <n>', 'units of stock per product', int(0), DEFAULT_SEED.stock)
  .option('--price <amount>', 'price of product 1', price, DEFAULT_SEED.basePrice)
  .option('--price-step <amount>', 'price increase from one product to the next', price, DEFAULT_SEED.priceStep)
  .option('--users <n>', 'number of users (each with a session)', int(1), DEFAULT_SEED.users)
  .option('--coupons <n>', 'coupons per user, alternating discount and reduction', int(0), DEFAULT_SEED.couponsPerUser)
  .option('--points <n>', 'points per user (1 point = 0.01)', int(0), DEFAULT_SEED.pointsPerUser)
  .showHelpAfterError();

async function main() {
  const o = program.parse().opts<{ products: number; stock: number; price: string; priceStep: string; users: number; coupons: number; points: number }>();
  const config = loadConfig();
  // Creating a database and replacing a schema are no transactions to lend a pooled connection.
  if (config.pooler !== 'none') {
    throw new Error('db:reset creates the database and its schema: point DATABASE_URL at PostgreSQL itself, not at the pooler (and unset DATABASE_POOLER)');
  }
  await ensureDatabase(config.databaseUrl).catch((err: unknown) => { throw postgresUnreachable(config.databaseUrl, err); });
  // Admin work: the settings pinned, no statement or lock bound (a large seed may take a while).
  const admin = { databaseUrl: config.databaseUrl, redisUrl: config.redisUrl };
  const sql = createSql({ ...admin, poolSize: 1 });
  const redis = createRedis(config);
  try {
    await connectAll(sql, redis, admin);
    await recreateSchema(sql);
    const seeded = await seed(sql, redis, {
      products: o.products, stock: o.stock, basePrice: o.price, priceStep: o.priceStep,
      users: o.users, couponsPerUser: o.coupons, pointsPerUser: o.points,
    });
    const first = seeded.products[0]!;
    console.log(`reset ${redactUrl(config.databaseUrl)}:`);
    console.log(`  ${o.products} products with ${o.stock} units each, prices ${first.price} .. ${seeded.products.at(-1)!.price}`);
    console.log(`  ${o.users} users with ${o.points} points and ${o.coupons} coupons each (coupon ids ${o.coupons ? `1..${o.users * o.coupons}` : 'none'})`);
    console.log(`  sessions in Redis: user N has session "seed-N" (Authorization: Bearer seed-1)`);
    console.log(`  stock mirrored to Redis for the redis variant`);
  } finally {
    await closeAll(sql, redis);
  }
}

runMain(main);
