import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { serve } from '@hono/node-server';
import postgres from 'postgres';
import { createApp } from '../src/app.ts';
import { toAppError } from '../src/errors.ts';
import { createLogger } from '../src/logger.ts';
import { createMetrics } from '../src/metrics.ts';
import { createTestEnv, dbState, type TestEnv } from './helpers.ts';

// A client that hangs up in the middle of its body did it itself: that is no database outage (no
// 503 "the database is unavailable", no warn line), and nothing is written. Errors carrying a code
// that several layers share (ECONNRESET: the HTTP request stream, a PostgreSQL socket, Redis) are
// told apart by where they came from.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });
beforeEach(async () => { await env.reset(); });

async function serveApp() {
  const lines: Record<string, any>[] = [];
  const logger = createLogger({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line)); } });
  const metrics = createMetrics();
  const app = createApp({ sql: env.sql, redis: env.redis, config: env.config, logger, metrics });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  await once(server, 'listening');
  return { app, lines, server, port: (server.address() as AddressInfo).port };
}

test('a client hanging up mid-body is logged at debug as CLIENT_CLOSED_REQUEST, not a 503; nothing written', async () => {
  const before = await dbState(env.sql);
  const { app, lines, server, port } = await serveApp();
  try {
    // A chunked body cut after its first chunk, and a Content-Length body cut short.
    const framings = ['Transfer-Encoding: chunked\r\n\r\n5\r\n{"ite\r\n', 'Content-Length: 120\r\n\r\n{"items":[{"productId":1,'];
    for (const framing of framings) {
      for (const variant of ['row-lock', 'one-round-trip', 'batched', 'redis']) {
        const socket = connect(port, '127.0.0.1');
        await once(socket, 'connect');
        socket.write(`POST /orders/${variant} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer seed-1\r\n` +
          `Content-Type: application/json\r\n${framing}`);
        await sleep(50);
        socket.destroy();
      }
    }
    for (let i = 0; i < 100 && lines.filter((l) => l.msg === 'request').length < 8; i++) await sleep(20);
    const requests = lines.filter((l) => l.msg === 'request');
    assert.equal(requests.length, 8, JSON.stringify(lines));
    for (const line of requests) {
      assert.equal(line.level, 'debug', JSON.stringify(line));
      assert.equal(line.code, 'CLIENT_CLOSED_REQUEST', JSON.stringify(line));
      assert.equal(line.status, 499);
    }
    assert.deepEqual(lines.filter((l) => l.level !== 'debug'), [], 'no warn or error line');
    const text = await (await app.request('/metrics')).text();
    assert.match(text, /orders_total\{variant="row-lock",code="CLIENT_CLOSED_REQUEST"\} 2/);
    assert.doesNotMatch(text, /SERVICE_UNAVAILABLE/);
    assert.doesNotMatch(text, /status="503"/);
  } finally {
    server.closeAllConnections();
    server.close();
  }
  assert.deepEqual(await dbState(env.sql), before);
});

test('ECONNRESET is a database outage only when PostgreSQL\'s driver raised it', async () => {
  // Node's HTTP server reports a request stream cut by its client like this:
  const httpAbort = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
  assert.equal(toAppError(httpAbort, { requestAbortedWith: httpAbort }).code, 'CLIENT_CLOSED_REQUEST');
  // The same code from nowhere known is no outage of anything (and, unexplained, a bug).
  assert.equal(toAppError(httpAbort).code, 'INTERNAL');
  // A Redis socket's: ioredis reports it as a closed connection.
  assert.equal(toAppError(new Error('Connection is closed.')).code, 'SERVICE_UNAVAILABLE');

  // The driver's own: a PostgreSQL socket reset under a query. A proxy in front of a real server
  // resets every connection once a query has been sent.
  const { createServer } = await import('node:net');
  const pgPort = Number(new URL(env.config.databaseUrl).port || 5432);
  const proxy = createServer((client) => {
    const upstream = connect(pgPort, '127.0.0.1');
    let startupSeen = false;
    client.on('data', (chunk) => {
      // The first packet is the startup message; reset the connection on the next one (a query).
      if (startupSeen && chunk.includes(Buffer.from('select'))) { client.resetAndDestroy(); upstream.destroy(); return; }
      startupSeen = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const url = new URL(env.config.databaseUrl);
  url.port = String((proxy.address() as AddressInfo).port);
  const sql = postgres(url.toString(), { max: 1, fetch_types: false, onnotice: () => {} });
  try {
    const err = await sql`select 1`.then(() => assert.fail('the proxy let the query through'), (e: unknown) => e);
    assert.equal(toAppError(err).code, 'SERVICE_UNAVAILABLE', String(err));
  } finally {
    await sql.end({ timeout: 1 });
    proxy.close();
  }
});
