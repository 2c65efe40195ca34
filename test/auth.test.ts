import { afterAll, describe, expect, it } from 'vitest';
import { revokeAllSessions, setUserRoles } from '../src/adapters/express/index.js';
import { deviceLabel } from '../src/auth/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { FakeClock } from '../src/testing/index.js';
import { Browser, buildApp, COOKIE, SpyStore, send, sessionCookie } from './security-support.js';
import { expressVersions, listen, type Running } from './support/http.js';

const running: Running[] = [];
afterAll(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

async function start(express: unknown, store = new SpyStore()) {
  const t = buildApp(express, { store });
  const r = await listen(t.app);
  running.push(r);
  return { ...t, url: r.url, store };
}

const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1';

for (const { name, express } of expressVersions) {
  describe(`auth helpers (${name})`, () => {
    it('login rotates the ID, keeps only allow-listed data, records user, roles and auth time', async () => {
      const { url } = await start(express);
      const b = new Browser(url);
      await b.post('/set', { cart: ['book'], secretNote: 'pre-login' });
      const before = b.cookie;
      expect(before).toBeDefined();
      const r = await b.post('/login', { user: 'alice', roles: ['editor'] });
      expect(r.status).toBe(200);
      expect(b.cookie).not.toBe(before);
      expect(r.headers['cache-control']).toBe('no-store');
      const who = (await b.send('/whoami')).json<{
        auth: { ok: boolean; user: { id: string; roles: string[]; authTime: number } };
        data: Record<string, unknown>;
      }>();
      expect(who.auth.ok).toBe(true);
      expect(who.auth.user.id).toBe('alice');
      expect(who.auth.user.roles).toEqual(['editor']);
      expect(typeof who.auth.user.authTime).toBe('number');
      expect(who.data).toEqual({ cart: ['book'] });
      // The pre-login cookie is dead at once.
      const replay = await send(url, '/whoami', { cookie: before });
      expect(replay.json<{ auth: { ok: boolean } }>().auth.ok).toBe(false);
    });

    it('remember me sets Max-Age to the remaining absolute lifetime; default cookie has none', async () => {
      const { url } = await start(express);
      const plain = await new Browser(url).post('/login', { user: 'a' });
      const line = plain.setCookie.find((c) => c.startsWith(`${COOKIE}=`)) as string;
      expect(line).not.toMatch(/Max-Age/i);
      const rem = await new Browser(url).post('/login', { user: 'a', remember: true });
      const rline = rem.setCookie.find((c) => c.startsWith(`${COOKIE}=`)) as string;
      const maxAge = Number(/Max-Age=(\d+)/.exec(rline)?.[1]);
      expect(maxAge).toBeGreaterThan(12 * 3600 - 60);
      expect(maxAge).toBeLessThanOrEqual(12 * 3600);
    });

    it('logout destroys the session server-side and clears the cookie', async () => {
      const { url, store } = await start(express);
      const b = new Browser(url);
      await b.post('/login', { user: 'alice' });
      const cookie = b.cookie;
      const r = await b.post('/logout');
      expect(r.status).toBe(200);
      expect(sessionCookie(r)).toBe('');
      expect(r.headers['cache-control']).toBe('no-store');
      expect(await store.inner.listByUser('alice')).toHaveLength(0);
      expect((await send(url, '/private', { cookie })).status).toBe(401);
    });

    it('logout can send Clear-Site-Data; requireAuth maxAuthAge asks for a fresh login', async () => {
      const { logout, requireAuth } = await import('../src/adapters/express/index.js');
      const clock = new FakeClock();
      const t = buildApp(express, {
        store: new SpyStore(new MemoryStore({ clock, sweepInterval: 0 })),
        session: { clock },
        routes: (app) => {
          app.post('/logout-all', async (req, res, next) => {
            try {
              await logout(req, { clearSiteData: true });
              res.json({ ok: true });
            } catch (e) {
              next(e);
            }
          });
          app.get('/fresh', requireAuth({ maxAuthAge: 5 * 60_000 }), (_req, res) => {
            res.json({ fresh: true });
          });
        },
      });
      const r = await listen(t.app);
      running.push(r);
      const b = new Browser(r.url);
      await b.post('/login', { user: 'alice' });
      expect((await b.send('/fresh')).status).toBe(200);
      clock.advance(5 * 60_000 + 1);
      expect((await b.send('/fresh')).json()).toEqual({ error: 'UNAUTHENTICATED' });
      expect((await b.send('/private')).status).toBe(200);
      const out = await b.post('/logout-all');
      expect(out.headers['clear-site-data']).toBe('"cookies"');
      expect(sessionCookie(out)).toBe('');
    });

    it('requireAuth gives 401 to anonymous users, requireRole 403 without the role', async () => {
      const { url } = await start(express);
      const anon = new Browser(url);
      expect((await anon.send('/private')).status).toBe(401);
      expect((await anon.send('/admin')).status).toBe(401);
      const editor = new Browser(url);
      await editor.post('/login', { user: 'ed', roles: ['editor'] });
      expect((await editor.send('/private')).status).toBe(200);
      expect((await editor.send('/admin')).json()).toEqual({ error: 'FORBIDDEN' });
      const admin = new Browser(url);
      await admin.post('/login', { user: 'root', roles: ['admin'] });
      expect((await admin.send('/admin')).status).toBe(200);
    });

    it('req.session.regenerate() keeps data under a new ID and kills the old one', async () => {
      const { url } = await start(express);
      const b = new Browser(url);
      await b.post('/login', { user: 'alice' });
      await b.post('/set', { theme: 'dark' });
      const old = b.cookie;
      await b.post('/regenerate');
      expect(b.cookie).not.toBe(old);
      const who = (await b.send('/whoami')).json<{ auth: { ok: boolean }; data: Record<string, unknown> }>();
      expect(who.data.theme).toBe('dark');
      expect(who.auth.ok).toBe(true);
      expect((await send(url, '/private', { cookie: old })).status).toBe(401);
    });

    it('lists the user’s sessions with device labels and the current one; revokes only own sessions', async () => {
      const { url } = await start(express);
      const laptop = new Browser(url, FIREFOX);
      const phone = new Browser(url, IPHONE);
      const mallory = new Browser(url);
      await laptop.post('/login', { user: 'alice' });
      await phone.post('/login', { user: 'alice' });
      await mallory.post('/login', { user: 'mallory' });
      const list = (await laptop.send('/sessions')).json<
        Array<{ handle: string; current: boolean; device: string; ip: string; userAgent: string; createdAt: number; lastSeen: number }>
      >();
      expect(list).toHaveLength(2);
      const current = list.find((s) => s.current);
      const other = list.find((s) => !s.current);
      expect(current?.device).toBe('Firefox 128 on Windows (desktop)');
      expect(other?.device).toMatch(/Safari 17 on iOS \(mobile\)/);
      expect(current?.ip).toMatch(/127\.0\.0\.1/);
      expect(typeof current?.createdAt).toBe('number');
      // The handle is not the cookie and cannot be used as one.
      expect(laptop.cookie).not.toContain(current?.handle);
      expect((await send(url, '/private', { cookie: `${COOKIE}=${current?.handle}` })).status).toBe(401);
      // Mallory cannot revoke Alice's sessions by handle.
      const stolen = await mallory.post('/revoke', { handle: other?.handle });
      expect(stolen.json()).toEqual({ revoked: false });
      expect((await phone.send('/private')).status).toBe(200);
      // Alice revokes her phone from the laptop; the phone is logged out at once.
      expect((await laptop.post('/revoke', { handle: other?.handle })).json()).toEqual({ revoked: true });
      expect((await phone.send('/private')).status).toBe(401);
      expect((await laptop.send('/private')).status).toBe(200);
    });

    it('revokeOtherSessions logs out the second client and keeps the current one', async () => {
      const { url } = await start(express);
      const a = new Browser(url);
      const b = new Browser(url);
      const c = new Browser(url);
      await a.post('/login', { user: 'alice' });
      await b.post('/login', { user: 'alice' });
      await c.post('/login', { user: 'bob' });
      expect((await a.post('/revoke-others')).json()).toEqual({ n: 1 });
      expect((await b.send('/private')).status).toBe(401);
      expect((await a.send('/private')).status).toBe(200);
      expect((await c.send('/private')).status).toBe(200);
    });

    it('revokeAllSessions (password change / admin) ends every session of the user', async () => {
      const { url, mw } = await start(express);
      const a = new Browser(url);
      const b = new Browser(url);
      await a.post('/login', { user: 'alice' });
      await b.post('/login', { user: 'alice' });
      expect(await revokeAllSessions(mw, 'alice')).toBe(2);
      expect((await a.send('/private')).status).toBe(401);
      expect((await b.send('/private')).status).toBe(401);
    });

    it('setUserRoles takes effect on the user’s other sessions at once', async () => {
      const { url, mw } = await start(express);
      const a = new Browser(url);
      const b = new Browser(url);
      await a.post('/login', { user: 'alice', roles: ['admin'] });
      await b.post('/login', { user: 'alice', roles: ['admin'] });
      expect((await b.send('/admin')).status).toBe(200);
      expect(await setUserRoles(mw, 'alice', ['viewer'])).toBe(2);
      expect((await a.send('/admin')).status).toBe(403);
      expect((await b.send('/admin')).status).toBe(403);
      await setUserRoles(mw.sessions, 'alice', ['admin']);
      expect((await b.send('/admin')).status).toBe(200);
    });

    it('maxSessionsPerUser evicts the least recently active session at login', async () => {
      const { url } = await start(express);
      const a = new Browser(url);
      const b = new Browser(url);
      const c = new Browser(url);
      await a.post('/login', { user: 'alice', max: 2 });
      await new Promise((r) => setTimeout(r, 15));
      await b.post('/login', { user: 'alice', max: 2 });
      await new Promise((r) => setTimeout(r, 15));
      await c.post('/login', { user: 'alice', max: 2 });
      expect((await a.send('/private')).status).toBe(401);
      expect((await b.send('/private')).status).toBe(200);
      expect((await c.send('/private')).status).toBe(200);
    });

    it('events carry only keyed hashes, never a raw ID or cookie', async () => {
      const t = await start(express);
      const b = new Browser(t.url);
      const seen: string[] = [];
      await b.post('/login', { user: 'alice' });
      seen.push(b.cookie as string);
      await b.post('/regenerate');
      seen.push(b.cookie as string);
      await b.post('/logout');
      const dump = JSON.stringify(t.events);
      expect(t.events.some((e) => e.type === 'login' && typeof e.sidHash === 'string')).toBe(true);
      for (const c of seen) {
        const [, id, mac] = c.split('=')[1]?.split('.') ?? [];
        expect(dump).not.toContain(id);
        expect(dump).not.toContain(mac);
      }
    });
  });
}

describe('auth helpers without the per-user index', () => {
  it('list/revoke give NOT_SUPPORTED (a typed error, never a silent success)', async () => {
    const inner = new MemoryStore({ sweepInterval: 0 });
    const noIndex = {
      get: inner.get.bind(inner),
      create: inner.create.bind(inner),
      patch: inner.patch.bind(inner),
      touch: inner.touch.bind(inner),
      destroy: inner.destroy.bind(inner),
    };
    const t = buildApp(expressVersions[0].express, { store: noIndex });
    const r = await listen(t.app);
    running.push(r);
    const b = new Browser(r.url);
    await b.post('/login', { user: 'alice' });
    const res = await b.send('/sessions');
    expect(res.status).toBe(500);
    expect(res.json()).toEqual({ error: 'NOT_SUPPORTED' });
    await expect(revokeAllSessions(noIndex, 'alice')).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });
  });
});

describe('deviceLabel', () => {
  it('labels common user agents and never throws', () => {
    expect(deviceLabel(FIREFOX)).toBe('Firefox 128 on Windows (desktop)');
    expect(deviceLabel(undefined)).toBe('Unknown device');
    expect(deviceLabel('')).toBe('Unknown device');
    expect(typeof deviceLabel('\u0000garbage\u202e')).toBe('string');
  });
});
