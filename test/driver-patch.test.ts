import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { createSql } from '../src/connections.ts';
import { withDatabase } from '../src/database.ts';
import { loadConfig } from '../src/config.ts';

// postgres.js 3.4.9 as patched in patches/: a connection reset while it fetches the array types
// of a new connection (as when PostgreSQL restarts) must fail the waiting query, not leave a
// rejected promise nobody handles (which kills a service process).

test('a connection reset while the driver fetches array types: the query fails, nothing goes unhandled', async () => {
  const server = new URL(withDatabase(loadConfig().databaseUrl, 'postgres'));
  let resets = 0;
  // A proxy to the real server that resets the first connection when the types query passes.
  const proxy = createServer((client: Socket) => {
    const upstream = connect(Number(server.port || 5432), server.hostname);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (resets === 0 && chunk.includes('typcategory')) {
        resets++;
        upstream.destroy();
        client.resetAndDestroy();
        return;
      }
      upstream.write(chunk);
    });
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const { port } = proxy.address() as { port: number };
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => { unhandled.push(reason); };
  process.on('unhandledRejection', onUnhandled);
  const url = new URL(server);
  url.host = `127.0.0.1:${port}`;
  const sql = createSql({ databaseUrl: url.toString(), poolSize: 1 });
  try {
    const first = await sql`select 1 as one`.then(() => 'answered', (err: { code?: string }) => err.code);
    assert.equal(resets, 1, 'the types query was cut');
    assert.equal(first, 'ECONNRESET');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(unhandled, [], 'no rejection left unhandled');
    const [row] = await sql<{ one: number }[]>`select 1 as one`;
    assert.equal(row!.one, 1, 'the pool connects again');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await sql.end({ timeout: 1 });
    proxy.close();
  }
});
