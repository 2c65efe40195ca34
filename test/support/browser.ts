// Real-browser tests: playwright-core driving Debian's Chromium (/usr/bin/chromium). Nothing here
// downloads a browser build; when Chromium is missing it is installed with apt-get (root only).
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser. Override with SESH_CHROMIUM. */
export const CHROMIUM_PATH = process.env.SESH_CHROMIUM ?? '/usr/bin/chromium';

/** Flags that work in containers and CI: no sandbox (root), no GPU, no network chatter. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Make sure Chromium is there: when it is missing and we run as root, install Debian's
 * `chromium` package with apt-get; otherwise fail with a message that says what to do.
 */
export function ensureChromium(path: string = CHROMIUM_PATH): string {
  if (executable(path)) return path;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || path !== '/usr/bin/chromium') {
    throw new Error(
      `The browser tests need Chromium at ${path}. Install Debian's package (sudo apt-get install -y chromium), or point SESH_CHROMIUM at a Chromium/Chrome binary. Nothing is downloaded by the tests.`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    process.stderr.write('[browser tests] Chromium is missing: installing Debian package "chromium" with apt-get...\n');
    execFileSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 300_000 });
    execFileSync('apt-get', ['install', '-y', 'chromium'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
      timeout: 600_000,
    });
  } catch (err) {
    throw new Error(
      `Installing Chromium with apt-get failed (${(err as Error).message}); run: apt-get update && apt-get install -y chromium`,
    );
  }
  if (!executable(path)) throw new Error(`apt-get installed "chromium" but ${path} is still missing.`);
  return path;
}

/** Launch headless Chromium (a fresh temporary profile each time). Close it in afterAll. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = ensureChromium();
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
}
