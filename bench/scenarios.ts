import type { VariantName } from '../src/orders/variants/index.ts';
import type { SeedOptions } from '../src/seed.ts';

// The reference's load shapes plus a flash sale. Closed loop: `connections` users, each sending
// `ordersPerConnection` orders one after another. The reference ran 500-1000 orders per user;
// 20-30 here (300 for hot-10's ten users), so that every cell can run three times within a full
// run on a 2-core machine: the throughput of a closed loop is steady within seconds, and the spread between repeats
// says more about a figure than a longer single run.

export type ScenarioName = 'mixed-100' | 'hot-10' | 'hot-100' | 'flash-sale';

export interface ReferenceFigure { tps: string; p75: string; failed: string }

export interface Scenario {
  name: ScenarioName;
  description: string;
  connections: number;
  ordersPerConnection: number;
  products: number;
  /** Units per product: ample except in the flash sale (100, or a quarter of the attempts at small scale). */
  stock: (totalOrders: number) => number;
  /** How many distinct products one order buys, and how many units of each. */
  linesPerOrder: [min: number, max: number];
  unitsPerLine: [min: number, max: number];
  /** Share of orders that use a coupon / spend points. */
  couponShare: number;
  pointsShare: number;
  /** The reference write-up's figures for this row (Java/Spring + Gatling, unknown hardware). */
  reference: Partial<Record<VariantName, ReferenceFigure>>;
}

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  'mixed-100': {
    name: 'mixed-100',
    description: '100 users x 30 orders, 1-3 random of 10 products',
    connections: 100, ordersPerConnection: 30, products: 10,
    stock: (orders) => orders * 9, linesPerOrder: [1, 3], unitsPerLine: [1, 3],
    couponShare: 0.1, pointsShare: 0.2,
    reference: {
      'no-tx': { tps: '~450', p75: '<265 ms', failed: '-' },
      serializable: { tps: '~150', p75: '<252 ms', failed: '4.3%' },
    },
  },
  'hot-10': {
    name: 'hot-10',
    description: '10 users x 300 orders, one product each order (of 10)',
    connections: 10, ordersPerConnection: 300, products: 10,
    stock: (orders) => orders * 3, linesPerOrder: [1, 1], unitsPerLine: [1, 3],
    couponShare: 0.1, pointsShare: 0.2,
    reference: { serializable: { tps: '~470 (once 442)', p75: '<211 ms', failed: '0.01% (once 7.1%)' } },
  },
  'hot-100': {
    name: 'hot-100',
    description: '100 users x 30 orders, one product each order (of 10)',
    connections: 100, ordersPerConnection: 30, products: 10,
    stock: (orders) => orders * 3, linesPerOrder: [1, 1], unitsPerLine: [1, 3],
    couponShare: 0.1, pointsShare: 0.2,
    reference: { serializable: { tps: '~410', p75: '<250 ms', failed: '10.32%' } },
  },
  'flash-sale': {
    name: 'flash-sale',
    // Enough attempts that the sold-out storm runs ~10 s over HTTP: a steady state, not a start-up.
    description: '100 users x 300 attempts at one product with 100 units',
    connections: 100, ordersPerConnection: 300, products: 1,
    stock: (attempts) => Math.min(FLASH_SALE_UNITS, Math.max(1, Math.floor(attempts / 4))), linesPerOrder: [1, 1], unitsPerLine: [1, 1],
    couponShare: 0, pointsShare: 0,
    reference: {},
  },
};

export const FLASH_SALE_UNITS = 100;
export const SCENARIO_NAMES = Object.keys(SCENARIOS) as ScenarioName[];

export interface Scale { connections: number; ordersPerConnection: number }

/** The seed a scenario needs at a given scale: one user per connection, coupons for every order. */
export function seedFor(scenario: Scenario, scale: Scale): SeedOptions {
  const orders = scale.connections * scale.ordersPerConnection;
  return {
    products: scenario.products,
    stock: scenario.stock(orders),
    basePrice: '9.99',
    priceStep: '10.00',
    users: scale.connections,
    couponsPerUser: scenario.couponShare ? Math.ceil(scale.ordersPerConnection * scenario.couponShare * 2) + 2 : 0,
    pointsPerUser: 100 * scale.ordersPerConnection,
  };
}
