import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { serve } from '@hono/node-server';
import { chromium, type BrowserContext } from 'playwright-core';
import { VARIANT_NAMES } from '../src/orders/variants/index.ts';
import { findBrowser } from './browser.ts';
import { createTestEnv, type TestEnv } from './helpers.ts';

// A reader opens /docs in a real browser (Debian's chromium where installed, else the Chromium that
// the npm package @sparticuz/chromium ships: see test/browser.ts), places the example order from the
// page, and sees the 201; the order is then read back from the database.

let env: TestEnv;
let server: Server;
let baseUrl: string;
let dir: string;
before(async () => {
  env = await createTestEnv();
  await env.reset();
  server = serve({ fetch: env.app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = await mkdtemp(join(tmpdir(), 'docs-browser-'));
});
after(async () => {
  server?.closeAllConnections();
  server?.close();
  await env?.close();
  // The screenshot stays for whoever looks into a failure; the browser profile does not.
  if (dir) await rm(join(dir, 'profile'), { recursive: true, force: true });
});

test('an order placed from /docs through the reference page answers 201 and is stored', async (t) => {
  // Throws one sentence naming what to install when there is no usable browser.
  const browser = await findBrowser();
  t.diagnostic(`browser: ${browser.source}`);
  // The page must not need the internet: its script is served by the service itself.
  const scalar = await env.app.request('/docs/scalar.js');
  assert.equal(scalar.status, 200, '/docs serves no local Scalar bundle: npm install @scalar/api-reference');

  const context: BrowserContext = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: browser.executablePath,
    headless: true,
    // BROWSER_ARGS (test/browser.ts): --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    // --disable-background-networking --disable-component-update --disable-sync
    args: browser.args,
  });
  const elsewhere: string[] = [];
  try {
    // Anything the page asks of another host is refused at once (and named if the test fails).
    await context.route((url) => url.origin !== baseUrl, (route) => {
      elsewhere.push(route.request().url());
      return route.abort();
    });
    const page = context.pages()[0] ?? await context.newPage();
    await page.goto(`${baseUrl}/docs`);

    // The operation's section, then its "Test Request" button, which opens the request client with
    // the bearer token and the example body filled in.
    const operation = page.locator('section', { hasText: 'Place an order' }).filter({ has: page.getByRole('button', { name: /Test Request/i }) }).last();
    await operation.getByRole('button', { name: /Test Request/i }).first().click({ timeout: 30_000 });
    const placed = page.waitForResponse((res) => res.request().method() === 'POST' && /\/orders\/[\w-]+$/.test(new URL(res.url()).pathname));
    await page.getByRole('button', { name: /^Send/i }).first().click();
    const res = await placed;
    const body = JSON.parse(await res.text());
    assert.equal(res.status(), 201, JSON.stringify(body));
    assert.equal(res.request().headers().authorization, 'Bearer seed-1');
    // The page picks a variant from the documented list: any of them places the order.
    const variant = new URL(res.url()).pathname.split('/')[2]!;
    assert.ok((VARIANT_NAMES as string[]).includes(variant), variant);
    // The page shows the answer: the new order's number.
    await page.getByText(body.orderNo).first().waitFor();
    await page.screenshot({ path: join(dir, 'docs-order-placed.png') });

    // The example order: 2 x product 1 at 9.99 and 1 x product 2 at 19.99, 100 points: 38.97.
    const orders = await env.sql`select user_id, total_amount, points_used, status from orders`;
    assert.deepEqual(orders.map((o) => ({ ...o })), [{ userId: 1, totalAmount: '38.97', pointsUsed: 100, status: 'pending_payment' }]);
    const items = await env.sql`select product_id, count, unit_price from order_item order by product_id`;
    assert.deepEqual(items.map((i) => ({ ...i })), [
      { productId: 1, count: 2, unitPrice: '9.99' },
      { productId: 2, count: 1, unitPrice: '19.99' },
    ]);
    assert.match(body.orderNo, /^\d{8}[0-9a-zA-Z]{6,}$/);
  } catch (err) {
    if (elsewhere.length) (err as Error).message += `\nthe page asked other hosts for: ${elsewhere.join(', ')}`;
    throw err;
  } finally {
    await context.close();
  }
});
