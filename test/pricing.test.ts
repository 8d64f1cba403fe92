import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../src/errors.ts';
import { createOrderNumbers } from '../src/orders/order-number.ts';
import { priceOrder, type Coupon } from '../src/orders/pricing.ts';

const total = (input: Parameters<typeof priceOrder>[0]) => priceOrder(input).total.toFixed(2);
const discount = (rate: string): Coupon => ({ id: 1, kind: 'discount', rate });
const reduction = (threshold: string, amount: string): Coupon => ({ id: 2, kind: 'reduction', threshold, amount });
const errorCode = (fn: () => unknown) => {
  try { fn(); } catch (err) { return err instanceof AppError ? `${err.code}:${String(err.details.reason ?? '')}` : 'other'; }
  return 'none';
};

describe('pricing', () => {
  test('subtotal is exact decimal arithmetic (no float drift)', () => {
    assert.equal(total({ lines: [{ unitPrice: '0.10', count: 3 }, { unitPrice: '0.20', count: 1 }] }), '0.50');
    assert.equal(total({ lines: [{ unitPrice: '19.99', count: 99 }] }), '1979.01');
  });

  test('percentage discount rounds half up to cents', () => {
    // 0.10 x 0.85 = 0.085 -> 0.09 (half up), not 0.08 (banker's or float truncation)
    assert.equal(total({ lines: [{ unitPrice: '0.10', count: 1 }], coupon: discount('0.85') }), '0.09');
    // 0.30 x 0.85 = 0.255 -> 0.26
    assert.equal(total({ lines: [{ unitPrice: '0.30', count: 1 }], coupon: discount('0.85') }), '0.26');
    // 19.99 x 0.85 = 16.9915 -> 16.99
    assert.equal(total({ lines: [{ unitPrice: '19.99', count: 1 }], coupon: discount('0.85') }), '16.99');
  });

  test('reduction applies at exactly its threshold, not one cent below', () => {
    assert.equal(total({ lines: [{ unitPrice: '100.00', count: 1 }], coupon: reduction('100.00', '10.00') }), '90.00');
    assert.equal(errorCode(() => priceOrder({ lines: [{ unitPrice: '99.99', count: 1 }], coupon: reduction('100.00', '10.00') })),
      'COUPON_INVALID:below_threshold');
  });

  test('reduction never makes the total negative', () => {
    assert.equal(total({ lines: [{ unitPrice: '5.00', count: 1 }], coupon: reduction('0.00', '10.00') }), '0.00');
  });

  test('points: 1 point = 0.01, capped at what is payable', () => {
    const p = priceOrder({ lines: [{ unitPrice: '9.99', count: 1 }], points: 100, pointsBalance: 100 });
    assert.equal(p.total.toFixed(2), '8.99');
    assert.equal(p.pointsUsed, 100);
    const capped = priceOrder({ lines: [{ unitPrice: '9.99', count: 1 }], points: 5000, pointsBalance: 5000 });
    assert.equal(capped.total.toFixed(2), '0.00');
    assert.equal(capped.pointsUsed, 999, 'only the payable 9.99 is spent');
  });

  test('points are applied after the coupon', () => {
    const p = priceOrder({ lines: [{ unitPrice: '0.10', count: 1 }], coupon: discount('0.85'), points: 100, pointsBalance: 100 });
    assert.equal(p.total.toFixed(2), '0.00');
    assert.equal(p.pointsUsed, 9);
  });

  test('a 0.01 total is kept exactly', () => {
    assert.equal(total({ lines: [{ unitPrice: '0.01', count: 1 }] }), '0.01');
    assert.equal(total({ lines: [{ unitPrice: '1.00', count: 1 }], points: 99, pointsBalance: 99 }), '0.01');
  });

  test('more points than the balance is POINTS_INSUFFICIENT', () => {
    assert.equal(errorCode(() => priceOrder({ lines: [{ unitPrice: '1.00', count: 1 }], points: 101, pointsBalance: 100 })),
      'POINTS_INSUFFICIENT:');
  });
});

describe('order numbers', () => {
  const numbers = createOrderNumbers('salt');
  test('date stamp plus hashid, decoded back to the id', () => {
    const no = numbers.format(12345, new Date('2026-11-24T23:59:59Z'));
    assert.match(no, /^20261124[0-9a-zA-Z]{6,}$/);
    assert.deepEqual(numbers.parse(no), { id: 12345, date: '20261124' });
  });
  test('foreign strings are not order numbers', () => {
    for (const s of ['', '2026', '20261124', '20261124!!!!!!', 'abcdefgh123456', '20261124' + 'x'.repeat(6)]) {
      assert.equal(numbers.parse(s), null, s);
    }
    assert.equal(createOrderNumbers('other salt').parse(numbers.format(7, new Date())), null);
  });
});
