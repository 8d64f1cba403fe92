import autocannon from 'autocannon';
import { toAppError } from '../src/errors.ts';
import type { PlaceOrderFn } from '../src/orders/variants/index.ts';
import type { OrderStream } from './bodies.ts';

// Two ways of driving the same closed loop (N users, each sending its orders one after another):
// over HTTP with autocannon, and directly against a variant's function in this process (the
// database-side ceiling: same code and pool, no HTTP, no JSON, no session lookup).

export interface LoadResult {
  requests: number;
  successes: number;
  /** Refusals and errors by error code (or HTTP status / 'timeout' when no code was returned). */
  failures: Record<string, number>;
  durationSec: number;
  latencyMs: { p50: number; p75: number; p99: number };
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
    setupClient(client) {
      const user = nextUser++;
      const stream = loop.streams[user]!;
      client.setHeadersAndBody(
        { Authorization: `Bearer ${loop.sessionIds[user]}`, 'Content-Type': 'application/json' },
        JSON.stringify(stream()));
      client.on('body', (body: Buffer) => {
        const code = /"error":\{"code":"([A-Z_]+)"/.exec(body.toString())?.[1];
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
    instance.on('response', () => {
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
    // Up to the last response: autocannon only notices the end at its next 1-second tick.
    durationSec: (lastResponse - started) / 1000,
    latencyMs: { p50: result.latency.p50, p75: result.latency.p75, p99: result.latency.p99 },
  };
}

export async function directLoad(placeOrder: PlaceOrderFn, loop: Loop): Promise<LoadResult> {
  const failures: Record<string, number> = {};
  const latencies: number[] = [];
  let successes = 0;
  const started = performance.now();
  await Promise.all(loop.streams.map(async (stream, user) => {
    for (let i = 0; i < loop.ordersPerConnection; i++) {
      const body = stream();
      const t0 = performance.now();
      try {
        await placeOrder(user + 1, body);
        successes++;
      } catch (err) {
        const code = toAppError(err).code;
        failures[code] = (failures[code] ?? 0) + 1;
      }
      latencies.push(performance.now() - t0);
      loop.onProgress?.(latencies.length);
    }
  }));
  const durationSec = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0);
  return { requests: latencies.length, successes, failures, durationSec, latencyMs: { p50: at(0.5), p75: at(0.75), p99: at(0.99) } };
}
