import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestRecord } from '../bench/faults/clients.ts';
import { unexplainedOrders } from '../bench/faults/judge.ts';
import { whatTheClientSaw } from '../bench/faults/order-check.ts';

// The fault bench's rule for an order committed without a 201: which answers explain it.

const T = 1_800_000_000_000;
const request = (r: Partial<RequestRecord>): RequestRecord =>
  ({ userId: 1, products: [1], sentAt: T, answeredAt: T + 100, outcome: 201, ...r });

/** The order of user 1 that began at T + 50, judged with its user's requests. */
function judged(records: RequestRecord[], cutsRequests = false) {
  const order = { orderNo: '20270115AbCdEf', userId: 1, createdAt: new Date(T + 50) };
  const clientSaw = whatTheClientSaw(order, records);
  return { clientSaw, unexplained: unexplainedOrders({ unannounced: [{ ...order, clientSaw }] }, cutsRequests).length };
}

test('an unnamed 503 OUTCOME_UNKNOWN in flight when the order began explains it (ids assigned by the lost statement)', () => {
  assert.deepEqual(judged([request({ outcome: 503, code: 'OUTCOME_UNKNOWN' })]), { clientSaw: ['503 OUTCOME_UNKNOWN'], unexplained: 0 });
});

test('a 503 OUTCOME_UNKNOWN naming this order explains it; naming another does not', () => {
  assert.equal(judged([request({ outcome: 503, code: 'OUTCOME_UNKNOWN', orderNo: '20270115AbCdEf' })]).unexplained, 0);
  assert.equal(judged([request({ outcome: 503, code: 'OUTCOME_UNKNOWN', orderNo: '20270115ZzZzZz' })]).unexplained, 1);
});

test('an OUTCOME_UNKNOWN answered before the order began, or another user\'s, explains nothing', () => {
  // Sent at T, answered at T + 40: over before the order's transaction began at T + 50.
  assert.deepEqual(judged([request({ outcome: 503, code: 'OUTCOME_UNKNOWN', answeredAt: T + 40 })]), { clientSaw: [], unexplained: 1 });
  assert.deepEqual(judged([request({ userId: 2, outcome: 503, code: 'OUTCOME_UNKNOWN' })]), { clientSaw: [], unexplained: 1 });
});

test('other 503s explain nothing; a cut request does only where the fault cuts requests', () => {
  assert.equal(judged([request({ outcome: 503, code: 'SERVICE_UNAVAILABLE' })]).unexplained, 1);
  assert.equal(judged([request({ outcome: 'connection error', code: 'UND_ERR_SOCKET' })]).unexplained, 1);
  assert.equal(judged([request({ outcome: 'connection error', code: 'UND_ERR_SOCKET' })], true).unexplained, 0);
});
