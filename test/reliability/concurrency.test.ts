/**
 * Concurrency, on every store (memory, SQLite, Redis, PostgreSQL) and both Express majors, over
 * real HTTP: N parallel requests on one session (N = SESH_STRESS_PARALLEL, default 100)
 * - each setting a distinct key: all N keys present afterwards;
 * - mixed with N touch-only requests: still all N keys, nothing clobbered by a touch;
 * - with a regenerate in the middle: the old ID ends dead, no write lands on it, exactly one
 *   authenticated record remains (the new one), and every other record is an anonymous session
 *   whose cookie the server actually sent (counted store records = 1 + anonymous Set-Cookies);
 * - with a logout in the middle: the session stays dead, no authenticated record remains.
 *
 * "In the middle" is made deterministic: half of the writes load the session and then park in the
 * route until the regenerate/logout has answered (so their write is always attempted after it),
 * and the other half are sent while those parked writes are released (so they always load after
 * it). A random placement could land the logout after every write and prove nothing; here every
 * run checks both sides: the late writes are refused (no record, no cookie) and the later
 * requests get a fresh anonymous session, never the old one.
 *
 * An earlier version kept each test's PostgreSQL pool open until afterAll: under load every pool
 * opened its 10 connections, and the 7th/8th PostgreSQL test of the file hit the test server's
 * max_connections ("sorry, too many clients already" → 503). Pools are now released after each test.
 */
import type { Express, NextFunction, Request, Response } from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getSessionState, type SessionMiddleware, session } from '../../src/adapters/express/index.js';
import { Client, expressVersions, listen, type Reply, type Running, request } from '../support/http.js';
import {
  disposeServers,
  idOf,
  makeStore,
  param,
  type Row,
  report,
  SECRET,
  STORE_KINDS,
  type StoreKind,
  type StoreKit,
  sharedPostgres,
  sharedRedis,
} from './harness.js';

const N = param('SESH_STRESS_PARALLEL', 100, 400);
const rows: Row[] = [];
const apps: Running[] = [];
const kits: StoreKit[] = [];
const parkings: Parking[] = [];

// The servers start here (hookTimeout), not inside the first Redis/PostgreSQL test (testTimeout).
beforeAll(async () => {
  await Promise.all([sharedRedis(), sharedPostgres()]);
});

// Each test has its own store (and PostgreSQL pool): release them at once, so 16 pools never
// pile up against the test server's max_connections.
afterEach(async () => {
  for (const p of parkings.splice(0)) p.release();
  for (const a of apps.splice(0)) await a.close().catch(() => {});
  for (const k of kits.splice(0)) await k.dispose().catch(() => {});
});

afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  await disposeServers();
  await report('concurrency', `Concurrency: ${N} parallel requests on one session, over HTTP`, rows);
});

type Bag = Record<string, unknown>;

async function start(kind: StoreKind, express: (typeof expressVersions)[number]['express']) {
  // Generous timeouts: this file checks what is stored, not how fast (a loaded CI machine may take
  // seconds to get 100 requests through a 10-connection pool); outage.test.ts checks the timeouts.
  const kit: StoreKit = await makeStore(kind, { pgTimeout: 15_000, redisTimeout: 15_000 });
  kits.push(kit);
  const mw: SessionMiddleware = session({ secret: SECRET, store: kit.store, touchAfter: 0, storeTimeout: 15_000, onError: () => {} });
  const app: Express = express();
  const parking = new Parking();
  app.use(mw);
  app.get('/login', async (req, res) => {
    const state = getSessionState(req);
    await state.regenerate();
    state.setUser(String(req.query.u));
    (req.session as unknown as Bag).user = String(req.query.u);
    res.send('ok');
  });
  app.get('/set/:k', async (req, res) => {
    // `?park=1`: the session is loaded (the middleware ran); wait for the test before writing.
    if (req.query.park) await parking.park();
    (req.session as unknown as Bag)[String(req.params.k)] = Number(req.query.v);
    res.send('ok');
  });
  app.get('/touch', (req, res) => {
    res.send(String((req.session as unknown as Bag).user ?? ''));
  });
  app.get('/regen', async (req, res) => {
    const state = getSessionState(req);
    await state.regenerate();
    (req.session as unknown as Bag).rotated = true;
    res.send('ok');
  });
  app.get('/logout', async (req, res) => {
    await req.session.destroy();
    res.send('bye');
  });
  app.get('/keys', (req, res) => {
    res.json({ keys: Object.keys(req.session).sort(), userId: getSessionState(req).userId });
  });
  app.use((err: Error & { status?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
    // The message too, so a failure says why (e.g. PostgreSQL "too many clients already").
    res.status(err.status ?? 500).send(`error:${err.code ?? 'unknown'}: ${err.message}`);
  });
  const running = await listen(app);
  apps.push(running);
  return { kit, url: running.url, mw, parking };
}

const keyCount = (keys: string[]) => keys.filter((k) => /^k\d+$/.test(k)).length;

const show = (r: Reply) => `${r.status} ${r.body} ${r.setCookie.join(' | ')}`;

/**
 * N writes on one session with `path` (a regenerate or a logout) in the middle, in a fixed order:
 * the first half load the session and park in the route; once all of them are parked, `path` is
 * sent and answered; then the parked writes are released while the second half is sent. So the
 * first half always write after `path` and the second half always load after it.
 */
async function aroundTheMiddle(url: string, cookie: string | undefined, parking: Parking, path: string) {
  const half = N >> 1;
  const earlyP = Promise.all(Array.from({ length: half }, (_, i) => request(`${url}/set/k${i}?v=${i}&park=1`, { cookie })));
  earlyP.catch(() => {}); // awaited below; a failure must not surface as an unhandled rejection first
  try {
    await parking.until(half);
    const middle = await request(`${url}${path}`, { cookie });
    parking.release();
    const late = await Promise.all(
      Array.from({ length: N - half }, (_, j) => request(`${url}/set/k${half + j}?v=${half + j}`, { cookie })),
    );
    return { early: await earlyP, middle, late };
  } finally {
    parking.release();
  }
}

/** Every reply is a 200 with its own new session cookie (none of `old`); returns how many. */
function freshIds(replies: Reply[], old: string[]): number {
  const ids = replies.map((r) => {
    const sc = r.setCookie.filter((x) => x.startsWith('__Host-sid=') && !/Max-Age=0/i.test(x));
    return r.status === 200 && sc.length === 1 ? idOf(sc[0]) : `bad: ${show(r)}`;
  });
  expect(ids.filter((id) => id.startsWith('bad: ') || old.includes(id))).toEqual([]);
  expect(new Set(ids).size).toBe(replies.length);
  return ids.length;
}

/** GET /keys with `cookie`: the data keys and the user of the session it loads. */
async function keysOf(url: string, cookie: string | undefined): Promise<{ keys: string[]; userId: string | null }> {
  return JSON.parse((await request(`${url}/keys`, { cookie })).body) as { keys: string[]; userId: string | null };
}

/**
 * Sign `user` in, run the burst around `path` ({@link aroundTheMiddle}), and check that the writes
 * which loaded the old session before `path` answered were refused: no error, and no cookie
 * (neither the old one re-sent nor a new one).
 */
async function signedInBurst(url: string, parking: Parking, user: string, path: string) {
  const c = new Client(url);
  expect((await c.send(`/login?u=${user}`)).status).toBe(200);
  const oldCookie = c.cookie;
  const burst = await aroundTheMiddle(url, oldCookie, parking, path);
  expect(burst.early.filter((r) => r.status !== 200 || r.setCookie.length > 0).map(show)).toEqual([]);
  return { oldCookie, ...burst };
}

/** A sample of the fresh sessions holds only the one key its request wrote, and no user. */
async function expectAnonymous(url: string, late: Reply[]): Promise<void> {
  for (const r of late.slice(0, 5)) {
    const cookie = r.setCookie[0]?.split(';')[0];
    const got = await keysOf(url, cookie);
    expect(got.userId).toBeNull();
    expect(got.keys).toHaveLength(1);
    expect(keyCount(got.keys)).toBe(1);
  }
}

/** Requests parked in a route after their session was loaded, released together by the test. */
class Parking {
  #count = 0;
  #waiters: { n: number; resolve: () => void }[] = [];
  #release: () => void = () => {};
  readonly #gate = new Promise<void>((resolve) => {
    this.#release = resolve;
  });

  constructor() {
    parkings.push(this);
  }

  /** Called by the route: count this request as parked and wait for {@link release}. */
  park(): Promise<void> {
    this.#count++;
    for (const w of this.#waiters) if (this.#count >= w.n) w.resolve();
    return this.#gate;
  }

  /** Resolves once `n` requests are parked; fails after `ms` saying how many arrived. */
  async until(n: number, ms = 20_000): Promise<void> {
    if (this.#count >= n) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.#waiters.push({ n, resolve })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`only ${this.#count} of ${n} requests parked within ${ms} ms`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  release(): void {
    this.#release();
  }
}

for (const kind of STORE_KINDS) {
  for (const { name, express } of expressVersions) {
    describe(`${kind} store, ${name}`, () => {
      it(`${N} parallel writes of distinct keys on one session: all ${N} present`, async () => {
        const { url, kit } = await start(kind, express);
        const c = new Client(url);
        expect((await c.send('/login?u=ann')).status).toBe(200);
        const t0 = Date.now();
        const replies = await Promise.all(Array.from({ length: N }, (_, i) => request(`${url}/set/k${i}?v=${i}`, { cookie: c.cookie })));
        const ms = Date.now() - t0;
        expect(replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body}`)).toEqual([]);
        const { keys } = JSON.parse((await c.send('/keys')).body) as { keys: string[] };
        expect(keyCount(keys)).toBe(N);
        expect(await kit.records()).toBe(1);
        rows.push({
          store: kind,
          express: name,
          scenario: 'distinct keys',
          requests: N,
          'keys present': keyCount(keys),
          lost: N - keyCount(keys),
          ms,
        });
      });

      it(`${N} writes mixed with ${N} touch-only requests: all keys present`, async () => {
        const { url, kit } = await start(kind, express);
        const c = new Client(url);
        expect((await c.send('/login?u=bob')).status).toBe(200);
        const t0 = Date.now();
        const replies = await Promise.all(
          Array.from({ length: 2 * N }, (_, i) =>
            i % 2 === 0 ? request(`${url}/set/k${i / 2}?v=${i}`, { cookie: c.cookie }) : request(`${url}/touch`, { cookie: c.cookie }),
          ),
        );
        const ms = Date.now() - t0;
        expect(replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body}`)).toEqual([]);
        // Touch-only requests never mint a cookie or see another session.
        expect(replies.filter((r, i) => i % 2 === 1 && r.body !== 'bob')).toEqual([]);
        const { keys } = JSON.parse((await c.send('/keys')).body) as { keys: string[] };
        expect(keyCount(keys)).toBe(N);
        expect(await kit.records()).toBe(1);
        rows.push({
          store: kind,
          express: name,
          scenario: 'writes + touches',
          requests: 2 * N,
          'keys present': keyCount(keys),
          lost: N - keyCount(keys),
          ms,
        });
      });

      it('regenerate in the middle: old ID dead, no write lands on it, no authenticated orphan', async () => {
        const { url, kit, mw, parking } = await start(kind, express);
        // Writes that loaded the old session before the rotation and wrote after it are refused.
        const { oldCookie, early, middle: regen, late } = await signedInBurst(url, parking, 'cy', '/regen');
        const oldKey = mw.sessions.storeKey(idOf(oldCookie));
        expect(regen.status).toBe(200);
        const newCookie = regen.setCookie.find((s) => s.startsWith('__Host-sid='))?.split(';')[0];
        expect(newCookie).toBeDefined();
        expect(idOf(newCookie)).not.toBe(idOf(oldCookie));
        // Requests sent with the old cookie after the rotation got a fresh anonymous session each.
        const fresh = freshIds(late, [idOf(oldCookie), idOf(newCookie)]);

        // The old ID is dead in the store (no late patch or touch re-created it) and over HTTP.
        expect(await kit.store.get(oldKey)).toBeNull();
        expect(await keysOf(url, oldCookie)).toEqual({ keys: [], userId: null });
        const viaNew = await keysOf(url, newCookie);
        expect(viaNew.userId).toBe('cy');
        expect(viaNew.keys).toContain('rotated');
        expect(keyCount(viaNew.keys)).toBe(0); // no write meant for the old ID landed on the new one
        await expectAnonymous(url, late);

        // Exactly one authenticated record (the new one); every other record is one of the
        // anonymous sessions whose cookie the server sent, so nothing is orphaned unseen.
        const owned = await kit.store.listByUser?.('cy');
        expect(owned?.map((e) => e.key)).toEqual([mw.sessions.storeKey(idOf(newCookie))]);
        expect(await kit.records()).toBe(1 + fresh);
        rows.push({
          store: kind,
          express: name,
          scenario: 'regenerate mid-burst',
          requests: N + 1,
          'old ID live': 0,
          'late writes refused': early.length,
          'authenticated records': owned?.length ?? -1,
          'anonymous records': fresh,
          lost: 0,
        });
      });

      it('logout in the middle: the session stays dead, no authenticated record remains', async () => {
        const { url, kit, mw, parking } = await start(kind, express);
        const { oldCookie, early, middle: logout, late } = await signedInBurst(url, parking, 'dee', '/logout');
        const oldKey = mw.sessions.storeKey(idOf(oldCookie));
        expect(logout.status).toBe(200);
        expect(logout.setCookie.some((s) => /Max-Age=0/i.test(s))).toBe(true);
        const fresh = freshIds(late, [idOf(oldCookie)]);
        expect(await kit.store.get(oldKey)).toBeNull();
        expect(await keysOf(url, oldCookie)).toEqual({ keys: [], userId: null });
        expect(await kit.store.listByUser?.('dee')).toEqual([]);
        await expectAnonymous(url, late);
        expect(await kit.records()).toBe(fresh);
        rows.push({
          store: kind,
          express: name,
          scenario: 'logout mid-burst',
          requests: N + 1,
          'old ID live': 0,
          'late writes refused': early.length,
          'authenticated records': 0,
          'anonymous records': fresh,
          lost: 0,
        });
      });
    });
  }
}
