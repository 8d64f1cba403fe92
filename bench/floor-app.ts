import { serve } from '@hono/node-server';
import { Hono } from 'hono';

// The HTTP floor: a bare app of the service's framework and adapter doing the least an order
// route can do (read the order body as JSON, answer 201 with a small JSON body), driven by the
// bench with the same load generator, connections and bodies as the service. Its CPU per request
// is what HTTP, JSON and the framework cost on this machine, so that the service's own cost per
// order reads as a multiple of it. Started by the bench as a process of its own: PORT.

const app = new Hono();
let orders = 0;
app.post('/orders/:variant', async (c) => {
  const order = await c.req.json<{ totalAmount?: unknown }>();
  orders += 1;
  return c.json({ orderNo: `F${orders}`, totalAmount: order.totalAmount, pointsUsed: 0, status: 'pending_payment' }, 201);
});

serve({ fetch: app.fetch, port: Number(process.env.PORT), hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`floor app listening on http://127.0.0.1:${info.port}\n`);
});
