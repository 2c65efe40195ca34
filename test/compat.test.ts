/**
 * sesh/express-session beyond the differential suite: cross-compatibility with express-session
 * cookies and stores (express-session MemoryStore and connect-redis on a real redis-server), the
 * fixes over express-session, store events, option errors, CommonJS shape, and property tests of
 * the cookie signing and Cookie-header parsing against the libraries express-session uses.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisStore } from 'connect-redis';
import { build } from 'esbuild';
import type { Express, NextFunction, Request, Response } from 'express';
import expressSession from 'express-session';
import fc from 'fast-check';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseCookieHeader, serializeCookie } from '../src/compat/cookie-header.js';
import session, { Cookie, MemoryStore, Session, Store } from '../src/compat/index.js';
import { sign, unsign } from '../src/compat/signature.js';
import { isSeshError } from '../src/index.js';
import { closeAll } from './compat-harness.js';
import { expressVersions, listen, type Running, request } from './support/http.js';
import { type RedisServer, startRedis } from './support/redis.js';

const require = createRequire(import.meta.url);
const esDir = require.resolve('express-session');
const cookieSignature = require(require.resolve('cookie-signature', { paths: [esDir] })) as {
  sign(v: string, s: string): string;
  unsign(v: string, s: string): string | false;
};
const cookie07 = require(require.resolve('cookie', { paths: [esDir] })) as {
  parse(s: string): Record<string, string>;
  serialize(n: string, v: string, o?: object): string;
};

// biome-ignore lint/suspicious/noExplicitAny: req.session is untyped in these apps (two libraries).
type AnyReq = Request & { session: any; sessionID: string; sessionStore: any };
const SECRET = 'keyboard cat';
const sessionsOf = (store: unknown) => (store as { sessions: Record<string, string> }).sessions;

/**
 * `/slow` parks here after its session has loaded, until the test opens the gate: the logout race
 * is then ordered by the test, not by sleeps that a loaded machine can outrun.
 */
let parked: { arrive: () => void; opened: Promise<void> } | undefined;
function park(): { arrived: Promise<void>; open: () => void } {
  let arrive!: () => void;
  let open!: () => void;
  const arrived = new Promise<void>((r) => {
    arrive = r;
  });
  const opened = new Promise<void>((r) => {
    open = r;
  });
  parked = { arrive, opened };
  return { arrived, open };
}

function app(express: (typeof expressVersions)[number]['express'], mw: unknown, extra?: (a: Express) => void): Express {
  const a = express();
  a.use(mw as never);
  const r = (fn: (req: AnyReq, res: Response, next: NextFunction) => unknown) => (req: Request, res: Response, next: NextFunction) =>
    fn(req as AnyReq, res, next);
  a.get(
    '/set/:v',
    r((req, res) => {
      req.session.v = req.params.v;
      res.json({ v: req.session.v });
    }),
  );
  a.get(
    '/get',
    r((req, res) => res.json({ v: req.session?.v ?? null, has: req.session !== undefined, id: req.sessionID ?? null })),
  );
  a.get(
    '/destroy',
    r((req, res, next) => req.session.destroy((err: unknown) => (err ? next(err) : res.send('bye')))),
  );
  a.get(
    '/redirect',
    r((req, res) => {
      req.session.v = 'redirected';
      res.redirect('/get');
    }),
  );
  a.get(
    '/slow',
    r(async (req, res) => {
      const gate = parked;
      parked = undefined;
      if (gate) {
        gate.arrive();
        await gate.opened;
      }
      req.session.late = 1;
      res.send('slow done');
    }),
  );
  a.get(
    '/stream',
    r((req, res) => {
      res.write('a');
      req.session.afterFirstWrite = true;
      setTimeout(() => res.end('b'), 20);
    }),
  );
  a.get(
    '/head',
    r((req, res) => {
      req.session.v = 'head';
      res.writeHead(201, { 'Set-Cookie': 'app=1', 'Content-Type': 'text/plain' });
      res.end('created');
    }),
  );
  a.get(
    '/regen',
    r((req, res, next) =>
      req.session.regenerate((err: unknown) => {
        if (err) return next(err);
        req.session.v = 'regen';
        res.json({ id: req.sessionID, same: req.session.id === req.sessionID, isSession: req.session instanceof Session });
      }),
    ),
  );
  a.get(
    '/reload',
    r((req, res, next) => {
      req.session.v = 'unsaved';
      req.session.reload((err: unknown) => (err ? next(err) : res.json({ v: req.session.v ?? null })));
    }),
  );
  a.get(
    '/store-is',
    r((req, res) => res.json({ same: req.sessionStore === (mw as { store?: unknown }).store })),
  );
  extra?.(a);
  a.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).send(`error:${err.message}`);
  });
  return a;
}

const pairOf = (setCookie: string[], name = 'connect.sid') => setCookie.find((l) => l.startsWith(`${name}=`))?.split(';')[0];

let redis: RedisServer | undefined;
let redisClient: ReturnType<typeof createClient> | undefined;
beforeAll(async () => {
  redis = await startRedis();
  redisClient = createClient({ url: redis.url });
  await redisClient.connect();
}, 120_000);
afterAll(async () => {
  await redisClient?.quit().catch(() => {});
  await redis?.dispose();
});

for (const { name, express } of expressVersions) {
  describe(`sesh/express-session (${name})`, () => {
    const servers: Running[] = [];
    const start = async (a: Express) => {
      const s = await listen(a);
      servers.push(s);
      return s;
    };
    afterAll(() => closeAll(servers));

    it('accepts cookies minted by express-session on the same store, and the other way round', async () => {
      const store = new expressSession.MemoryStore();
      const opts = { secret: SECRET, resave: false, saveUninitialized: false, store };
      const oracle = await start(app(express, expressSession(opts)));
      const ours = await start(app(express, session(opts)));
      const minted = pairOf((await request(`${oracle.url}/set/from-es`)).setCookie) as string;
      expect((await request(`${ours.url}/get`, { cookie: minted })).body).toContain('"v":"from-es"');
      const back = pairOf((await request(`${ours.url}/set/from-sesh`)).setCookie) as string;
      expect((await request(`${oracle.url}/get`, { cookie: back })).body).toContain('"v":"from-sesh"');
      // Writes by one are seen by the other with the same cookie.
      await request(`${ours.url}/set/changed`, { cookie: minted });
      expect((await request(`${oracle.url}/get`, { cookie: minted })).body).toContain('"v":"changed"');
    });

    it('runs connect-redis unchanged, cross-compatible with express-session on the same Redis', async () => {
      const prefix = `compat${name.replace(/\W/g, '')}:`;
      const opts = () => ({
        secret: [SECRET, 'older'],
        resave: false,
        saveUninitialized: false,
        store: new RedisStore({ client: redisClient, prefix }),
      });
      const ours = await start(app(express, session(opts())));
      const oracle = await start(app(express, expressSession(opts())));
      const r1 = await request(`${ours.url}/set/in-redis`);
      const c = pairOf(r1.setCookie) as string;
      const id = decodeURIComponent(c.split('=')[1] as string)
        .slice(2)
        .split('.')[0] as string;
      const raw = await (redisClient as NonNullable<typeof redisClient>).get(`${prefix}${id}`);
      expect(JSON.parse(raw as string)).toMatchObject({ v: 'in-redis', cookie: { path: '/', httpOnly: true } });
      expect((await request(`${oracle.url}/get`, { cookie: c })).body).toContain('"v":"in-redis"');
      await request(`${ours.url}/destroy`, { cookie: c });
      expect(await (redisClient as NonNullable<typeof redisClient>).get(`${prefix}${id}`)).toBeNull();
    });

    it('finishes the store write before the response headers leave (redirect right after a login)', async () => {
      const store = new MemoryStore();
      const set = store.set.bind(store);
      store.set = (sid, sess, cb) => {
        setTimeout(() => set(sid, sess, cb), 150);
      };
      const s = await start(app(express, session({ secret: SECRET, resave: false, saveUninitialized: false, store })));
      const { request: send } = await import('node:http');
      const storedAtHeaders = await new Promise<string>((resolve, reject) => {
        const req = send(`${s.url}/redirect`, (res) => {
          resolve(JSON.stringify(sessionsOf(store)));
          res.resume();
        });
        req.on('error', reject);
        req.end();
      });
      expect(storedAtHeaders).toContain('redirected');
    });

    it('does not resurrect a session destroyed (logout) while a slow request on it was running', async () => {
      const store = new MemoryStore();
      const s = await start(app(express, session({ secret: SECRET, resave: false, saveUninitialized: false, store })));
      const c = pairOf((await request(`${s.url}/set/x`)).setCookie) as string;
      const gate = park();
      const slow = request(`${s.url}/slow`, { cookie: c });
      await gate.arrived; // the slow request has loaded the session
      expect((await request(`${s.url}/destroy`, { cookie: c })).body).toBe('bye');
      gate.open();
      const reply = await slow;
      expect(reply.body).toBe('slow done');
      expect(reply.setCookie).toEqual([]);
      expect(Object.keys(sessionsOf(store))).toEqual([]);
    });

    it('express-session itself does resurrect it (the defect the previous test guards against)', async () => {
      const store = new expressSession.MemoryStore();
      const s = await start(app(express, expressSession({ secret: SECRET, resave: false, saveUninitialized: false, store })));
      const c = pairOf((await request(`${s.url}/set/x`)).setCookie) as string;
      const gate = park();
      const slow = request(`${s.url}/slow`, { cookie: c });
      await gate.arrived;
      expect((await request(`${s.url}/destroy`, { cookie: c })).body).toBe('bye');
      expect(Object.keys(sessionsOf(store))).toHaveLength(0);
      gate.open();
      await slow;
      // The destroyed session is back, under the same ID, with the slow request's write.
      const [sid] = Object.keys(sessionsOf(store));
      expect(sid).toBe(
        decodeURIComponent(c.split('=')[1] as string)
          .slice(2)
          .split('.')[0],
      );
      expect(JSON.parse(sessionsOf(store)[sid as string] as string)).toMatchObject({ v: 'x', late: 1 });
    });

    it('saves a change made after the first write of a streamed response', async () => {
      const store = new MemoryStore();
      const s = await start(app(express, session({ secret: SECRET, resave: false, saveUninitialized: false, store })));
      const reply = await request(`${s.url}/stream`);
      expect(reply.body).toBe('ab');
      expect(Object.values(sessionsOf(store)).join()).toContain('afterFirstWrite');
    });

    it("keeps the app's own Set-Cookie from writeHead next to the session cookie", async () => {
      const s = await start(app(express, session({ secret: SECRET, resave: false, saveUninitialized: false })));
      const reply = await request(`${s.url}/head`);
      expect(reply.status).toBe(201);
      expect(reply.setCookie[0]).toBe('app=1');
      expect(pairOf(reply.setCookie)).toMatch(/^connect\.sid=s%3A[\w-]{32}\./);
    });

    it('regenerate gives a new Session and ID; reload restores the stored data', async () => {
      const store = new MemoryStore();
      const s = await start(app(express, session({ secret: SECRET, resave: false, saveUninitialized: false, store })));
      const c = pairOf((await request(`${s.url}/set/kept`)).setCookie) as string;
      const oldId = decodeURIComponent(c.split('=')[1] as string)
        .slice(2)
        .split('.')[0] as string;
      const regen = await request(`${s.url}/regen`, { cookie: c });
      const body = JSON.parse(regen.body) as { id: string; same: boolean; isSession: boolean };
      expect(body).toMatchObject({ same: true, isSession: true });
      expect(body.id).not.toBe(oldId);
      expect(Object.keys(sessionsOf(store))).toEqual([body.id]);
      const c2 = pairOf(regen.setCookie) as string;
      expect((await request(`${s.url}/reload`, { cookie: c2 })).body).toBe('{"v":"regen"}');
      // reload of a session that is gone from the store is an error passed to the callback
      store.clear();
      expect((await request(`${s.url}/reload`, { cookie: c2 })).body).toBe('error:failed to load session');
    });

    it('answers 500 without a session cookie when the store fails to save; a failing get goes to next(err)', async () => {
      const store = new MemoryStore();
      const s = await start(app(express, session({ secret: SECRET, resave: false, saveUninitialized: false, store })));
      const c = pairOf((await request(`${s.url}/set/a`)).setCookie) as string;
      store.set = (_sid, _sess, cb) => cb?.(new Error('disk full'));
      const failed = await request(`${s.url}/set/b`);
      expect(failed.status).toBe(500);
      expect(failed.setCookie).toEqual([]);
      store.get = (_sid, cb) => cb(new Error('read failed'));
      const r = await request(`${s.url}/get`, { cookie: c });
      expect(r.status).toBe(500);
      expect(r.body).toBe('error:read failed');
    });

    it('runs requests without a session while the store is disconnected, and exposes req.sessionStore', async () => {
      const store = new MemoryStore();
      const mw = Object.assign(session({ secret: SECRET, resave: false, saveUninitialized: true, store }), { store });
      const s = await start(app(express, mw));
      expect((await request(`${s.url}/store-is`)).body).toBe('{"same":true}');
      store.emit('disconnect');
      expect(JSON.parse((await request(`${s.url}/get`)).body)).toMatchObject({ has: false });
      store.emit('connect');
      expect(JSON.parse((await request(`${s.url}/get`)).body)).toMatchObject({ has: true });
    });

    it('without a secret option uses req.secret (cookie-parser), else passes an error to next', async () => {
      const quiet = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
      try {
        const noSecret = session({ resave: false, saveUninitialized: true });
        const s1 = await start(app(express, noSecret));
        const r1 = await request(`${s1.url}/get`);
        expect(r1.status).toBe(500);
        expect(r1.body).toBe('error:secret option required for sessions');
        const a = app(express, (req: Request, res: Response, next: NextFunction) => {
          (req as unknown as { secret: string }).secret = SECRET;
          noSecret(req, res, next);
        });
        const s3 = await start(a);
        const r3 = await request(`${s3.url}/set/x`);
        expect(r3.status).toBe(200);
        const signed = decodeURIComponent((pairOf(r3.setCookie) as string).split('=')[1] as string);
        expect(cookieSignature.unsign(signed.slice(2), SECRET)).toMatch(/^[\w-]{32}$/);
      } finally {
        quiet.mockRestore();
      }
    });
  });
}

describe('sesh/express-session options, exports and warnings', () => {
  it('rejects bad options with a SeshError naming the option', () => {
    expect(() => session({ secret: SECRET, resave: false, saveUninitialized: false, genid: 'x' as never })).toThrow(
      /genid option must be a function/,
    );
    expect(() => session({ secret: SECRET, resave: false, saveUninitialized: false, unset: 'drop' as never })).toThrow(
      /unset option must be "destroy" or "keep"/,
    );
    try {
      session({ secret: [], resave: false, saveUninitialized: false });
      expect.unreachable();
    } catch (err) {
      expect(isSeshError(err, 'INVALID_OPTIONS')).toBe(true);
      expect((err as Error).message).toMatch(/secret option array must contain one or more strings/);
    }
    expect(() => session({ secret: SECRET, resave: false, saveUninitialized: false, store: {} as never })).toThrow(/express-session store/);
  });

  it('warns (once) about undefined resave and saveUninitialized, like express-session', () => {
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      session({});
      session({});
      const messages = spy.mock.calls.map((c) => String(c[0]));
      expect(messages.filter((m) => m.includes('undefined resave option; provide resave option'))).toHaveLength(1);
      expect(messages.some((m) => m.includes('undefined saveUninitialized option'))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('exposes Store, MemoryStore, Cookie and Session on the function and as named exports', () => {
    expect(session.Store).toBe(Store);
    expect(session.MemoryStore).toBe(MemoryStore);
    expect(session.Cookie).toBe(Cookie);
    expect(session.Session).toBe(Session);
    expect(new MemoryStore()).toBeInstanceOf(Store);
  });

  it('require() of the CommonJS build returns the middleware factory itself (with its constructors)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sesh-compat-cjs-'));
    try {
      await build({
        entryPoints: [join(import.meta.dirname, '../src/compat/index.ts')],
        bundle: true,
        platform: 'node',
        format: 'cjs',
        outfile: join(dir, 'es.cjs'),
        logLevel: 'silent',
      });
      writeFileSync(join(dir, 'package.json'), '{"type":"commonjs"}');
      const loaded = createRequire(join(dir, 'x.js'))('./es.cjs') as typeof session & { default: unknown };
      expect(typeof loaded).toBe('function');
      expect(loaded.default).toBe(loaded);
      expect(typeof loaded.Store).toBe('function');
      // old-style stores call the Store constructor without `new` (memorystore does)
      const memorystore = require('memorystore') as (s: unknown) => new (o: object) => { stopInterval(): void };
      const LruStore = memorystore(loaded);
      const lru = new LruStore({ checkPeriod: 60_000 });
      expect(lru).toBeInstanceOf(loaded.Store);
      lru.stopInterval();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Cookie behaves like express-session Cookie (maxAge, originalMaxAge, expires, JSON)', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    try {
      const inputs: object[] = [
        {},
        { maxAge: 60_000 },
        { maxAge: 60_000, secure: true, sameSite: 'lax', domain: 'example.com', path: '/app', partitioned: true, priority: 'high' },
        { expires: new Date(1_700_000_100_000) },
        { originalMaxAge: 5000, expires: '2030-01-01T00:00:00.000Z' },
        { httpOnly: false, maxAge: null },
      ];
      for (const input of inputs) {
        // biome-ignore lint/suspicious/noExplicitAny: @types/express-session declares neither the options argument nor serialize().
        const theirs = new (expressSession.Cookie as any)(input) as expressSession.Cookie & { serialize(n: string, v: string): string };
        const ours = new Cookie(input as never);
        expect(JSON.stringify(ours)).toBe(JSON.stringify(theirs));
        expect(ours.maxAge).toBe(theirs.maxAge);
        expect(ours.originalMaxAge).toBe(theirs.originalMaxAge);
        vi.advanceTimersByTime(1000);
        expect(ours.maxAge).toBe(theirs.maxAge);
        ours.maxAge = 10_000;
        (theirs as { maxAge: number }).maxAge = 10_000;
        expect(JSON.stringify(ours)).toBe(JSON.stringify(theirs));
        if (!(input as { expires?: unknown }).expires || (input as { expires?: unknown }).expires instanceof Date) {
          expect(ours.serialize('n', 'v')).toBe(theirs.serialize('n', 'v'));
        }
      }
      expect(() => new Cookie({ maxAge: 'x' as never })).toThrow(/maxAge must be a number or Date/);
    } finally {
      vi.useRealTimers();
    }
  });

  it('Store#load and Store#createSession build a Session with a Cookie from stored JSON', async () => {
    const store = new MemoryStore();
    const expires = new Date(Date.now() + 60_000).toISOString();
    store.set('abc', { cookie: { originalMaxAge: 60_000, expires, httpOnly: true, path: '/' }, user: 'ann' });
    const loaded = await new Promise<Session | undefined>((resolve, reject) =>
      store.load('abc', (err, sess) => (err ? reject(err) : resolve(sess))),
    );
    expect(loaded).toBeInstanceOf(Session);
    expect(loaded?.id).toBe('abc');
    expect(loaded?.user).toBe('ann');
    expect(loaded?.cookie).toBeInstanceOf(Cookie);
    expect(loaded?.cookie.expires).toEqual(new Date(expires));
    expect(loaded?.cookie.originalMaxAge).toBe(60_000);
    expect(Object.keys(loaded as object)).toEqual(['cookie', 'user']);
    const missing = await new Promise<unknown>((resolve) => store.load('nope', (_err, sess) => resolve(sess)));
    expect(missing).toBeUndefined();
  });

  it('MemoryStore sweeps expired sessions on writes (express-session only drops them when read)', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    try {
      const store = new MemoryStore();
      const soon = { cookie: { expires: new Date(Date.now() + 1000).toISOString(), originalMaxAge: 1000 } };
      const never = { cookie: { expires: null, originalMaxAge: null } };
      for (let i = 0; i < 5; i++) store.set(`old${i}`, soon);
      store.set('forever', never);
      vi.advanceTimersByTime(61_000);
      store.set('new', { cookie: { expires: new Date(Date.now() + 1000).toISOString(), originalMaxAge: 1000 } });
      expect(Object.keys(sessionsOf(store)).sort()).toEqual(['forever', 'new']);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('signing and cookie parsing match cookie-signature and cookie 0.7 (property tests)', () => {
  it('sign/unsign agree with cookie-signature', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), (value, secret) => {
        expect(sign(value, secret)).toBe(cookieSignature.sign(value, secret));
        expect(unsign(sign(value, secret), secret)).toBe(value);
        expect(unsign(`${sign(value, secret)}x`, secret)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('parseCookieHeader agrees with cookie.parse on arbitrary headers', () => {
    const part = fc.stringMatching(/^[ a-zA-Z0-9=;"%.:_-]{0,12}$/);
    fc.assert(
      fc.property(fc.array(part, { maxLength: 6 }), (parts) => {
        const header = parts.join(';');
        expect({ ...parseCookieHeader(header) }).toEqual({ ...cookie07.parse(header) });
      }),
      { numRuns: 500 },
    );
  });

  it('serializeCookie agrees with cookie.serialize on values and attributes', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.record(
          {
            path: fc.constantFrom('/', '/a', undefined),
            domain: fc.constantFrom('example.com', undefined),
            httpOnly: fc.boolean(),
            secure: fc.boolean(),
            partitioned: fc.boolean(),
            priority: fc.constantFrom('low', 'Medium', 'high', undefined),
            sameSite: fc.constantFrom(true, false, 'lax', 'Strict', 'none', undefined),
            expires: fc.option(fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }), { nil: undefined }),
          },
          { requiredKeys: [] },
        ),
        (value, opts) => {
          expect(serializeCookie('connect.sid', value, opts)).toBe(cookie07.serialize('connect.sid', value, opts));
        },
      ),
      { numRuns: 300 },
    );
  });
});
