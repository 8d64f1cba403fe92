import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import type { AppEnv } from '../app-types.ts';

// The API description (GET /openapi.json), generated from the routes' own schemas, and a page to
// read it and try every route from a browser (GET /docs).

const SCALAR_BUNDLE = '@scalar/api-reference/browser/standalone.js';
// Scalar's page loads its script from a CDN unless told otherwise; served from here when the
// package is installed, the page works on a machine without internet access.
const SCALAR_BUNDLE_PATH = '/docs/scalar.js';

const DESCRIPTION = `Places e-commerce orders in several variants that differ only in concurrency control.

Authenticate with \`Authorization: Bearer <sessionId>\`: after \`npm run db:reset\`, user N has the session \`seed-N\`
(\`seed-1\` is filled in below). The example order works against the seeded data, through every variant.

Errors are \`{"error": {"code", "message", ...details}}\`; each route lists the codes it can answer, by status.`;

export function mountApiDocs(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A session id: `seed-N` for seeded user N',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: { title: 'Order placement', version: '1.0.0', description: DESCRIPTION },
  });

  let bundle: Promise<string | undefined> | undefined;
  const localBundle = () => bundle ??= Promise.resolve()
    .then(() => readFile(createRequire(import.meta.url).resolve(SCALAR_BUNDLE), 'utf8'))
    .catch(() => undefined);

  app.get('/docs', Scalar<AppEnv>(async () => ({
    url: '/openapi.json',
    pageTitle: 'Order placement API',
    // Without the package: Scalar's CDN, for a browser that reaches it.
    cdn: await localBundle() === undefined ? undefined : SCALAR_BUNDLE_PATH,
    withDefaultFonts: false, // fetched from a CDN
    telemetry: false,
    authentication: { preferredSecurityScheme: 'bearer', securitySchemes: { bearer: { token: 'seed-1' } } },
  })));
  app.get(SCALAR_BUNDLE_PATH, async (c) => {
    const script = await localBundle();
    if (script === undefined) return c.notFound();
    return c.body(script, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'public, max-age=3600' });
  });
}
