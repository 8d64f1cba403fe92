import { setTimeout as sleep } from 'node:timers/promises';
import type { OrderStream } from '../bodies.ts';

// The fault bench's load: a small closed loop on Node's own fetch. Each client is one seeded user
// sending its orders one after another, and every request is recorded as the client saw it, so
// that what happened during a fault can be read back by time (autocannon keeps only totals).

export type Outcome = number | 'connection error' | 'timeout';

/** The order was taken: placed (201), or accepted by the queued variant (202). */
export function isSuccess(outcome: Outcome): boolean {
  return outcome === 201 || outcome === 202;
}

export interface RequestRecord {
  userId: number;
  products: number[];
  /** Epoch milliseconds. */
  sentAt: number;
  answeredAt: number;
  outcome: Outcome;
  /** The error code of the JSON body; for a connection error, the socket's (ECONNREFUSED, ...). */
  code?: string;
  retryAfter?: string;
  /** Of a 201 or 202. */
  orderNo?: string;
}

export interface ClientsOptions {
  url: string;
  variant: string;
  /** Stream i belongs to user i + 1, who sends with session i. */
  streams: OrderStream[];
  sessionIds: string[];
  requestTimeoutMs: number;
  onRecord?: (record: RequestRecord, count: number) => void;
}

export interface Clients {
  records: RequestRecord[];
  /** No new requests; resolves when every client's last request has its answer (or timed out). */
  stop(): Promise<void>;
}

// After a refusal or a connection error a client waits this long before its next order: a down
// service answers in microseconds, and a tight loop would measure nothing but its own spinning.
// Short, so that the recovery time is known to a tenth of a second (Retry-After says 1 s).
const PAUSE_AFTER_FAILURE_MS = 100;

export function startClients(o: ClientsOptions): Clients {
  const records: RequestRecord[] = [];
  let stopped = false;
  const loops = o.streams.map(async (stream, i) => {
    while (!stopped) {
      const record = await send(o, i + 1, o.sessionIds[i]!, stream);
      records.push(record);
      o.onRecord?.(record, records.length);
      if (!isSuccess(record.outcome)) await sleep(PAUSE_AFTER_FAILURE_MS);
    }
  });
  return {
    records,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function send(o: ClientsOptions, userId: number, sessionId: string, stream: OrderStream): Promise<RequestRecord> {
  const body = stream();
  const base = { userId, products: body.items.map((i) => i.productId), sentAt: Date.now() };
  try {
    const res = await fetch(`${o.url}/orders/${o.variant}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${sessionId}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(o.requestTimeoutMs),
    });
    const text = await res.text();
    const json = parseJson(text);
    return {
      ...base,
      answeredAt: Date.now(),
      outcome: res.status,
      code: json?.error?.code,
      retryAfter: res.headers.get('retry-after') ?? undefined,
      // A 201's (or 202's) order, or the one a 503 OUTCOME_UNKNOWN names: placed or not, the client was told which.
      orderNo: isSuccess(res.status) ? json?.orderNo : json?.error?.orderNo,
    };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    if (e.name === 'TimeoutError') return { ...base, answeredAt: Date.now(), outcome: 'timeout' };
    return { ...base, answeredAt: Date.now(), outcome: 'connection error', code: e.cause?.code ?? e.name };
  }
}

function parseJson(text: string): { orderNo?: string; error?: { code?: string; orderNo?: string } } | null {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
