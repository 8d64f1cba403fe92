import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createSql } from '../src/connections.ts';
import { createTestEnv, type TestEnv } from './helpers.ts';

// A transaction whose connection is found closed as it begins is begun again (src/stale-connection.ts),
// but only when the failure came fast: a connection that fails only after a wait must not be
// waited for three times. Between the client and the test's PostgreSQL, a proxy that passes
// everything through until the client sends BEGIN, holds that BEGIN, and after `closeAfterMs`
// closes both sides: a server connection lost as the transaction begins. The BEGINs it held are
// the attempts. Through a real PgBouncer over a database that closes idle sessions: test/pooler.test.ts.

let env: TestEnv;
before(async () => { env = await createTestEnv(); });
after(async () => { await env?.close(); });

async function proxyClosingOnBegin(postgresUrl: string, closeAfterMs: number) {
  const target = new URL(postgresUrl);
  const sockets = new Set<Socket>();
  let begins = 0;
  const server = createServer((client) => {
    const upstream = createConnection(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    const closeBoth = () => { client.destroy(); upstream.destroy(); };
    client.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('data', (chunk) => {
      if (/begin/i.test(chunk.toString('latin1'))) {
        begins++;
        client.pause();
        setTimeout(closeBoth, closeAfterMs);
      } else {
        upstream.write(chunk);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = new URL(postgresUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.toString(),
    begins: () => begins,
    close: () => { for (const s of sockets) s.destroy(); server.close(); },
  };
}

async function beginThrough(url: string) {
  const retried: string[] = [];
  // As through a pooler: the retry is applied only then (directly, idle sessions are not closed).
  const sql = createSql({ databaseUrl: url, poolSize: 1, pooler: 'transaction' }, { onStaleBegin: (err) => retried.push((err as { code: string }).code) });
  let called = false;
  try {
    const err = await sql.begin(async (tx) => { called = true; await tx`select 1`; }).then(() => null, (e: { code?: string }) => e);
    return { err, retried, called };
  } finally {
    await sql.end({ timeout: 0 });
  }
}

describe('a transaction whose server connection is lost as it begins', () => {
  test('lost at once: begun three times in all, then the last failure is the answer', async () => {
    const proxy = await proxyClosingOnBegin(env.config.databaseUrl, 0);
    try {
      const { err, retried, called } = await beginThrough(proxy.url);
      assert.equal(err?.code, 'CONNECTION_CLOSED');
      assert.deepEqual(retried, ['CONNECTION_CLOSED', 'CONNECTION_CLOSED']);
      assert.equal(proxy.begins(), 3);
      assert.equal(called, false);
    } finally {
      proxy.close();
    }
  });

  test('lost after 700 ms: a wait, not a stale connection, so not begun again', async () => {
    const proxy = await proxyClosingOnBegin(env.config.databaseUrl, 700);
    try {
      const { err, retried, called } = await beginThrough(proxy.url);
      assert.equal(err?.code, 'CONNECTION_CLOSED');
      assert.deepEqual(retried, []);
      assert.equal(proxy.begins(), 1);
      assert.equal(called, false);
    } finally {
      proxy.close();
    }
  });
});
