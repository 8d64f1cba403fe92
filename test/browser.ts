import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress } from 'node:zlib';
import { isExecutable } from '../servers/services.ts';

// The browser the tests drive with playwright-core: Debian's chromium where it is installed, else the
// Chromium that the npm package @sparticuz/chromium ships inside itself (a devDependency), so that
// `npm install && npm test` needs nothing from apt and nothing downloaded at install or run time.

export const DEBIAN_CHROMIUM = '/usr/bin/chromium';
const NPM_CHROMIUM = '@sparticuz/chromium';

/** Flags either browser is launched with: headless, as root (no sandbox), and silent on the network. */
export const BROWSER_ARGS: readonly string[] = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface TestBrowser {
  /** The Chromium binary to give playwright-core's `executablePath`. */
  executablePath: string;
  /** Which browser it is, for the test's output: 'Debian chromium /usr/bin/chromium' or '@sparticuz/chromium 153.0.0 (…)'. */
  source: string;
  /** The launch flags for it (BROWSER_ARGS). */
  args: string[];
}

/**
 * Finds a Chromium for the browser tests.
 *
 * Returns `{ executablePath, source, args }`: Debian's /usr/bin/chromium when it exists and is
 * executable (so `apt-get install chromium` chooses it), else the Chromium shipped, brotli-compressed,
 * in the npm package @sparticuz/chromium. That one is unpacked once per package version to
 * `$TMPDIR/sparticuz-chromium-<version>/chromium` (about 210 MB; written under a temporary name and
 * renamed, so concurrent runs never start a half-written file) and checked by running `--version`.
 *
 * Throws an Error of one sentence naming what to install when neither browser is usable: the
 * package is not installed, its binary cannot be unpacked, or it does not run (on a bare Debian,
 * the shared libraries libnss3 and libnspr4 are missing).
 */
export async function findBrowser(): Promise<TestBrowser> {
  const args = [...BROWSER_ARGS];
  if (isExecutable(DEBIAN_CHROMIUM)) return { executablePath: DEBIAN_CHROMIUM, source: `Debian chromium ${DEBIAN_CHROMIUM}`, args };

  let packageDir: string;
  try {
    packageDir = join(dirname(createRequire(import.meta.url).resolve(NPM_CHROMIUM)), '..');
  } catch {
    throw new Error(`No browser for the browser tests: ${DEBIAN_CHROMIUM} is absent and ${NPM_CHROMIUM} is not installed, so run \`npm install\` (or \`apt-get install chromium\`).`);
  }
  const version = (JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string }).version;
  const executablePath = join(tmpdir(), `sparticuz-chromium-${version}`, 'chromium');
  const firstLine = (err: unknown) => (((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n')[0]);
  if (!existsSync(executablePath)) {
    try {
      await unpack(join(packageDir, 'bin', 'chromium.br'), executablePath);
    } catch (err) {
      throw new Error(`No usable browser for the browser tests: ${DEBIAN_CHROMIUM} is absent and ${NPM_CHROMIUM} ${version}'s Chromium could not be unpacked to ${executablePath} (${firstLine(err)}), so reinstall it with \`npm ci\` and make room in ${tmpdir()} (or \`apt-get install chromium\`).`);
    }
  }
  let browserVersion: string;
  try {
    browserVersion = execFileSync(executablePath, ['--version'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    throw new Error(`No usable browser for the browser tests: ${DEBIAN_CHROMIUM} is absent and ${NPM_CHROMIUM} ${version}'s Chromium at ${executablePath} does not run (${firstLine(err)}), so \`apt-get install libnss3 libnspr4\` (the shared libraries it needs) or \`apt-get install chromium\`.`);
  }
  return { executablePath, source: `${NPM_CHROMIUM} ${version} (${browserVersion}, unpacked to ${executablePath})`, args };
}

/** Decompresses the package's chromium.br to `target`, atomically (temporary file, then rename). */
async function unpack(source: string, target: string): Promise<void> {
  mkdirSync(dirname(target), { recursive: true });
  const partial = `${target}.${process.pid}.partial`;
  try {
    await pipeline(createReadStream(source), createBrotliDecompress({ chunkSize: 2 ** 21 }), createWriteStream(partial, { mode: 0o755 }));
    renameSync(partial, target);
  } finally {
    rmSync(partial, { force: true });
  }
}
