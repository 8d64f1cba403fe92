import { OpenAPIHono, type Hook } from '@hono/zod-openapi';
import type { z } from 'zod';
import type { AppEnv } from '../app-types.ts';
import { AppError } from '../errors.ts';

// Every router of the service is an OpenAPIHono made here, so that a request the route's schemas
// refuse is answered like every other error: thrown as an AppError, turned into the error body by
// the app's onError. Without the hook, the validator would answer a 400 of its own shape.

/** 422 VALIDATION_FAILED listing each refused field as `{path, message}`. */
export function validationFailed(what: string, error: z.ZodError): AppError {
  return new AppError('VALIDATION_FAILED', `${what} does not match the schema`, {
    issues: error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  });
}

export const refuseInvalid: Hook<unknown, AppEnv, string, undefined> = (result) => {
  if (!result.success) throw validationFailed('the request', result.error);
};

export function openApiApp() {
  return new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid });
}
