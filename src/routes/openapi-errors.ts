import { z } from 'zod';
import { statusOf, type ErrorCode } from '../errors.ts';

// The error answers of a route, described from the codes it can answer: each status lists its
// codes, so a client sees in the API description which refusals to handle where.

/** The shared error body `{error: {code, message, ...details}}`, its `code` limited to `codes`. */
function errorBody(codes: [ErrorCode, ...ErrorCode[]]) {
  return z.object({
    error: z.object({
      code: z.enum(codes),
      message: z.string().meta({ description: 'For people; clients decide on `code`.' }),
    }).catchall(z.unknown()).meta({ description: 'Some codes add details: `issues`, `expected`, `reason`, `status`, `variants`, `orderNo`, `sqlstate`.' }),
  });
}

const RETRY_AFTER_CODES = new Set<ErrorCode>(['RATE_LIMITED', 'SERIALIZATION_FAILURE', 'IDEMPOTENCY_KEY_IN_USE', 'TIMEOUT', 'SERVICE_BUSY', 'SERVICE_UNAVAILABLE', 'OUTCOME_UNKNOWN']);

/** The `responses` entries for `codes`, one per status. */
export function errorResponses(codes: ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(statusOf[code], [...byStatus.get(statusOf[code]) ?? [], code]);
  return Object.fromEntries([...byStatus].map(([status, group]) => {
    const retry = group.filter((c) => RETRY_AFTER_CODES.has(c));
    return [status, {
      description: `\`${group.join('`, `')}\`${retry.length ? ` (\`Retry-After\` with \`${retry.join('`, `')}\`)` : ''}`,
      content: { 'application/json': { schema: errorBody(group as [ErrorCode, ...ErrorCode[]]) } },
    }];
  }));
}

/**
 * What any route that reads the database can answer: PostgreSQL or Redis cannot serve now (503),
 * or a bug (500, never caused by what a client sends).
 */
export const DATABASE_FAILURES: ErrorCode[] = ['TIMEOUT', 'SERVICE_BUSY', 'SERVICE_UNAVAILABLE', 'INTERNAL'];
