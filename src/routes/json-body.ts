import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../app-types.ts';

// The order route has always read its body as JSON whatever the Content-Type said (clients and
// tests send none). The OpenAPI route's validators would refuse such a body (415) or skip it
// unread: this marks the request as JSON for them, so that the body is still parsed and checked.

// What @hono/zod-openapi's media type check accepts as JSON, to the character: a Content-Type it
// would refuse must be replaced here.
const JSON_MEDIA_TYPE = /^application\/([a-z.-]+\+)?json(;\s*[a-z0-9-]+=[^;]+)*$/i;

export const readBodyAsJson = createMiddleware<AppEnv>(async (c, next) => {
  if (!JSON_MEDIA_TYPE.test(c.req.header('Content-Type') ?? '')) {
    // On the request itself: a copy of it would be a full web Request with a body stream, several
    // times the cost of the rest of the request's parsing.
    c.req.raw.headers.set('Content-Type', 'application/json');
  }
  await next();
});
