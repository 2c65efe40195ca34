import type { Express, NextFunction, Request, Response } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { getSessionState } from '../src/adapters/express/index.js';
import type { SeshEvent, SessionPatch, Store, StoredSession } from '../src/index.js';
import { createSessions, createStatelessSessions, isSeshError, SessionTooLargeError } from '../src/index.js';
import { type StatelessExpressOptions, session } from '../src/stateless/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { FakeClock } from '../src/testing/index.js';
import { Jar } from './stateless-jar.js';
import { expressVersions, listen, type Running, request } from './support/http.js';

declare module '../src/index.js' {
  interface SessionData {
    views: number;
    username: string;
    cart: string[];
    blob: string;
    role: string;
  }
}

const SECRET = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';
const OLD_SECRET = 'Gm3Qx8Vb2Nc7Lr5Tz9Wd1Hk4Jp6Fs0Yq';
const MIN = 60_000;
const HOUR = 60 * MIN;

/** A revocation store that can be broken, delegating to a real MemoryStore. */
class FlakyStore implements Store {
  down = false;
  /** Only writes fail (reads work): for failures after the session was loaded. */
  failWrites = false;
  constructor(readonly inner: MemoryStore) {}
  #check() {
    if (this.down) throw new Error('connection refused');
  }
  async get(key: string) {
    this.#check();
    return this.inner.get(key);
  }
  async create(key: string, s: StoredSession) {
    this.#check();
    if (this.failWrites) throw new Error('read-only replica');
    return this.inner.create(key, s);
  }
  async patch(key: string, p: SessionPatch) {
    this.#check();
    return this.inner.patch(key, p);
  }
  async touch(key: string, l: number, e: number) {
    this.#check();
    return this.inner.touch(key, l, e);
  }
  async destroy(key: string) {
    this.#check();
    return this.inner.destroy(key);
  }
}

const running: Running[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

/** `name=value` of the main session cookie (no chunks) from a jar. */
function main(jar: Jar): string {
  const v = jar.cookies.get('__Host-sid');
  if (v === undefined) throw new Error('no session cookie in the jar');
  return `__Host-sid=${v}`;
}

for (const { name, express } of expressVersions) {
  describe(`sesh/stateless on ${name}`, () => {
    async function start(options: Partial<StatelessExpressOptions> = {}, extra?: (app: Express) => void) {
      const errors: unknown[] = [];
      const events: SeshEvent[] = [];
      const app = express();
      app.use(express.urlencoded({ extended: false }));
      const mw = session({
        secret: SECRET,
        onError: (e) => errors.push(e),
        onEvent: (e) => events.push(e),
        ...options,
      });
      app.use(mw);
      app.get('/count', (req, res) => {
        req.session.views = (req.session.views ?? 0) + 1;
        res.send(String(req.session.views));
      });
      app.get('/read', (req, res) => {
        res.send(String(req.session.views ?? 'none'));
      });
      app.get('/id', (req, res) => {
        res.send(req.session.id);
      });
      app.post('/login', async (req, res) => {
        const state = getSessionState(req);
        await state.regenerate({ renewLifetime: true });
        state.setUser(String(req.body.user));
        state.setMeta('authTime', Date.now());
        req.session.username = String(req.body.user);
        req.session.role = String(req.body.role ?? 'user');
        res.redirect('/me');
      });
      app.get('/me', (req, res) => {
        const state = getSessionState(req);
        if (!state.userId) {
          res.status(401).send('anonymous');
          return;
        }
        res.send(`${state.userId}:${req.session.role}`);
      });
      app.get('/logout', async (req, res, next) => {
        try {
          await req.session.destroy();
          res.send('bye');
        } catch (err) {
          next(err); // Express 4 does not catch async rejections itself
        }
      });
      app.get('/null', (req, res) => {
        (req as unknown as { session: null }).session = null;
        res.send('nulled');
      });
      app.get('/regenerate', async (req, res) => {
        await req.session.regenerate();
        res.send(req.session.id);
      });
      app.get('/cart/:item', (req, res) => {
        const cart = req.session.cart ?? [];
        cart.push(String(req.params.item));
        if (!req.session.cart) req.session.cart = cart;
        res.json(req.session.cart);
      });
      app.get('/blob/:n', (req, res) => {
        req.session.blob = 'b'.repeat(Number(req.params.n));
        res.send('ok');
      });
      app.get('/save-blob/:n', async (req, res) => {
        req.session.blob = 'b'.repeat(Number(req.params.n));
        try {
          await req.session.save();
          res.send('saved');
        } catch (err) {
          // Undo the change, or the final commit fails the same way.
          delete req.session.blob;
          res.status(413).send(isSeshError(err, 'SESSION_TOO_LARGE') ? `too large: ${(err as SessionTooLargeError).limit}` : 'other');
        }
      });
      app.get('/remember', (req, res) => {
        getSessionState(req).setMeta('remember', true);
        req.session.views = 1;
        res.send('ok');
      });
      extra?.(app);
      app.use((err: Error & { status?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
        res.status(err.status ?? 500).send(`error:${err.code ?? err.message}`);
      });
      const r = await listen(app);
      running.push(r);
      return { url: r.url, mw, errors, events };
    }

    it('round trip: the session lives in an encrypted cookie and req.session works as with sesh/express', async () => {
      const { url, mw } = await start();
      const jar = new Jar(url);
      const first = await jar.send('/count');
      expect(first.body).toBe('1');
      expect(first.setCookie).toHaveLength(1);
      expect(first.setCookie[0]).toMatch(/^__Host-sid=s1\.[\w-]{8}\.[\w-]{16}\.[\w-]+; Path=\/; Secure; HttpOnly; SameSite=Lax$/);
      expect(first.headers.get('cache-control')).toBe('no-store');
      expect(first.setCookie[0]).not.toMatch(/views/);
      expect((await jar.send('/count')).body).toBe('2');
      expect((await jar.send('/count')).body).toBe('3');
      // A read-only request within the touch interval sends no cookie.
      const read = await jar.send('/read');
      expect(read.body).toBe('3');
      expect(read.setCookie).toEqual([]);
      const opened = mw.sessions.openCookie(main(jar).slice('__Host-sid='.length));
      expect(opened.ok).toBe(true);
      if (opened.ok) {
        expect(opened.payload.data).toEqual({ views: 3 });
        expect(opened.payload.sid).toMatch(/^[\w-]{43}$/);
        expect(opened.payload.userId).toBeNull();
        expect(opened.payload.meta).toEqual({});
      }
      // The session ID is stable across re-seals.
      const id = (await jar.send('/id')).body;
      expect(opened.ok && opened.payload.sid).toBe(id);
    });

    it('A01: no cookie and nothing written: no Set-Cookie at all', async () => {
      const { url } = await start();
      const r = await request(`${url}/read`);
      expect(r.body).toBe('none');
      expect(r.setCookie).toEqual([]);
    });

    it('tracks in-place mutation of values that were read (shared SessionState logic)', async () => {
      const { url } = await start();
      const jar = new Jar(url);
      expect(JSON.parse((await jar.send('/cart/a')).body)).toEqual(['a']);
      expect(JSON.parse((await jar.send('/cart/b')).body)).toEqual(['a', 'b']);
      expect(JSON.parse((await jar.send('/cart/c')).body)).toEqual(['a', 'b', 'c']);
    });

    it('destroy() and req.session = null clear the cookie; the next request is anonymous', async () => {
      const { url } = await start();
      for (const path of ['/logout', '/null']) {
        const jar = new Jar(url);
        await jar.send('/count');
        const end = await jar.send(path);
        expect(end.setCookie).toHaveLength(1);
        expect(end.setCookie[0]).toMatch(/^__Host-sid=; Max-Age=0;/);
        expect(jar.cookies.size).toBe(0);
        expect((await jar.send('/read')).body).toBe('none');
      }
    });

    it('regenerate() issues a new session ID and keeps the data', async () => {
      const { url } = await start();
      const jar = new Jar(url);
      await jar.send('/count');
      const before = (await jar.send('/id')).body;
      const after = (await jar.send('/regenerate')).body;
      expect(after).not.toBe(before);
      expect((await jar.send('/id')).body).toBe(after);
      expect((await jar.send('/read')).body).toBe('1');
    });

    it('works with getSessionState: setUser / setMeta / userId survive the round trip', async () => {
      const { url, mw } = await start();
      const jar = new Jar(url);
      expect((await jar.send('/me')).status).toBe(401);
      const login = await jar.send('/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'user=ann&role=admin',
      });
      expect(login.status).toBe(302);
      expect((await jar.send('/me')).body).toBe('ann:admin');
      const opened = mw.sessions.openCookie(main(jar).slice('__Host-sid='.length));
      expect(opened.ok && opened.payload.userId).toBe('ann');
      expect(opened.ok && typeof opened.payload.meta.authTime).toBe('number');
    });

    it('"remember me" makes the cookie persistent for the remaining absolute lifetime', async () => {
      const { url } = await start();
      const jar = new Jar(url);
      const r = await jar.send('/remember');
      expect(r.setCookie[0]).toMatch(/; Max-Age=43[12]\d\d; Expires=/);
    });

    it('key rotation: an old-key cookie opens and is re-sealed under the current key on the next response', async () => {
      const oldApp = await start({ secret: OLD_SECRET });
      const jar = new Jar(oldApp.url);
      await jar.send('/count');
      const oldCookie = main(jar);
      const oldKid = oldCookie.split('.')[1];

      const rotated = await start({ secret: [SECRET, OLD_SECRET] });
      const read = await request(`${rotated.url}/read`, { cookie: oldCookie });
      expect(read.body).toBe('1');
      expect(read.setCookie).toHaveLength(1);
      const newKid = (read.setCookie[0] as string).split('.')[1];
      expect(newKid).not.toBe(oldKid);
      expect(rotated.events.some((e) => e.type === 'key_rotated')).toBe(true);
      // The re-sealed cookie opens with the current key alone; the old one no longer does.
      const current = await start({ secret: SECRET });
      const fresh = (read.setCookie[0] as string).split(';')[0] as string;
      expect((await request(`${current.url}/read`, { cookie: fresh })).body).toBe('1');
      const dead = await request(`${current.url}/read`, { cookie: oldCookie });
      expect(dead.body).toBe('none');
      expect(dead.setCookie[0]).toMatch(/^__Host-sid=; Max-Age=0;/);
    });

    it('idle timeout with a fake clock: activity re-seals lastSeen; inactivity past the limit gives anonymous', async () => {
      const clock = new FakeClock(Date.UTC(2026, 0, 1));
      const { url, mw } = await start({ clock, idleTimeout: 30 * MIN, touchAfter: MIN });
      const jar = new Jar(url);
      await jar.send('/count');
      const sealed1 = main(jar);
      clock.advance(29 * MIN);
      const r = await jar.send('/read');
      expect(r.body).toBe('1');
      // The idle deadline had to move, so the cookie was re-sealed with the new lastSeen.
      expect(r.setCookie).toHaveLength(1);
      const p = mw.sessions.openCookie(main(jar).slice(11));
      expect(p.ok && p.payload.lastSeen).toBe(clock.now());
      clock.advance(29 * MIN);
      expect((await jar.send('/read')).body).toBe('1');
      // The first cookie (lastSeen 58 min ago) is dead even though the session lives on.
      const stale = await request(`${url}/read`, { cookie: sealed1 });
      expect(stale.body).toBe('none');
      expect(stale.setCookie[0]).toMatch(/Max-Age=0/);
      clock.advance(31 * MIN);
      const expired = await jar.send('/read');
      expect(expired.body).toBe('none');
      expect(expired.setCookie[0]).toMatch(/^__Host-sid=; Max-Age=0;/);
    });

    it('absolute timeout with a fake clock: even an active session ends after absoluteTimeout', async () => {
      const clock = new FakeClock(Date.UTC(2026, 0, 1));
      const { url } = await start({ clock, idleTimeout: 30 * MIN, absoluteTimeout: 2 * HOUR });
      const jar = new Jar(url);
      await jar.send('/count');
      for (let t = 20; t < 120; t += 20) {
        clock.advance(20 * MIN);
        expect((await jar.send('/count')).body).toBe(String(t / 20 + 1));
      }
      clock.advance(20 * MIN);
      expect((await jar.send('/read')).body).toBe('none');
    });

    it('a cookie issued more than 60 s in the future is refused (clock skew bound)', async () => {
      const clock = new FakeClock(Date.UTC(2026, 0, 1));
      const { url } = await start({ clock });
      const jar = new Jar(url);
      await jar.send('/count');
      clock.advance(-30_000);
      expect((await jar.send('/read')).body).toBe('1');
      clock.advance(-60_000);
      expect((await jar.send('/read')).body).toBe('none');
    });

    it('an infinite lifetime is refused at startup', () => {
      expect(() => session({ secret: SECRET, absoluteTimeout: Number.POSITIVE_INFINITY })).toThrow(/finite/);
      expect(() => session({ secret: SECRET, absoluteTimeout: 0 })).toThrow(/absoluteTimeout/);
      expect(() => session({ secret: SECRET, maxChunks: 4 })).toThrow(/maxChunks/);
      expect(() => session({ secret: SECRET, appId: '' })).toThrow(/appId/);
      expect(() => session({ secret: 'short' })).toThrow(/32/);
    });

    it('size: a session over 4096 bytes of Set-Cookie is a typed SessionTooLargeError, never a truncated cookie', async () => {
      const { url, errors } = await start();
      const jar = new Jar(url);
      await jar.send('/count');
      const before = main(jar);
      // Fits: the whole Set-Cookie line stays within 4096 bytes.
      const ok = await jar.send('/blob/2500');
      expect(ok.status).toBe(200);
      expect(Buffer.byteLength(ok.setCookie[0] as string)).toBeLessThanOrEqual(4096);
      const big = await jar.send('/blob/3500');
      expect(big.status).toBe(500);
      expect(big.setCookie).toEqual([]);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(SessionTooLargeError);
      expect((errors[0] as SessionTooLargeError).limit).toBe(4096);
      expect((errors[0] as Error).message).toMatch(/maxChunks/);
      // save() reports it to the route, which can answer gracefully.
      const saved = await jar.send('/save-blob/5000');
      expect(saved.status).toBe(413);
      expect(saved.body).toBe('too large: 4096');
      expect(before).not.toBe(main(jar));
    });

    it('the size limit counts name and attributes: the largest accepted line is at most 4096 bytes', async () => {
      const { url } = await start();
      let lo = 2000;
      let hi = 3500;
      let largest = '';
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        const r = await request(`${url}/blob/${mid}`);
        if (r.status === 200) {
          lo = mid;
          largest = r.setCookie[0] as string;
        } else hi = mid - 1;
      }
      expect(Buffer.byteLength(largest)).toBeLessThanOrEqual(4096);
      expect(Buffer.byteLength(largest)).toBeGreaterThan(4096 - 8);
    });

    it('chunking: a large session is split across numbered cookies, reassembled, and stale chunks are cleared', async () => {
      const { url } = await start({ maxChunks: 3 });
      const jar = new Jar(url);
      await jar.send('/count');
      expect([...jar.cookies.keys()]).toEqual(['__Host-sid']);
      const two = await jar.send('/blob/4000');
      expect(two.status).toBe(200);
      expect([...jar.cookies.keys()].sort()).toEqual(['__Host-sid.0', '__Host-sid.1']);
      // The unchunked cookie was cleared in the same response.
      expect(two.setCookie.some((c) => /^__Host-sid=; Max-Age=0/.test(c))).toBe(true);
      for (const line of two.setCookie) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(4096);
      expect((await jar.send('/count')).body).toBe('2');
      const three = await jar.send('/blob/7000');
      expect(three.status).toBe(200);
      expect([...jar.cookies.keys()].sort()).toEqual(['__Host-sid.0', '__Host-sid.1', '__Host-sid.2']);
      expect((await jar.send('/count')).body).toBe('3');
      // Shrinks back to two chunks: the third is deleted.
      const shrink2 = await jar.send('/blob/4000');
      expect(shrink2.setCookie.some((c) => /^__Host-sid\.2=; Max-Age=0/.test(c))).toBe(true);
      expect([...jar.cookies.keys()].sort()).toEqual(['__Host-sid.0', '__Host-sid.1']);
      // Shrinks to one cookie: every chunk is deleted.
      const shrink = await jar.send('/blob/10');
      expect(shrink.setCookie.filter((c) => /Max-Age=0/.test(c))).toHaveLength(2);
      expect([...jar.cookies.keys()]).toEqual(['__Host-sid']);
      expect((await jar.send('/count')).body).toBe('4');
      // Over the chunk limit: typed error.
      expect((await jar.send('/blob/11000')).status).toBe(500);
    });

    it('chunking: a missing, duplicated or reordered chunk gives anonymous and clears every chunk', async () => {
      const { url } = await start({ maxChunks: 3 });
      const jar = new Jar(url);
      await jar.send('/blob/7000');
      await jar.send('/count');
      const c = Object.fromEntries(jar.cookies);
      const variants = [
        `__Host-sid.0=${c['__Host-sid.0']}; __Host-sid.1=${c['__Host-sid.1']}`,
        `__Host-sid.0=${c['__Host-sid.0']}; __Host-sid.1=${c['__Host-sid.2']}; __Host-sid.2=${c['__Host-sid.1']}`,
        `__Host-sid.0=${c['__Host-sid.0']}; __Host-sid.0=${c['__Host-sid.0']}; __Host-sid.1=${c['__Host-sid.1']}; __Host-sid.2=${c['__Host-sid.2']}`,
        `__Host-sid.1=${c['__Host-sid.1']}; __Host-sid.2=${c['__Host-sid.2']}`,
        `__Host-sid.0=9.${c['__Host-sid.0']?.slice(2)}; __Host-sid.1=${c['__Host-sid.1']}; __Host-sid.2=${c['__Host-sid.2']}`,
      ];
      for (const cookie of variants) {
        const r = await request(`${url}/read`, { cookie });
        expect(r.status).toBe(200);
        expect(r.body).toBe('none');
        expect(r.setCookie.length).toBeGreaterThan(0);
        for (const line of r.setCookie) expect(line).toMatch(/Max-Age=0/);
      }
      expect((await jar.send('/read')).body).toBe('1');
      // A leftover extra chunk next to a valid set: the session works and the leftover is deleted.
      const two = new Jar(url);
      await two.send('/blob/4000');
      expect([...two.cookies.keys()].sort()).toEqual(['__Host-sid.0', '__Host-sid.1']);
      two.cookies.set('__Host-sid.2', 'leftover');
      const tidy = await two.send('/read'); // read-only: only the cleanup makes it re-issue
      expect(tidy.setCookie.some((l) => /^__Host-sid\.2=; Max-Age=0/.test(l))).toBe(true);
      expect([...two.cookies.keys()].sort()).toEqual(['__Host-sid.0', '__Host-sid.1']);
    });

    it('A04: two distinct valid session cookies give anonymous (no blind first-wins)', async () => {
      const { url, events } = await start();
      const victim = new Jar(url);
      const attacker = new Jar(url);
      await victim.send('/count');
      await attacker.send('/count');
      await attacker.send('/count');
      const r = await request(`${url}/read`, { cookie: `${main(attacker)}; ${main(victim)}` });
      expect(r.body).toBe('none');
      expect(events.some((e) => e.type === 'duplicate_cookie')).toBe(true);
      // Two copies of the same session are fine (the newer one wins).
      const old = main(victim);
      await victim.send('/count');
      expect((await request(`${url}/read`, { cookie: `${old}; ${main(victim)}` })).body).toBe('2');
    });

    it('without a revocation store, logout cannot revoke a copied cookie (documented limitation)', async () => {
      const { url } = await start();
      const jar = new Jar(url);
      await jar.send('/count');
      const stolen = main(jar);
      await jar.send('/logout');
      expect((await request(`${url}/read`, { cookie: stolen })).body).toBe('1');
      await expect(start().then((s) => s.mw.revokeUser('ann'))).rejects.toThrow(/revocation/);
    });

    it('with a revocation store, logout deny-lists the session ID: a copied cookie is dead', async () => {
      const store = new MemoryStore();
      const { url, events } = await start({ store });
      const jar = new Jar(url);
      await jar.send('/count');
      const stolen = main(jar);
      expect((await request(`${url}/read`, { cookie: stolen })).body).toBe('1');
      await jar.send('/logout');
      const replay = await request(`${url}/read`, { cookie: stolen });
      expect(replay.body).toBe('none');
      expect(replay.setCookie[0]).toMatch(/^__Host-sid=; Max-Age=0;/);
      expect(events.some((e) => e.type === 'revoked')).toBe(true);
      // req.session = null revokes too.
      const jar2 = new Jar(url);
      await jar2.send('/count');
      const copy = main(jar2);
      await jar2.send('/null');
      expect((await request(`${url}/read`, { cookie: copy })).body).toBe('none');
    });

    it('with a revocation store, regenerate() (login, privilege change) kills the previous cookie', async () => {
      const store = new MemoryStore();
      const { url } = await start({ store });
      const jar = new Jar(url);
      await jar.send('/count');
      const before = main(jar);
      await jar.send('/regenerate');
      expect((await request(`${url}/read`, { cookie: before })).body).toBe('none');
      expect((await jar.send('/read')).body).toBe('1');
    });

    it('revokeUser(): every cookie of the user issued before now is rejected; a new login works', async () => {
      const clock = new FakeClock(Date.UTC(2026, 0, 1));
      const store = new MemoryStore({ clock });
      const { url, mw } = await start({ store, clock });
      const login = (jar: Jar, user: string, role = 'user') =>
        jar.send('/login', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `user=${user}&role=${role}`,
        });
      const laptop = new Jar(url);
      const phone = new Jar(url);
      const other = new Jar(url);
      await login(laptop, 'ann');
      await login(phone, 'ann');
      await login(other, 'bob');
      clock.advance(1000);
      await mw.revokeUser('ann');
      expect((await laptop.send('/me')).status).toBe(401);
      expect((await phone.send('/me')).status).toBe(401);
      expect((await other.send('/me')).body).toBe('bob:user');
      clock.advance(1);
      await login(laptop, 'ann');
      expect((await laptop.send('/me')).body).toBe('ann:user');
      expect((await phone.send('/me')).status).toBe(401);
    });

    it("A42 rollback: yesterday's admin cookie replayed after a demotion is refused (revokeUser or authVersion)", async () => {
      const clock = new FakeClock(Date.UTC(2026, 0, 1));
      const store = new MemoryStore({ clock });
      const versions = new Map<string, number>([['ann', 1]]);
      const { url, mw } = await start({ store, clock, authVersion: (u) => versions.get(u) ?? 0 });
      const jar = new Jar(url);
      await jar.send('/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'user=ann&role=admin',
      });
      const adminCookie = main(jar);
      expect((await jar.send('/me')).body).toBe('ann:admin');
      // Demotion through the authorization version: no store needed for this check.
      clock.advance(HOUR);
      versions.set('ann', 2);
      expect((await request(`${url}/me`, { cookie: adminCookie })).status).toBe(401);
      // Re-login as a user, then demote again through revokeUser: the admin cookie stays dead.
      await jar.send('/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'user=ann&role=user',
      });
      expect((await jar.send('/me')).body).toBe('ann:user');
      versions.set('ann', 1);
      clock.advance(1000);
      await mw.revokeUser('ann');
      expect((await request(`${url}/me`, { cookie: adminCookie })).status).toBe(401);
    });

    it('a revocation store outage fails closed with 503 (never anonymous, never a 500)', async () => {
      const flaky = new FlakyStore(new MemoryStore());
      const { url } = await start({ store: flaky, storeTimeout: 200 });
      const jar = new Jar(url);
      await jar.send('/count');
      flaky.down = true;
      const r = await jar.send('/read');
      expect(r.status).toBe(503);
      expect(r.body).toMatch(/STORE_UNAVAILABLE/);
      // Requests without a cookie need no store.
      expect((await request(`${url}/read`)).status).toBe(200);
      flaky.down = false;
      expect((await jar.send('/read')).body).toBe('1');
      // Logout while the store is down fails (503) and changes nothing; retried, it works.
      const stolen = jar.header() as string;
      flaky.failWrites = true;
      const failed = await request(`${url}/logout`, { cookie: stolen });
      expect(failed.status).toBe(503);
      expect(failed.body).toBe('error:STORE_UNAVAILABLE');
      expect(failed.setCookie).toEqual([]);
      flaky.failWrites = false;
      expect((await request(`${url}/read`, { cookie: stolen })).body).toBe('1');
      await jar.send('/logout');
      expect((await request(`${url}/read`, { cookie: stolen })).body).toBe('none');
    });

    it('rolling: every response re-seals the cookie (moving the idle deadline)', async () => {
      const { url } = await start({ rolling: true });
      const jar = new Jar(url);
      await jar.send('/count');
      const before = main(jar);
      const r = await jar.send('/read');
      expect(r.body).toBe('1');
      expect(r.setCookie).toHaveLength(1);
      expect(main(jar)).not.toBe(before);
    });
  });
}

describe('stateless engine: the synchronous path (loadNow / commitNow)', () => {
  const cookieOf = (setCookie: string[]) => (setCookie[0] as string).split(';')[0] as string;

  it('answers without a promise when nothing outside the process has a say, with what load and commit give', async () => {
    const engine = createStatelessSessions({ secret: SECRET, appId: 'sync' });
    const fresh = engine.loadNow({ secure: true });
    expect(fresh).not.toBeInstanceOf(Promise);
    if (fresh instanceof Promise) return;
    fresh.session.views = 1;
    const written = engine.commitNow(fresh);
    expect(written).not.toBeInstanceOf(Promise);
    if (written instanceof Promise) return;
    const cookie = cookieOf(written.setCookie);

    const now = engine.loadNow({ cookie, secure: true });
    const later = await engine.load({ cookie, secure: true });
    expect(now).not.toBeInstanceOf(Promise);
    if (now instanceof Promise) return;
    expect([now.id, now.session.views]).toEqual([later.id, 1]);
    // Nothing changed: no cookie, at once.
    expect(engine.commitNow(now)).toEqual({ setCookie: [] });
    // A change: sealed at once, and it opens to the same session as the asynchronous commit's.
    now.session.views = 2;
    later.session.views = 2;
    const sync = engine.commitNow(now);
    expect(sync).not.toBeInstanceOf(Promise);
    if (sync instanceof Promise) return;
    const viaSync = await engine.load({ cookie: cookieOf(sync.setCookie), secure: true });
    const viaAsync = await engine.load({ cookie: cookieOf((await engine.commit(later)).setCookie), secure: true });
    expect([viaSync.id, viaSync.session.views]).toEqual([viaAsync.id, viaAsync.session.views]);
  });

  it('goes through a promise when a revocation store or authVersion has a say, or another step is running', async () => {
    const plain = createStatelessSessions({ secret: SECRET, appId: 'sync' });
    const state = await plain.load({ secure: true });
    state.session.views = 1;
    const cookie = cookieOf((await plain.commit(state)).setCookie);
    const revocable = createStatelessSessions({ secret: SECRET, appId: 'sync', store: new MemoryStore() });
    expect(revocable.loadNow({ cookie, secure: true })).toBeInstanceOf(Promise);
    const loaded = await revocable.load({ cookie, secure: true });
    expect(loaded.session.views).toBe(1);

    const versioned = createStatelessSessions({ secret: SECRET, appId: 'sync', authVersion: () => 1 });
    const user = await versioned.load({ secure: true });
    user.setUser('ada');
    const sealing = versioned.commitNow(user);
    expect(sealing).toBeInstanceOf(Promise);
    const userCookie = cookieOf((await sealing).setCookie);
    expect(versioned.loadNow({ cookie: userCookie, secure: true })).toBeInstanceOf(Promise);
    expect((await versioned.load({ cookie: userCookie, secure: true })).userId).toBe('ada');

    const busy = plain.loadNow({ cookie, secure: true });
    if (busy instanceof Promise) throw new Error('expected a synchronous load');
    busy.session.views = 5;
    const saving = busy.save();
    const committing = plain.commitNow(busy);
    expect(committing).toBeInstanceOf(Promise);
    await saving;
    const reopened = await plain.load({ cookie: cookieOf((await committing).setCookie), secure: true });
    expect(reopened.session.views).toBe(5);
  });

  it('refuses to commit a session state another engine loaded', async () => {
    const one = createStatelessSessions({ secret: SECRET, appId: 'sync' });
    const other = createStatelessSessions({ secret: SECRET, appId: 'sync' });
    const serverSide = createSessions({ secret: SECRET, store: new MemoryStore() });
    const foreign = [await other.load({ secure: true }), await serverSide.load({ secure: true })];
    for (const state of foreign) {
      state.session.views = 1;
      for (const commit of [() => one.commit(state), async () => one.commitNow(state)]) {
        const err = await commit().then(
          () => null,
          (e: unknown) => e,
        );
        expect(isSeshError(err, 'NO_SESSION')).toBe(true);
      }
    }
  });
});
