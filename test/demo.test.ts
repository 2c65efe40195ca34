// The demo app (examples/demo) in a real browser: Debian's Chromium driven by playwright-core.
// Each demo server is the real `node examples/demo/server.mjs` on a random loopback port with its
// own temporary SQLite file, so the tests never touch .sesh/. Screenshots of every page go to
// test-results/demo/ (git-ignored).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureChromium, launchBrowser } from './support/browser.js';

const ROOT = resolve(import.meta.dirname, '..');
const SERVER = join(ROOT, 'examples/demo/server.mjs');
const SHOTS = join(ROOT, 'test-results/demo');
const SECRET = 'demo-test-secret-0123456789-abcdefghijklmnop';
const IPHONE_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';

interface Demo {
  url: string;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const tmp = mkdtempSync(join(tmpdir(), 'sesh-demo-'));
const running = new Set<ChildProcess>();
let browser: Browser;

/** Start `node examples/demo/server.mjs` and wait for the URL it prints. */
function startDemo(opts: { db?: string; cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<Demo> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: '0',
    NODE_ENV: 'development',
    SESSION_SECRET: SECRET,
    SESH_SQLITE_PATH: opts.db ?? join(mkdtempSync(join(tmp, 'db-')), 'sessions.db'),
    ...opts.env,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const child = spawn(process.execPath, [SERVER], { cwd: opts.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  void exited.then(() => running.delete(child));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return new Promise<Demo>((ok, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`demo server did not start within 20 s:\n${out}`));
    }, 20_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /running at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok({ url: m[1] as string, output: () => out, stop });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`demo server exited (${code}) before listening:\n${out}`));
    });
  });
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(`${url}/login`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('form.stack button[type=submit]')]);
}

async function newDevice(ua?: string, mobile = false): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({
    ...(ua ? { userAgent: ua } : {}),
    viewport: mobile ? { width: 390, height: 844 } : { width: 1024, height: 720 },
  });
  // Fail fast with Playwright's own message (which step, which selector) instead of the test timeout.
  context.setDefaultTimeout(15_000);
  return { context, page: await context.newPage() };
}

beforeAll(async () => {
  // The demo imports sesh through the package's exports (dist/), as a user's app would.
  if (!existsSync(join(ROOT, 'dist/express.js')) || !existsSync(join(ROOT, 'dist/stores/sqlite.js'))) {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/tsup/dist/cli-default.js')], { cwd: ROOT, stdio: 'ignore' });
  }
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser();
}, 600_000); // may install Debian's chromium package first (apt-get), which takes minutes

afterAll(async () => {
  await browser?.close();
  for (const child of running) child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

describe('demo app in Chromium', { timeout: 60_000 }, () => {
  let demo: Demo;
  beforeAll(async () => {
    demo = await startDemo();
  });
  afterAll(async () => {
    await demo?.stop();
  });

  it('sign in → profile → sign out, with flash messages and the visit counter', async () => {
    const { context, page } = await newDevice();
    try {
      await page.goto(`${demo.url}/`);
      await shot(page, 'home');
      expect(await page.textContent('#visits')).toBe('1');
      await page.goto(`${demo.url}/`);
      expect(await page.textContent('#visits')).toBe('2');
      await page.goto(`${demo.url}/login`);
      await shot(page, 'login');

      await signIn(page, demo.url, 'bob', 'canwefixit');
      expect(new URL(page.url()).pathname).toBe('/profile');
      expect(await page.textContent('.flash.ok')).toContain('Welcome, Bob Builder');
      expect(await page.textContent('#username')).toBe('bob');
      expect(await page.getAttribute('#auth-time time', 'datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(await page.getAttribute('#expires time', 'datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);
      // The counter survived the login (login keeps `visits`); two login pages and the profile are visits 3 to 5.
      expect(Number(await page.textContent('#visits'))).toBe(5);
      await shot(page, 'profile');
      // The flash is shown once.
      await page.reload();
      expect(await page.locator('.flash').count()).toBe(0);

      await Promise.all([page.waitForURL('**/login'), page.click('header form button')]);
      expect(await page.textContent('.flash.ok')).toContain('You have been signed out');
      // The back button does not show the profile again (no-store; the session is gone).
      await page.goBack();
      await page.waitForLoadState();
      expect(new URL(page.url()).pathname).toBe('/login');
      expect(await page.locator('#username').count()).toBe(0);
      await page.goto(`${demo.url}/profile`);
      expect(new URL(page.url()).pathname).toBe('/login');
    } finally {
      await context.close();
    }
  });

  it('a wrong password shows an error and creates no session', async () => {
    const { context, page } = await newDevice();
    try {
      await page.goto(`${demo.url}/login`);
      const before = (await context.cookies()).find((c) => c.name === '__Host-sid')?.value;
      expect(before).toBeTruthy();
      await page.fill('input[name=username]', 'bob');
      await page.fill('input[name=password]', 'not-his-password');
      const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('form.stack button')]);
      expect(response.status()).toBe(401);
      expect(await page.textContent('#login-error')).toBe('Wrong username or password.');
      expect(await page.inputValue('input[name=username]')).toBe('bob');
      expect(await page.inputValue('input[name=password]')).toBe('');
      await shot(page, 'login-error');
      // Same anonymous session as before (no login, no new ID); still not signed in.
      expect((await context.cookies()).find((c) => c.name === '__Host-sid')?.value).toBe(before);
      await page.goto(`${demo.url}/profile`);
      expect(new URL(page.url()).pathname).toBe('/login');
      // An unknown user gets the same answer.
      await page.fill('input[name=username]', 'mallory');
      await page.fill('input[name=password]', 'whatever');
      await page.click('form.stack button');
      expect(await page.textContent('#login-error')).toBe('Wrong username or password.');
    } finally {
      await context.close();
    }
  });

  it('protected pages send anonymous visitors to the sign-in page, then back', async () => {
    const { context, page } = await newDevice();
    try {
      for (const path of ['/profile', '/devices', '/admin']) {
        const res = await page.goto(`${demo.url}${path}`);
        expect(new URL(page.url()).pathname).toBe('/login');
        expect(new URL(page.url()).searchParams.get('next')).toBe(path);
        expect(res?.status()).toBe(200);
        expect(await page.textContent('.flash.error')).toContain('Please sign in');
      }
      await page.goto(`${demo.url}/devices`);
      await page.fill('input[name=username]', 'bob');
      await page.fill('input[name=password]', 'canwefixit');
      await Promise.all([page.waitForURL('**/devices'), page.click('form.stack button')]);
      expect(await page.textContent('h1')).toBe('Your sessions');
    } finally {
      await context.close();
    }
  });

  it('the session cookie is HttpOnly, Secure, SameSite=Lax, host-only, and invisible to scripts', async () => {
    const { context, page } = await newDevice();
    try {
      await signIn(page, demo.url, 'bob', 'canwefixit');
      const res = await page.goto(`${demo.url}/profile`);
      expect(res?.headers()['cache-control']).toBe('no-store');
      const cookies = await context.cookies();
      expect(cookies.map((c) => c.name)).toEqual(['__Host-sid']);
      const [sid] = cookies;
      expect(sid).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/', domain: '127.0.0.1', expires: -1 });
      expect(sid?.value).toMatch(/^v1\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/);
      // (globalThis: this file is type-checked without the DOM lib.)
      expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).toBe('');
      for (const path of ['/devices', '/logout']) {
        const r = await page.goto(`${demo.url}${path}`);
        expect(r?.headers()['cache-control']).toBe('no-store');
      }
      await shot(page, 'logout');
      const missing = await page.goto(`${demo.url}/no-such-page`);
      expect(missing?.status()).toBe(404);
      await shot(page, 'not-found');
    } finally {
      await context.close();
    }
  });

  it('CSRF: a form without its token, with a forged token, or from another site is refused', async () => {
    const attacker = await listenAttacker(demo.url);
    const { context, page } = await newDevice();
    const other = await newDevice(IPHONE_UA, true);
    try {
      await signIn(page, demo.url, 'bob', 'canwefixit');
      await signIn(other.page, demo.url, 'bob', 'canwefixit');
      await page.goto(`${demo.url}/devices`);
      // Same-origin post, token removed.
      await page.locator('form[action="/devices/revoke-others"] input[name=_csrf]').evaluate((el) => el.remove());
      let [res] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST'),
        page.click('form[action="/devices/revoke-others"] button'),
      ]);
      expect(res.status()).toBe(403);
      expect(await page.textContent('h1')).toBe('Request refused');
      await shot(page, 'csrf-refused');
      // Same-origin post, forged token.
      await page.goto(`${demo.url}/devices`);
      await page.locator('form[action="/devices/revoke-others"] input[name=_csrf]').evaluate((el) => {
        (el as unknown as { value: string }).value = 'A'.repeat(86);
      });
      [res] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST'),
        page.click('form[action="/devices/revoke-others"] button'),
      ]);
      expect(res.status()).toBe(403);
      // Cross-site: a page on another site auto-submits a form to the demo (it even copies a real token).
      await page.goto(`${demo.url}/devices`);
      const token = await page.locator('form[action="/devices/revoke-others"] input[name=_csrf]').inputValue();
      [res] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST'),
        page.goto(`${attacker.url}/?token=${encodeURIComponent(token)}`),
      ]);
      expect(res.status()).toBe(403);
      // Nothing happened: both devices are still signed in (the refusal set no cookie either).
      await page.goto(`${demo.url}/profile`);
      expect(new URL(page.url()).pathname).toBe('/profile');
      await other.page.goto(`${demo.url}/profile`);
      expect(new URL(other.page.url()).pathname).toBe('/profile');
      // The same form with its token from the page itself works.
      await page.goto(`${demo.url}/devices`);
      await Promise.all([page.waitForURL('**/devices'), page.click('form[action="/devices/revoke-others"] button')]);
      expect(await page.textContent('.flash.ok')).toMatch(/Signed out \d+ other session/);
    } finally {
      await context.close();
      await other.context.close();
      await attacker.close();
    }
  });
});

/**
 * An "attacker" site: http://localhost:<port> (cross-site to http://127.0.0.1:<demo port>) with a
 * page that auto-submits a POST form to the demo. The inline script is allowed there: it is not the demo.
 */
async function listenAttacker(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const token = new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? '';
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><form id="f" method="post" action="${target}/devices/revoke-others">
<input type="hidden" name="_csrf" value="${token.replace(/[^A-Za-z0-9_-]/g, '')}"></form>
<script>document.getElementById('f').submit()</script>`);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

describe('devices and admin in Chromium', { timeout: 60_000 }, () => {
  it('two browsers are two devices: both listed, revoking one signs it out on its next request', async () => {
    const demo = await startDemo();
    const laptop = await newDevice();
    const phone = await newDevice(IPHONE_UA, true);
    try {
      await signIn(laptop.page, demo.url, 'bob', 'canwefixit');
      await signIn(phone.page, demo.url, 'bob', 'canwefixit');
      await laptop.page.goto(`${demo.url}/devices`);
      const items = laptop.page.locator('#devices li');
      expect(await items.count()).toBe(2);
      const current = laptop.page.locator('#devices li.current');
      expect(await current.count()).toBe(1);
      expect(await current.textContent()).toContain('This device');
      expect(await current.textContent()).toContain('Chrome');
      const phoneItem = laptop.page.locator('#devices li:not(.current)');
      expect(await phoneItem.textContent()).toContain('Safari 17 on iOS (mobile)');
      expect(await phoneItem.textContent()).toContain('127.0.0.1');
      await shot(laptop.page, 'devices');
      await phone.page.goto(`${demo.url}/devices`);
      await shot(phone.page, 'devices-phone');

      await Promise.all([laptop.page.waitForURL('**/devices'), phoneItem.locator('button').click()]);
      expect(await laptop.page.textContent('.flash.ok')).toContain('revoked');
      expect(await laptop.page.locator('#devices li').count()).toBe(1);
      // The phone's next request: back to sign-in.
      await phone.page.goto(`${demo.url}/profile`);
      expect(new URL(phone.page.url()).pathname).toBe('/login');
      // The laptop is still signed in.
      await laptop.page.goto(`${demo.url}/profile`);
      expect(new URL(laptop.page.url()).pathname).toBe('/profile');
    } finally {
      await laptop.context.close();
      await phone.context.close();
      await demo.stop();
    }
  });

  it('"sign out everywhere else" ends every other session and keeps this one', async () => {
    const demo = await startDemo();
    const a = await newDevice();
    const b = await newDevice(IPHONE_UA, true);
    const c = await newDevice();
    try {
      for (const d of [a, b, c]) await signIn(d.page, demo.url, 'alice', 'wonderland');
      await a.page.goto(`${demo.url}/devices`);
      expect(await a.page.locator('#devices li').count()).toBe(3);
      await Promise.all([a.page.waitForURL('**/devices'), a.page.click('form[action="/devices/revoke-others"] button')]);
      expect(await a.page.textContent('.flash.ok')).toBe('Signed out 2 other sessions.');
      expect(await a.page.locator('#devices li').count()).toBe(1);
      expect(await a.page.locator('#devices li.current').count()).toBe(1);
      for (const d of [b, c]) {
        await d.page.goto(`${demo.url}/devices`);
        expect(new URL(d.page.url()).pathname).toBe('/login');
      }
      // Signing out this device from the list logs it out.
      await a.page.goto(`${demo.url}/devices`);
      await Promise.all([a.page.waitForURL('**/login'), a.page.click('#devices li.current button')]);
      await a.page.goto(`${demo.url}/profile`);
      expect(new URL(a.page.url()).pathname).toBe('/login');
    } finally {
      for (const d of [a, b, c]) await d.context.close();
      await demo.stop();
    }
  });

  it('/admin is 403 for a user without the admin role; the admin sees and revokes any session', async () => {
    const demo = await startDemo();
    const bob = await newDevice(IPHONE_UA, true);
    const alice = await newDevice();
    try {
      await signIn(bob.page, demo.url, 'bob', 'canwefixit');
      expect(await bob.page.locator('header nav a[href="/admin"]').count()).toBe(0);
      const denied = await bob.page.goto(`${demo.url}/admin`);
      expect(denied?.status()).toBe(403);
      expect(await bob.page.textContent('h1')).toBe('Forbidden');
      await shot(bob.page, 'admin-forbidden');

      await signIn(alice.page, demo.url, 'alice', 'wonderland');
      const ok = await alice.page.goto(`${demo.url}/admin`);
      expect(ok?.status()).toBe(200);
      expect(ok?.headers()['cache-control']).toBe('no-store');
      expect(await alice.page.textContent('#session-count')).toBe('2');
      const bobRow = alice.page.locator('tr[data-user="bob"]');
      expect(await bobRow.count()).toBe(1);
      expect(await bobRow.textContent()).toContain('Safari 17 on iOS');
      expect(await alice.page.locator('tr[data-user="alice"] .badge').textContent()).toBe('You');
      await shot(alice.page, 'admin');
      await Promise.all([alice.page.waitForURL('**/admin'), bobRow.locator('button').click()]);
      expect(await alice.page.textContent('.flash.ok')).toBe('Revoked one session of bob.');
      expect(await alice.page.locator('tr[data-user="bob"]').count()).toBe(0);
      await bob.page.goto(`${demo.url}/profile`);
      expect(new URL(bob.page.url()).pathname).toBe('/login');
    } finally {
      await bob.context.close();
      await alice.context.close();
      await demo.stop();
    }
  });
});

describe('browser support', () => {
  it('a missing Chromium fails with a message that says what to install (nothing is downloaded)', () => {
    expect(() => ensureChromium('/nonexistent/chromium')).toThrow(
      /Chromium at \/nonexistent\/chromium.*apt-get install -y chromium.*Nothing is downloaded/,
    );
  });
});

describe('demo source', () => {
  it('imports sesh only through public subpaths (package exports), like a user app', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const dir = join(ROOT, 'examples/demo');
    const specifiers = readdirSync(dir)
      .filter((f) => f.endsWith('.mjs'))
      .flatMap((f) =>
        [...readFileSync(join(dir, f), 'utf8').matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1] as string),
      );
    expect(specifiers).toContain('sesh/express');
    for (const s of specifiers) {
      if (s.startsWith('sesh')) expect(Object.keys(pkg.exports)).toContain(`.${s.slice('sesh'.length)}`);
      else expect(s).toMatch(/^(node:|\.\/|express$|bcryptjs$)/);
    }
  });
});

describe('demo server process', { timeout: 60_000 }, () => {
  it('sessions and the visit counter survive a server restart (even a kill): SQLite on disk', async () => {
    const db = join(mkdtempSync(join(tmp, 'restart-')), 'sessions.db');
    let demo = await startDemo({ db });
    const { context, page } = await newDevice();
    try {
      await signIn(page, demo.url, 'bob', 'canwefixit');
      await page.goto(`${demo.url}/`);
      const before = Number(await page.textContent('#visits'));
      expect(before).toBeGreaterThanOrEqual(3);
      await demo.stop('SIGKILL');
      demo = await startDemo({ db });
      // Cookies are per host, not per port: the new server gets the same cookie.
      await page.goto(`${demo.url}/profile`);
      expect(new URL(page.url()).pathname).toBe('/profile');
      expect(await page.textContent('#username')).toBe('bob');
      expect(Number(await page.textContent('#visits'))).toBe(before + 1);
    } finally {
      await context.close();
      await demo.stop();
    }
  });

  it('zero set-up: a development secret is generated once into .sesh/ with a notice; production needs SESSION_SECRET', async () => {
    const cwd = mkdtempSync(join(tmp, 'cwd-'));
    const env = { SESSION_SECRET: undefined, SESH_SQLITE_PATH: undefined };
    const first = await startDemo({ cwd, env });
    await first.stop();
    expect(first.output()).toContain('generated a development secret in .sesh/dev-secret');
    expect(first.output()).toContain('sessions are kept in');
    const secret = readFileSync(join(cwd, '.sesh/dev-secret'), 'utf8').trim();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(existsSync(join(cwd, '.sesh/sessions.db'))).toBe(true);
    const second = await startDemo({ cwd, env });
    await second.stop();
    expect(second.output()).not.toContain('generated a development secret');
    expect(readFileSync(join(cwd, '.sesh/dev-secret'), 'utf8').trim()).toBe(secret);

    const prod = await startDemo({ cwd: mkdtempSync(join(tmp, 'prod-')), env: { ...env, NODE_ENV: 'production' } }).then(
      () => new Error('started without SESSION_SECRET'),
      (err: Error) => err,
    );
    expect(prod.message).toContain('exited (1)');
    expect(prod.message).toContain('SESSION_SECRET is required when NODE_ENV=production');
  });
});
