import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { explicitServiceUrls } from '../src/config.ts';
import { withDatabase } from '../src/database.ts';
import { findServices, USUAL_PROBES, type Services } from '../servers/services.ts';

// `npm test`: finds or starts PostgreSQL and Redis the way the bench does (servers/services.ts),
// once for the whole run rather than per test file, and runs Node's test runner with DATABASE_URL
// and REDIS_URL pointing at them. Every test file creates a database and key prefix of its own
// on those servers (test/helpers.ts); servers started here are stopped and removed afterwards.
// Arguments go to the test runner; naming files (`npm test -- test/api.test.ts`) runs only those.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// A test file that hangs (a socket left open after its last test, a test that never settles) is
// cancelled and failed after this, instead of holding the run forever. Node applies it to each
// file's process and each test. The longest file, the bench's, takes 8 minutes on a 2-core machine.
const FILE_LIMIT_MS = 20 * 60_000;
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Set by the first SIGINT/SIGTERM: the tests get the signal, then our servers are stopped. */
let interrupted: NodeJS.Signals | null = null;
let tests: ChildProcess | null = null;
// `on`, not `once`: a second Ctrl-C must not cut the clean-up short and leave servers running.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted ??= signal;
    tests?.kill(signal);
  });
}

async function main(): Promise<number> {
  let services: Services;
  try {
    services = await findServices({ ...explicitServiceUrls(), ...USUAL_PROBES, log });
  } catch (err) {
    log(`cannot run the tests: ${(err as Error).message}`);
    return 2;
  }
  try {
    if (!services.redisUrl) {
      log(`cannot run the tests: ${services.redisMissing}.`);
      return 2;
    }
    if (interrupted) return 128 + constants.signals[interrupted];
    log(`tests run against PostgreSQL: ${services.origin.postgres}; Redis: ${services.origin.redis}`);
    // The server, by its `postgres` database: the tests use nothing but the server, whatever
    // database a given DATABASE_URL names (the service's `orders` need not exist).
    return await runTests({ DATABASE_URL: withDatabase(services.databaseUrl, 'postgres'), REDIS_URL: services.redisUrl });
  } finally {
    // Silent unless a clean-up fails: the test runner's summary stays the last thing printed.
    await services.stop();
  }
}

function runTests(urls: { DATABASE_URL: string; REDIS_URL: string }): Promise<number> {
  const args = process.argv.slice(2);
  const files = args.some((a) => !a.startsWith('-')) ? [] :
    readdirSync(`${ROOT}/test`).filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${f}`);
  return new Promise((resolve, reject) => {
    tests = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-timeout=${FILE_LIMIT_MS}`, ...args, ...files],
      { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...urls } });
    tests.once('error', reject);
    tests.once('exit', (code, signal) => resolve(code ?? 128 + constants.signals[signal!]));
  });
}

process.exit(await main());
