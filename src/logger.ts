import { randomUUID } from 'node:crypto';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

// JSON lines, one object per event, for the service and its supervisor.

export type { Logger } from 'pino';

/**
 * A logger writing to `destination`, by default pino's stdout destination, which writes each line
 * as it is logged: cheap at the rate the default level logs (see logRequest), no worker thread,
 * and nothing lost when the process exits right after. Levels are written as words and times as
 * ISO strings, so that lines read and grep plainly.
 */
export function createLogger(options: { level: LogLevel }, destination?: DestinationStream): Logger {
  return pino({
    level: options.level,
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
  }, destination);
}

/** The functions the order code reports repair work through (stock-reconciler's `Log`), on a logger. */
export function logFunction(logger: Logger) {
  return (message: string, err?: unknown) => (err === undefined ? logger.error(message) : logger.error({ err }, message));
}

// A client's request id is kept when it is one token of printable ASCII of sane length (what
// proxies and tracing systems send); anything else is replaced, so that a log line can never be
// split, bloated or forged through this header.
const SANE_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

export function requestIdFrom(header: string | undefined): string {
  return header !== undefined && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

/** A request slower than this is logged at `info` although it succeeded. */
export const SLOW_REQUEST_MS = 1_000;

export interface RequestRecord {
  requestId: string;
  method: string;
  path: string;
  variant: string | undefined;
  status: number;
  /** The error code of a failed request. */
  code: string | undefined;
  durationMs: number;
  /** What made the request a 500: logged with its stack. */
  err?: unknown;
}

/**
 * One line per request, at a level that depends on the outcome. At the default level `info` a
 * healthy request logs nothing, so the default costs no measurable throughput: a 500 (a bug) is
 * an `error` line with its stack, another 5xx (a dependency down or too slow) a `warn` line, a
 * request slower than SLOW_REQUEST_MS an `info` line. 2xx and 4xx answers, which a sold-out storm
 * produces by the thousand per second, are `debug` lines (LOG_LEVEL=debug logs every request).
 */
export function logRequest(logger: Logger, record: RequestRecord) {
  const level = record.status >= 500 ? (record.status === 500 ? 'error' : 'warn')
    // A client that hung up (499) did so itself, however long it had waited: nothing to act on.
    : record.durationMs >= SLOW_REQUEST_MS && record.code !== 'CLIENT_CLOSED_REQUEST' ? 'info' : 'debug';
  // The level check first, so that a request nobody logs builds nothing.
  if (!logger.isLevelEnabled(level)) return;
  const { err, ...fields } = record;
  logger[level]({ ...fields, durationMs: Math.round(record.durationMs * 10) / 10, ...(err === undefined ? {} : { err }) }, 'request');
}
