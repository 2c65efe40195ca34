import { setTimeout as sleep } from 'node:timers/promises';
import type { Express, NextFunction, Request, Response } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { session } from '../src/adapters/express/index.js';
import { createSessions, type SessionPatch, type Store, type StoredSession } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { FakeClock } from '../src/testing/index.js';
import { Client, cookiePair, expressVersions, listen, type Running, request } from './support/http.js';

declare module '../src/index.js' {
  interface SessionData {
    username: string;
    user: string;
    late: string;
    views: number;
    cart: string[];
    [key: `k${number}`]: number;
  }
}

const SECRET = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';
const OLD_SECRET = 'Gm3Qx8Vb2Nc7Lr5Tz9Wd1Hk4Jp6Fs0Yq';

/** A store that counts calls and can be slowed down or broken, delegating to a real MemoryStore. */
class ObservedStore implements Store {
  calls: Record<string, number> = { get: 0, create: 0, patch: 0, touch: 0, destroy: 0 };
  delay = 0;
  down = false;
  constructor(readonly inner: MemoryStore) {}
  async #run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    this.calls[op] = (this.calls[op] ?? 0) + 1;
    if (this.delay) await sleep(this.delay);
    if (this.down) throw new Error('connection refused');
    return fn();
  }
  get(key: string) {
    return this.#run('get', () => this.inner.get(key));
  }
  create(key: string, s: StoredSession) {
    return this.#run('create', () => this.inner.create(key, s));
  }
  patch(key: string, p: SessionPatch) {
    return this.#run('patch', () => this.inner.patch(key, p));
  }
  touch(key: string, l: number, e: number) {
    return this.#run('touch', () => this.inner.touch(key, l, e));
  }
  destroy(key: string) {
    return this.#run('destroy', () => this.inner.destroy(key));
  }
  writes(): number {
    return (this.calls.create ?? 0) + (this.calls.patch ?? 0) + (this.calls.touch ?? 0);
  }
}

const running: Running[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

for (const { name, express } of expressVersions) {
  describe(name, () => {
    function build(options: Parameters<typeof session>[0], routes: (app: Express) => void) {
      const app = express();
      app.use(express.urlencoded({ extended: false }));
      app.use(session(options));
      routes(app);
      app.use((err: Error & { status?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
        res.status(err.status ?? 500).send(`error:${err.code ?? err.message}`);
      });
      return app;
    }

    /** `/login` puts a user in the session, `/count` counts views in it. */
    function loginAndCount(a: Express) {
      a.get('/login', (req, res) => {
        req.session.user = 'ada';
        res.send('ok');
      });
      a.get('/count', (req, res) => {
        req.session.views = (req.session.views ?? 0) + 1;
        res.send(String(req.session.views));
      });
    }

    async function start(options: Partial<Parameters<typeof session>[0]> = {}, extra?: (app: Express) => void) {
      const inner = new MemoryStore({ clock: options.clock });
      const store = new ObservedStore(inner);
      const app = build({ secret: SECRET, store, ...options }, (a) => {
        a.post('/login', async (req, res) => {
          await req.session.regenerate();
          req.session.username = String(req.body.username);
          res.redirect('/profile');
        });
        a.get('/profile', (req, res) => {
          if (!req.session.username) {
            res.status(401).send('anonymous');
            return;
          }
          res.send(`hello ${req.session.username}`);
        });
        a.get('/logout', async (req, res) => {
          await req.session.destroy();
          res.redirect('/');
        });
        a.get('/count', (req, res) => {
          req.session.views = (req.session.views ?? 0) + 1;
          res.send(String(req.session.views));
        });
        a.get('/read', (req, res) => {
          res.send(String(req.session.views ?? 'none'));
        });
        a.get('/set/:k', (req, res) => {
          (req.session as unknown as Record<string, number>)[req.params.k as string] = 1;
          res.send('ok');
        });
        a.get('/keys', (req, res) => {
          res.json(Object.keys(req.session).sort());
        });
        a.get('/regenerate', async (req, res) => {
          await req.session.regenerate();
          res.send(req.session.id);
        });
        extra?.(a);
      });
      const r = await listen(app);
      running.push(r);
      return { url: r.url, store, inner };
    }

    it('runs the seed exercise: login sets the username, profile reads it, logout kills the old cookie', async () => {
      const { url } = await start();
      const c = new Client(url);
      expect((await c.send('/profile')).status).toBe(401);
      const login = await c.send('/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=ann',
      });
      expect(login.status).toBe(302);
      expect(login.setCookie).toHaveLength(1);
      expect(login.setCookie[0]).toMatch(/^__Host-sid=v1\.[\w-]{43}\.[\w-]{43}; Path=\/; Secure; HttpOnly; SameSite=Lax$/);
      expect(login.headers.get('cache-control')).toBe('no-store');
      const profile = await c.send('/profile');
      expect(profile.body).toBe('hello ann');
      const old = c.cookie;
      const logout = await c.send('/logout');
      expect(logout.status).toBe(302);
      expect(logout.setCookie[0]).toMatch(/^__Host-sid=; Max-Age=0;/);
      expect(c.cookie).toBeUndefined();
      const replay = await request(`${url}/profile`, { cookie: old });
      expect(replay.status).toBe(401);
    });

    it('keeps a counter across requests and writes nothing when nothing changed', async () => {
      const { url, store } = await start();
      const c = new Client(url);
      expect((await c.send('/read')).setCookie).toEqual([]);
      expect(store.writes()).toBe(0);
      for (let i = 1; i <= 3; i++) expect((await c.send('/count')).body).toBe(String(i));
      const writesBefore = store.writes();
      const read = await c.send('/read');
      expect(read.body).toBe('3');
      expect(read.setCookie).toEqual([]);
      expect(store.writes()).toBe(writesBefore);
    });

    it('does not create a session for a request that writes nothing (saveUninitialized false)', async () => {
      const { url, store } = await start();
      for (let i = 0; i < 5; i++) expect((await request(`${url}/read`)).setCookie).toEqual([]);
      expect(store.calls.create).toBe(0);
      expect(store.calls.get).toBe(0);
    });

    it('throttles touches: a read-only request writes at most once per touchAfter', async () => {
      const clock = new FakeClock();
      const { url, store } = await start({ clock, touchAfter: 60_000 });
      const c = new Client(url);
      await c.send('/count');
      const base = store.writes();
      await c.send('/read');
      clock.advance(30_000);
      await c.send('/read');
      expect(store.writes()).toBe(base);
      clock.advance(31_000);
      await c.send('/read');
      expect(store.calls.touch).toBe(1);
      await c.send('/read');
      expect(store.calls.touch).toBe(1);
    });

    it('regenerate gives a new ID and kills the old one', async () => {
      const { url } = await start();
      const c = new Client(url);
      await c.send('/count');
      const before = c.cookie as string;
      const r = await c.send('/regenerate');
      expect(r.setCookie).toHaveLength(1);
      expect(c.cookie).not.toBe(before);
      expect((await c.send('/read')).body).toBe('1');
      const replay = await request(`${url}/read`, { cookie: before });
      expect(replay.body).toBe('none');
    });

    it('expires on idle timeout from server-side times, whatever the cookie says', async () => {
      const clock = new FakeClock();
      const { url } = await start({ clock, idleTimeout: 10 * 60_000, absoluteTimeout: 60 * 60_000, touchAfter: 1000 });
      const c = new Client(url);
      await c.send('/count');
      clock.advance(9 * 60_000);
      expect((await c.send('/read')).body).toBe('1');
      clock.advance(9 * 60_000); // touched 9 minutes ago: still alive
      expect((await c.send('/read')).body).toBe('1');
      clock.advance(10 * 60_000 + 1);
      const expired = await c.send('/read');
      expect(expired.body).toBe('none');
      expect(expired.setCookie[0]).toMatch(/Max-Age=0/);
    });

    it('expires on absolute timeout even when the session stays active', async () => {
      const clock = new FakeClock();
      const { url } = await start({ clock, idleTimeout: 10 * 60_000, absoluteTimeout: 30 * 60_000, touchAfter: 1000 });
      const c = new Client(url);
      await c.send('/count');
      for (let i = 0; i < 5; i++) {
        clock.advance(5 * 60_000);
        expect((await c.send('/count')).body).toBe(String(i + 2));
      }
      clock.advance(5 * 60_000);
      expect((await c.send('/read')).body).toBe('none');
    });

    it('treats tampered, truncated, garbage and wrong-key cookies as no session, without store reads', async () => {
      const { url, store } = await start();
      const c = new Client(url);
      await c.send('/count');
      const good = c.cookie as string;
      const value = good.slice('__Host-sid='.length);
      const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      const bad = [
        flip(value, 5),
        flip(value, value.length - 1),
        value.slice(0, -1),
        value.slice(0, 46),
        `${value}x`,
        `${value}.x`,
        value.replace('v1.', 'v2.'),
        '',
        'garbage',
        '%E0%A4%A',
        's:abc.def',
      ];
      const getsBefore = store.calls.get as number;
      for (const v of bad) {
        const r = await request(`${url}/read`, { cookie: `__Host-sid=${v}` });
        expect(r.status).toBe(200);
        expect(r.body).toBe('none');
      }
      expect(store.calls.get).toBe(getsBefore);

      // A cookie signed with a key that is not in the ring.
      const other = await (async () => {
        const s = await start({ secret: OLD_SECRET });
        const oc = new Client(s.url);
        await oc.send('/count');
        return oc.cookie as string;
      })();
      const r = await request(`${url}/read`, { cookie: other });
      expect(r.body).toBe('none');
      expect(store.calls.get).toBe(getsBefore);
    });

    it('accepts a cookie signed with an older key of the ring and re-issues it under the current key', async () => {
      const inner = new MemoryStore();
      const oldApp = build({ secret: OLD_SECRET, store: inner }, (a) => {
        a.get('/count', (req, res) => {
          req.session.views = (req.session.views ?? 0) + 1;
          res.send(String(req.session.views));
        });
      });
      const newApp = build({ secret: [SECRET, OLD_SECRET], store: inner }, (a) => {
        a.get('/read', (req, res) => {
          res.send(String(req.session.views ?? 'none'));
        });
      });
      const o = await listen(oldApp);
      const n = await listen(newApp);
      running.push(o, n);
      const c = new Client(o.url);
      await c.send('/count');
      const oldCookie = c.cookie as string;
      const r = await request(`${n.url}/read`, { cookie: oldCookie });
      expect(r.body).toBe('1');
      const reissued = cookiePair(r);
      expect(reissued).toBeDefined();
      expect(reissued).not.toBe(oldCookie);
      // Same session ID, new MAC.
      expect(reissued?.split('.')[1]).toBe(oldCookie.split('.')[1]);
      const again = await request(`${n.url}/read`, { cookie: reissued });
      expect(again.body).toBe('1');
      expect(again.setCookie).toEqual([]);
    });

    it('keeps every key when 100 parallel requests on one session each set a distinct key', async () => {
      const { url } = await start();
      const c = new Client(url);
      await c.send('/count');
      const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => request(`${url}/set/k${i}`, { cookie: c.cookie })));
      expect(replies.every((r) => r.status === 200)).toBe(true);
      const keys = JSON.parse((await c.send('/keys')).body) as string[];
      for (let i = 0; i < 100; i++) expect(keys).toContain(`k${i}`);
      expect(keys).toContain('views');
    });

    it('finishes the store write before the response headers leave (redirect right after a write)', async () => {
      const { url, store, inner } = await start(undefined, (a) => {
        a.get('/write-and-redirect', (req, res) => {
          req.session.username = 'bob';
          res.redirect('/profile');
        });
      });
      store.delay = 150;
      const r = await request(`${url}/write-and-redirect`);
      expect(r.status).toBe(302);
      // The response could only arrive after the create resolved: the record is already there.
      const id = (cookiePair(r) as string).split('.')[1] as string;
      const { createSessions } = await import('../src/index.js');
      const key = createSessions({ secret: SECRET, store: inner }).storeKey(id);
      const stored = await inner.get(key);
      expect(stored?.data.username).toBe('bob');
    });

    it('with a store that reads synchronously: a read-only request sets nothing, and a change made right after res.send() is still written', async () => {
      const inner = new MemoryStore();
      const patches: string[] = [];
      const origPatch = inner.patch.bind(inner);
      inner.patch = (key, p) => {
        patches.push(Object.keys(p.set ?? {}).join(','));
        return origPatch(key, p);
      };
      const app = build({ secret: SECRET, store: inner }, (a) => {
        a.get('/login', (req, res) => {
          req.session.user = 'ada';
          res.send('ok');
        });
        a.get('/read', (req, res) => {
          res.send(String(req.session.user) + String(req.session.late ?? ''));
        });
        a.get('/late', (req, res) => {
          res.send('sent');
          req.session.late = '+late';
        });
      });
      const r = await listen(app);
      running.push(r);
      const c = new Client(r.url);
      await c.send('/login');
      const read = await c.send('/read');
      expect(read.body).toBe('ada');
      expect(read.setCookie).toEqual([]);
      expect(patches).toEqual([]);
      const late = await c.send('/late');
      expect(late.body).toBe('sent');
      expect(late.setCookie).toEqual([]);
      for (let i = 0; i < 20 && patches.length === 0; i++) await sleep(5);
      expect(patches).toEqual(['late']);
      expect((await c.send('/read')).body).toBe('ada+late');
    });

    it('with a store whose synchronous read throws: a clean 503, no session, no cookie', async () => {
      const inner = new MemoryStore();
      const app = build({ secret: SECRET, store: inner }, (a) => {
        a.get('/login', (req, res) => {
          req.session.user = 'ada';
          res.send('ok');
        });
        a.get('/read', (req, res) => {
          res.send(String(req.session.user));
        });
      });
      const r = await listen(app);
      running.push(r);
      const c = new Client(r.url);
      await c.send('/login');
      inner.getSync = () => {
        throw new Error('disk I/O error');
      };
      const down = await c.send('/read');
      expect(down.status).toBe(503);
      expect(down.setCookie).toEqual([]);
      expect(down.body).not.toContain('ada');
    });

    it('with a store that writes synchronously: creates, patches and touches go through createSync/patchSync/touchSync and are stored before the response leaves', async () => {
      const clock = new FakeClock();
      const inner = new MemoryStore({ clock });
      const calls: string[] = [];
      for (const m of ['create', 'patch', 'touch', 'createSync', 'patchSync', 'touchSync'] as const) {
        const orig = inner[m].bind(inner) as (...args: unknown[]) => unknown;
        (inner as unknown as Record<string, unknown>)[m] = (...args: unknown[]) => {
          calls.push(m);
          return orig(...args);
        };
      }
      const app = build({ secret: SECRET, store: inner, clock, touchAfter: 60_000 }, (a) => {
        loginAndCount(a);
        a.get('/read', (req, res) => {
          res.send(String(req.session.user) + String(req.session.late ?? ''));
        });
        a.get('/late', (req, res) => {
          req.session.views = 100;
          res.send('sent');
          req.session.late = '+late';
        });
      });
      const r = await listen(app);
      running.push(r);
      const c = new Client(r.url);
      const key = () => {
        const id = (c.cookie as string).split('.')[1] as string;
        return createSessions({ secret: SECRET, store: inner }).storeKey(id);
      };
      const login = await c.send('/login');
      expect(login.setCookie).toHaveLength(1);
      expect(calls).toEqual(['createSync']);
      expect(inner.getSync(key())?.data).toEqual({ user: 'ada' });
      expect((await c.send('/count')).body).toBe('1');
      expect(calls).toEqual(['createSync', 'patchSync']);
      expect(inner.getSync(key())?.data).toEqual({ user: 'ada', views: 1 });
      clock.advance(61_000);
      const touched = await c.send('/read');
      expect(touched.body).toBe('ada');
      expect(calls).toEqual(['createSync', 'patchSync', 'touchSync']);
      expect(inner.getSync(key())?.lastSeen).toBe(clock.now());
      // A change after res.send() in the same step still reaches the store, a microtask later.
      const late = await c.send('/late');
      expect(late.body).toBe('sent');
      for (let i = 0; i < 20 && !inner.getSync(key())?.data.late; i++) await sleep(5);
      expect(inner.getSync(key())?.data).toEqual({ user: 'ada', views: 100, late: '+late' });
      expect((await c.send('/read')).body).toBe('ada+late');
    });

    it('with a store whose synchronous write throws: a clean 503, the stored session unchanged', async () => {
      const inner = new MemoryStore();
      const errors: unknown[] = [];
      const paths: string[] = [];
      const app = build(
        {
          secret: SECRET,
          store: inner,
          onError: (e, req) => {
            errors.push(e);
            paths.push(req.path);
          },
        },
        (a) => {
          loginAndCount(a);
        },
      );
      const r = await listen(app);
      running.push(r);
      const fresh = new Client(r.url);
      const c = new Client(r.url);
      await c.send('/login');
      expect((await c.send('/count')).body).toBe('1');
      inner.patchSync = () => {
        throw new Error('disk I/O error');
      };
      inner.createSync = () => {
        throw new Error('disk I/O error');
      };
      const down = await c.send('/count');
      expect(down.status).toBe(503);
      expect(down.body).toBe('Service Unavailable');
      expect(down.setCookie).toEqual([]);
      const refused = await fresh.send('/login');
      expect(refused.status).toBe(503);
      expect(refused.setCookie).toEqual([]);
      expect(inner.size).toBe(1);
      expect(errors).toHaveLength(2);
      expect(errors.every((e) => (e as { status?: number }).status === 503)).toBe(true);
      // onError is told which request failed.
      expect(paths).toEqual(['/count', '/login']);
      delete (inner as { patchSync?: unknown }).patchSync;
      delete (inner as { createSync?: unknown }).createSync;
      expect((await c.send('/count')).body).toBe('2');
    });

    it('answers 503 fast when the store is down, and never falls back to an anonymous session', async () => {
      const { url, store } = await start({ storeTimeout: 300 });
      const c = new Client(url);
      await c.send('/count');
      store.down = true;
      const r = await c.send('/count');
      expect(r.status).toBe(503);
      expect(r.setCookie).toEqual([]);
      store.down = false;
      store.delay = 2_000; // hung store: the timeout answers
      const t0 = Date.now();
      const hung = await c.send('/read');
      expect(hung.status).toBe(503);
      expect(Date.now() - t0).toBeLessThan(1_500);
      store.delay = 0;
      expect((await c.send('/count')).body).toBe('2');
    });

    it('answers 503 when the write after the route fails, instead of pretending it was saved', async () => {
      const { url, store } = await start({ storeTimeout: 300, onError: () => {} });
      const c = new Client(url);
      await c.send('/count');
      store.inner.patch = async () => {
        throw new Error('disk full');
      };
      const r = await c.send('/count');
      expect(r.status).toBe(503);
      expect(r.body).toBe('Service Unavailable');
    });

    it('refuses to write reserved names with a typed error', async () => {
      const { url } = await start(undefined, (a) => {
        a.get('/reserved', (req, res) => {
          (req.session as unknown as Record<string, unknown>).id = 'forged';
          res.send('unreachable');
        });
        a.get('/proto', (req, res) => {
          // biome-ignore lint/suspicious/noProto: the test writes __proto__ on purpose (A29).
          (req.session as unknown as Record<string, unknown>).__proto__ = { isAdmin: true };
          res.send('unreachable');
        });
      });
      expect((await request(`${url}/reserved`)).body).toBe('error:RESERVED_KEY');
      expect((await request(`${url}/proto`)).body).toBe('error:RESERVED_KEY');
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    });

    it('detects in-place mutation of objects read from the session', async () => {
      const { url } = await start(undefined, (a) => {
        a.get('/cart/:item', (req, res) => {
          if (!req.session.cart) req.session.cart = [];
          req.session.cart.push(String(req.params.item));
          res.send(req.session.cart.join(','));
        });
      });
      const c = new Client(url);
      await c.send('/cart/a');
      await c.send('/cart/b');
      expect((await c.send('/cart/c')).body).toBe('a,b,c');
    });

    it("appends its cookie to the app's own Set-Cookie headers, also with writeHead(status, array)", async () => {
      const { url } = await start(undefined, (a) => {
        a.get('/raw', (req, res) => {
          req.session.views = 1;
          res.setHeader('Set-Cookie', ['a=1']);
          res.writeHead(200, ['Set-Cookie', 'b=2', 'Set-Cookie', 'c=3', 'Content-Type', 'text/plain']);
          res.end('raw');
        });
        a.get('/stream', (req, res) => {
          req.session.views = 7;
          res.write('one,');
          res.write('two,');
          res.end('three');
        });
      });
      const r = await request(`${url}/raw`);
      expect(r.body).toBe('raw');
      const names = r.setCookie.map((c) => c.split('=')[0]);
      expect(names).toEqual(expect.arrayContaining(['a', 'b', 'c', '__Host-sid']));
      const s = await request(`${url}/stream`);
      expect(s.body).toBe('one,two,three');
      expect(cookiePair(s)).toBeDefined();
    });

    it('does not send the Secure cookie over plain http to a non-local host, unless trust proxy says https', async () => {
      const { url } = await start({ onEvent: () => {} });
      const plain = await request(`${url}/count`, { headers: { host: 'example.com' } });
      expect(plain.status).toBe(200);
      expect(plain.setCookie).toEqual([]);
      // X-Forwarded-Proto from a client is ignored while trust proxy is off.
      const spoofed = await request(`${url}/count`, { headers: { host: 'example.com', 'x-forwarded-proto': 'https' } });
      expect(spoofed.setCookie).toEqual([]);
      const app = build({ secret: SECRET, store: new MemoryStore() }, (a) => {
        a.get('/count', (req, res) => {
          req.session.views = 1;
          res.send('ok');
        });
      });
      app.set('trust proxy', 'loopback');
      const r = await listen(app);
      running.push(r);
      const proxied = await request(`${r.url}/count`, { headers: { host: 'example.com', 'x-forwarded-proto': 'https' } });
      expect(cookiePair(proxied)).toBeDefined();
    });
  });
}
