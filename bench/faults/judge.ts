import type { AuditResult } from '../audit.ts';
import type { FaultCell } from './cell.ts';

// What makes a fault cell fail the bench. A 503 with Retry-After is the expected answer to a
// fault; a 500, damage, an order nobody was told about, a crash or no recovery are not. A 503
// without Retry-After, or a request left without an answer by a service that is up, breaks the
// documented contract but loses nothing: reported as a warning, not failed.

/** The audit's findings but the count of orders without a 2xx, which the cell judges order by order instead. */
export function auditDamage(verdict: AuditResult): string[] {
  return verdict.problems.filter((p) => !p.startsWith('ordersWithoutSuccess'));
}

/**
 * An order without a 201 is explained by a 503 OUTCOME_UNKNOWN that named it (the connection was
 * lost while it committed, and the client was told to look it up); by a 503 OUTCOME_UNKNOWN that
 * named no order from the request in flight when it began (one-round-trip and batched: the
 * database assigns the id in the statement whose answer was lost, and the lookup by request key
 * found no database to ask; the client resends with its Idempotency-Key); or, where the fault
 * cuts requests, by a request its client got no answer to (cut, or timed out). `clientSaw` lists
 * only that user's requests in flight then (order-check.ts), one at a time per client.
 */
export function unexplainedOrders(c: Pick<FaultCell, 'unannounced'>, cutsRequests: boolean) {
  return c.unannounced.filter((u) => !u.clientSaw.some((saw) => saw === `503 OUTCOME_UNKNOWN (${u.orderNo})` || saw === '503 OUTCOME_UNKNOWN') &&
    (!cutsRequests || !u.clientSaw.some((saw) => saw.startsWith('connection error') || saw.startsWith('timeout'))));
}

export function judge(c: FaultCell, cutsRequests: boolean, recoveryBoundMs: number): Pick<FaultCell, 'failures' | 'warnings'> {
  const o = c.outcomes;
  const failures: string[] = [];
  if (o.serverErrors) failures.push(`${o.serverErrors} answers 5xx other than 503`);
  if (o.recoverySec === null) failures.push(`no order succeeded within ${recoveryBoundMs / 1000} s of the fault's end`);
  const damage = c.audit ? auditDamage(c.audit) : [];
  if (damage.length) failures.push(`audit: ${damage.join(', ')}`);
  if (c.mismatched.length) failures.push(`${c.mismatched.length} 201s without their order`);
  const unexplained = unexplainedOrders(c, cutsRequests).length;
  if (unexplained) failures.push(`${unexplained} orders committed without a 201`);
  if (c.mirrors && c.mirrors.equalAfterSec === null) failures.push(`${c.mirrors.mismatches.length} Redis mirrors differ from the database`);
  if (c.workerExits.length) failures.push(`${c.workerExits.length} worker exits`);
  if (c.serviceDeaths.length) failures.push('the service died');
  if (c.queued?.withoutOutcome) failures.push(`${c.queued.withoutOutcome} 202s without an outcome once drained`);
  const warnings: string[] = [];
  // Stock and points are ample: a rejection is a refusal the buyer would have got at once from a synchronous variant.
  const rejected = Object.entries(c.queued?.rejected ?? {});
  if (rejected.length) warnings.push(`202s rejected when written: ${rejected.map(([code, n]) => `${n} ${code}`).join(', ')}`);
  if (o.unavailableWithoutRetryAfter) warnings.push(`${o.unavailableWithoutRetryAfter} 503s without Retry-After`);
  // A service that is up should answer, if only with a 503: a request left hanging is a wait without bound.
  if (!cutsRequests && o.unanswered) warnings.push(`${o.unanswered} requests unanswered (slowest ${o.slowestSec} s)`);
  return { failures, warnings };
}

export function verdict(c: Pick<FaultCell, 'failures' | 'warnings'>): string {
  const warned = c.warnings.length ? ` (${c.warnings.join('; ')})` : '';
  return c.failures.length ? `FAILED: ${c.failures.join('; ')}${warned}` : `ok${warned}`;
}
