import autocannon from 'autocannon';
import { toAppError } from '../src/errors.ts';
import type { OrderNumbers } from '../src/orders/order-number.ts';
import type { PlaceOrderFn } from '../src/orders/variants/index.ts';
import type { Created } from './audit.ts';
import type { OrderStream } from './bodies.ts';
import { latencyRecorder, type LatencySummary } from './latency.ts';

// Two ways of driving the same closed loop (N users, each sending its orders one after another):
// over HTTP with autocannon, and directly against a variant's function in this process (the
// database-side ceiling: same code and pool, no HTTP, no JSON, no session lookup). Both record
// each request's time from its send to its answer into the same kind of histogram (latency.ts),
// and keep every order number a success was given, for the audit.

export interface LoadResult {
  requests: number;
  successes: number;
  /** Refusals and errors by error code (or HTTP status / 'timeout' when no code was returned). */
  failures: Record<string, number>;
  durationSec: number;
  latencyMs: LatencySummary;
  /** Every success: its user and order number. */
  created: Created[];
}

export interface Loop {
  /** One stream of order bodies per user; user i+1 sends stream i. */
  streams: OrderStream[];
  sessionIds: string[];
  ordersPerConnection: number;
  onProgress?: (done: number) => void;
}

export async function httpLoad(url: string, variant: string, loop: Loop): Promise<LoadResult> {
  const failures: Record<string, number> = {};
  const latency = latencyRecorder();
  const created: Created[] = [];
  let nextUser = 0;
  let done = 0;
  const options: autocannon.Options = {
    url: `${url}/orders/${variant}`,
    method: 'POST',
    connections: loop.streams.length,
    // `amount` (unlike maxConnectionRequests) also lifts the default 10 s duration limit, which would
    // cut connections with orders in flight; spread over the connections it is M requests each.
    amount: loop.streams.length * loop.ordersPerConnection,
    timeout: 60,
    // autocannon ends a run only at its next sample tick (every second by default), idle since its
    // last answer: ticking every 100 ms ends a run within 0.1 s of it, which keeps short warm-up
    // loops from spending most of their time waiting.
    sampleInt: 100,
    setupClient(client) {
      const user = nextUser++;
      const stream = loop.streams[user]!;
      client.setHeadersAndBody(
        { Authorization: `Bearer ${loop.sessionIds[user]}`, 'Content-Type': 'application/json' },
        JSON.stringify(stream()));
      client.on('body', (body: Buffer) => {
        const text = body.toString();
        const orderNo = /^\{"orderNo":"([0-9A-Za-z]+)"/.exec(text)?.[1];
        if (orderNo) created.push({ userId: user + 1, orderNo });
        const code = /"error":\{"code":"([A-Z_]+)"/.exec(text)?.[1];
        if (code) failures[code] = (failures[code] ?? 0) + 1;
      });
      // The next order of this user: a new body for every request.
      client.on('response', () => client.setBody(JSON.stringify(stream())));
    },
  };
  const started = performance.now();
  let lastResponse = started;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (err, res) => (err ? reject(err) : resolve(res)));
    // autocannon's response time: from writing the request to parsing its answer (hrtime).
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => {
      latency.record(responseTimeMs);
      lastResponse = performance.now();
      loop.onProgress?.(++done);
    });
  });
  if (result.timeouts) failures.timeout = (failures.timeout ?? 0) + result.timeouts;
  if (result.errors - result.timeouts > 0) failures.connection_error = result.errors - result.timeouts;
  const successes = result['2xx'];
  const requests = successes + result.non2xx + result.errors;
  return {
    requests,
    successes,
    failures,
    // Up to the last response, not to autocannon's next tick.
    durationSec: (lastResponse - started) / 1000,
    latencyMs: latency.summary(),
    created,
  };
}

export async function directLoad(placeOrder: PlaceOrderFn, loop: Loop, orderNumbers: OrderNumbers): Promise<LoadResult> {
  const failures: Record<string, number> = {};
  const latency = latencyRecorder();
  const created: Created[] = [];
  let requests = 0;
  const started = performance.now();
  await Promise.all(loop.streams.map(async (stream, user) => {
    for (let i = 0; i < loop.ordersPerConnection; i++) {
      const body = stream();
      const t0 = performance.now();
      try {
        const order = await placeOrder(user + 1, body);
        // The number the service would have answered with.
        created.push({ userId: user + 1, orderNo: orderNumbers.format(order.id, order.createdAt) });
      } catch (err) {
        const code = toAppError(err).code;
        failures[code] = (failures[code] ?? 0) + 1;
      }
      latency.record(performance.now() - t0);
      loop.onProgress?.(++requests);
    }
  }));
  const durationSec = (performance.now() - started) / 1000;
  return { requests, successes: created.length, failures, durationSec, latencyMs: latency.summary(), created };
}
