import { Agent, request } from 'node:http';

// Order requests for the open loop, on Node's own HTTP client over keep-alive connections, one
// connection per request in flight (the generator caps how many). Every answer is read to the
// end: its status, and the order number of a 201 (or the queued variant's 202) or the error code of a refusal.

export type Answer = { status: 201 | 202; orderNo: string } | { status: number | 'timeout' | 'connection error'; code: string };

export interface OrderSender {
  send(sessionId: string, body: unknown): Promise<Answer>;
  close(): void;
}

export function orderSender(url: string, variant: string, maxConnections: number, timeoutMs = 60_000): OrderSender {
  const target = new URL(`/orders/${variant}`, url);
  const agent = new Agent({ keepAlive: true, maxSockets: maxConnections, maxFreeSockets: maxConnections });
  return {
    send: (sessionId, body) => new Promise<Answer>((resolve) => {
      const payload = JSON.stringify(body);
      const req = request(target, {
        method: 'POST', agent, timeout: timeoutMs,
        headers: { Authorization: `Bearer ${sessionId}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(answerOf(res.statusCode ?? 0, Buffer.concat(chunks).toString())));
        res.on('error', () => resolve({ status: 'connection error', code: 'connection_error' }));
      });
      req.on('timeout', () => {
        req.destroy();
        resolve({ status: 'timeout', code: 'timeout' });
      });
      req.on('error', () => resolve({ status: 'connection error', code: 'connection_error' }));
      req.end(payload);
    }),
    close: () => agent.destroy(),
  };
}

export function answerOf(status: number, body: string): Answer {
  // 202: the queued variant accepted the order.
  if (status === 201 || status === 202) {
    const orderNo = /"orderNo":"([0-9A-Za-z]+)"/.exec(body)?.[1];
    if (orderNo) return { status, orderNo };
  }
  return { status, code: /"error":\{"code":"([A-Z_]+)"/.exec(body)?.[1] ?? String(status) };
}
