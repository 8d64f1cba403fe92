import type { Sql } from '../../src/connections.ts';
import { dateStamp, type OrderNumbers } from '../../src/orders/order-number.ts';
import { isSuccess, type RequestRecord } from './clients.ts';
import { outcomeLabel } from './outcomes.ts';

// The clients' 201s against the order rows: every order number a client was given must be one
// order of that client's user, with its lines; every order row must have been announced by a 201.
// A row without one was committed while its client saw an error or nothing: possible only when the
// service dies between the commit and the answer.

export interface Created { userId: number; orderNo: string }

export interface OrderCheck {
  /** 201s whose order number does not name exactly one order of that user with at least one line, and why. */
  mismatched: { orderNo: string; problem: string }[];
  /** Committed orders no client got a 201 for. */
  withoutCreated: { orderNo: string; userId: number; createdAt: Date }[];
}

export async function checkOrders(sql: Sql, numbers: OrderNumbers, created: Created[]): Promise<OrderCheck> {
  const rows = await sql<{ id: string; userId: number; createdAt: Date; lines: number }[]>`
    select o.id, o.user_id, o.created_at, count(i.order_id)::int as lines
    from orders o left join order_item i on i.order_id = o.id
    group by o.id`;
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  const announced = new Set<number>();
  const mismatched: OrderCheck['mismatched'] = [];
  for (const c of created) {
    const problem = (() => {
      const parsed = numbers.parse(c.orderNo);
      if (!parsed) return 'not an order number';
      if (announced.has(parsed.id)) return 'given to two requests';
      announced.add(parsed.id);
      const row = byId.get(parsed.id);
      if (!row) return 'no such order';
      if (row.userId !== c.userId) return `order of user ${row.userId}, not ${c.userId}`;
      if (dateStamp(row.createdAt) !== parsed.date) return `created ${dateStamp(row.createdAt)}`;
      if (row.lines < 1) return 'no lines';
      return null;
    })();
    if (problem) mismatched.push({ orderNo: c.orderNo, problem });
  }
  const withoutCreated = rows.filter((r) => !announced.has(Number(r.id)))
    .map((r) => ({ orderNo: numbers.format(Number(r.id), r.createdAt), userId: r.userId, createdAt: r.createdAt }));
  return { mismatched, withoutCreated };
}

/**
 * For an order committed without a 201: what its user's client was told by the request in flight
 * when the order's transaction began (its created_at), and by its last timed-out request before
 * that, which the service may still have been working on after the client gave up. A lone 201
 * would mean one request made two orders.
 */
export function whatTheClientSaw(order: { userId: number; createdAt: Date }, records: RequestRecord[]): string[] {
  // Both clocks are the machine's, read to the millisecond.
  const at = order.createdAt.getTime();
  const mine = records.filter((r) => r.userId === order.userId && r.sentAt <= at);
  // One request at a time per client: normally one in flight, two only at a boundary.
  const inFlight = mine.filter((r) => r.answeredAt >= at).sort((a, b) => Number(isSuccess(a.outcome)) - Number(isSuccess(b.outcome)));
  const abandoned = mine.filter((r) => r.outcome === 'timeout' && r.answeredAt < at).at(-1);
  return [
    ...inFlight.map((r) => outcomeLabel(r) + (r.orderNo ? ` (${r.orderNo})` : '')),
    ...(abandoned ? [`timeout (the order began ${((at - abandoned.answeredAt) / 1000).toFixed(1)} s after the client gave up)`] : []),
  ];
}
