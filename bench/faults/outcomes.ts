import { isSuccess, type RequestRecord } from './clients.ts';

// What the clients saw, read back by time: during the fault, over the whole run, and when orders
// succeeded again after the fault had ended.

export interface FaultSpan {
  /** Epoch milliseconds: the fault began (a server stopped, a lock taken, a kill). */
  start: number;
  /** The fault's cause was gone again (server answering, lock released, service listening). */
  end: number;
}

export interface Outcomes {
  /** Answers between the fault's start and the recovery (or the bound, if none), by status and code. */
  during: Record<string, number>;
  whole: Record<string, number>;
  /** Seconds from the fault's end to the first 201 of an order the fault affected; null if none within the bound. */
  recoverySec: number | null;
  /** Responses with a 5xx other than 503: always a bug. */
  serverErrors: number;
  /** 503s without Retry-After, over the whole run. */
  unavailableWithoutRetryAfter: number;
  /** Requests the client never got an answer to (connection error, timeout): the ones that may have committed unseen. */
  unanswered: number;
  /** The longest any request waited for its answer (or its timeout). */
  slowestSec: number;
  /** Per second, relative to the fault's start: 201s and everything else. */
  timeline: { second: number; created: number; other: number }[];
}

export function outcomeLabel(r: RequestRecord): string {
  return [r.outcome, r.code].filter((x) => x !== undefined).join(' ');
}

export function countBy(records: RequestRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) counts[outcomeLabel(r)] = (counts[outcomeLabel(r)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]));
}

/** The first 201 (or 202) of an affected order sent after the fault began and answered after it ended. */
export function recoveredAt(records: RequestRecord[], span: FaultSpan, affects: (products: number[]) => boolean): number | null {
  let first: number | null = null;
  for (const r of records) {
    if (isSuccess(r.outcome) && r.sentAt >= span.start && r.answeredAt >= span.end && affects(r.products)) {
      if (first === null || r.answeredAt < first) first = r.answeredAt;
    }
  }
  return first;
}

export function summarize(records: RequestRecord[], span: FaultSpan, affects: (products: number[]) => boolean,
  recoveryBoundMs: number): Outcomes {
  const recovered = recoveredAt(records, span, affects);
  const windowEnd = recovered ?? span.end + recoveryBoundMs;
  const buckets = new Map<number, { created: number; other: number }>();
  for (const r of records) {
    const second = Math.floor((r.answeredAt - span.start) / 1000);
    const bucket = buckets.get(second) ?? { created: 0, other: 0 };
    if (isSuccess(r.outcome)) bucket.created++;
    else bucket.other++;
    buckets.set(second, bucket);
  }
  return {
    during: countBy(records.filter((r) => r.answeredAt >= span.start && r.answeredAt <= windowEnd)),
    whole: countBy(records),
    recoverySec: recovered === null ? null : Math.max(0, recovered - span.end) / 1000,
    serverErrors: records.filter((r) => typeof r.outcome === 'number' && r.outcome >= 500 && r.outcome !== 503).length,
    unavailableWithoutRetryAfter: records.filter((r) => r.outcome === 503 && !r.retryAfter).length,
    unanswered: records.filter((r) => typeof r.outcome !== 'number').length,
    slowestSec: records.reduce((max, r) => Math.max(max, r.answeredAt - r.sentAt), 0) / 1000,
    timeline: [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([second, b]) => ({ second, ...b })),
  };
}
