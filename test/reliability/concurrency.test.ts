/**
 * Concurrency, on every store (memory, SQLite, Redis, PostgreSQL) and both Express majors, over
 * real HTTP: N parallel requests on one session (N = SESH_STRESS_PARALLEL, default 100)
 * - each setting a distinct key: all N keys present afterwards;
 * - mixed with N touch-only requests: still all N keys, nothing clobbered by a touch;
 * - with a regenerate in the middle: the old ID ends dead, no write lands on it, exactly one
 *   authenticated record remains (the new one), and every other record is an anonymous session
 *   whose cookie the server actually sent (counted store records = 1 + anonymous Set-Cookies);
 * - with a logout in the middle: the session stays dead, no authenticated record remains.
 */
import type { Express, NextFunction, Request, Response } from 'express';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { getSessionState, type SessionMiddleware, session } from '../../src/adapters/express/index.js';
import { Client, expressVersions, listen, type Reply, type Running, request } from '../support/http.js';
import { disposeServers, idOf, makeStore, param, type Row, report, SECRET, STORE_KINDS, type StoreKind, type StoreKit } from './harness.js';

const N = param('SESH_STRESS_PARALLEL', 100, 400);
const rows: Row[] = [];
const apps: Running[] = [];
const kits: StoreKit[] = [];

// Each test has its own store (and PostgreSQL pool): release them at once, so 16 pools never
// pile up against the test server's max_connections.
afterEach(async () => {
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
  app.use(mw);
  app.get('/login', async (req, res) => {
    const state = getSessionState(req);
    await state.regenerate();
    state.setUser(String(req.query.u));
    (req.session as unknown as Bag).user = String(req.query.u);
    res.send('ok');
  });
  app.get('/set/:k', (req, res) => {
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
    res.status(err.status ?? 500).send(`error:${err.code ?? 'unknown'}`);
  });
  const running = await listen(app);
  apps.push(running);
  return { kit, url: running.url, mw };
}

const keyCount = (keys: string[]) => keys.filter((k) => /^k\d+$/.test(k)).length;

/** Set-Cookie values that start a session (not the clearing one of a logout). */
const minted = (replies: Reply[]) => replies.flatMap((r) => r.setCookie).filter((c) => !/Max-Age=0/i.test(c)).length;

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
        const { url, kit, mw } = await start(kind, express);
        const c = new Client(url);
        expect((await c.send('/login?u=cy')).status).toBe(200);
        const oldCookie = c.cookie;
        const oldKey = mw.sessions.storeKey(idOf(oldCookie));
        const half = N >> 1;
        const replies = await Promise.all(
          Array.from({ length: N + 1 }, (_, i) =>
            i === half ? request(`${url}/regen`, { cookie: oldCookie }) : request(`${url}/set/k${i}?v=${i}`, { cookie: oldCookie }),
          ),
        );
        const regen = replies[half] as Reply;
        expect(regen.status).toBe(200);
        expect(replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body}`)).toEqual([]);
        const newCookie = regen.setCookie.find((s) => s.startsWith('__Host-sid='))?.split(';')[0];
        expect(newCookie).toBeDefined();
        expect(idOf(newCookie)).not.toBe(idOf(oldCookie));

        // The old ID is dead in the store (no late patch or touch re-created it) and over HTTP.
        expect(await kit.store.get(oldKey)).toBeNull();
        const viaOld = JSON.parse((await request(`${url}/keys`, { cookie: oldCookie })).body) as { keys: string[]; userId: string | null };
        expect(viaOld).toEqual({ keys: [], userId: null });
        const viaNew = JSON.parse((await request(`${url}/keys`, { cookie: newCookie })).body) as { keys: string[]; userId: string | null };
        expect(viaNew.userId).toBe('cy');
        expect(viaNew.keys).toContain('rotated');

        // Exactly one authenticated record (the new one); any other record is an anonymous session
        // created by a late request whose cookie no longer named a live session, and it was sent
        // its own new cookie (counted here), so nothing is orphaned unseen.
        const owned = await kit.store.listByUser?.('cy');
        expect(owned?.map((e) => e.key)).toEqual([mw.sessions.storeKey(idOf(newCookie))]);
        const anonymous = minted(replies) - 1;
        const records = await kit.records();
        expect(records).toBe(1 + anonymous);
        rows.push({
          store: kind,
          express: name,
          scenario: 'regenerate mid-burst',
          requests: N + 1,
          'old ID live': 0,
          'authenticated records': owned?.length ?? -1,
          'anonymous records': anonymous,
          lost: 0,
        });
      });

      it('logout in the middle: the session stays dead, no authenticated record remains', async () => {
        const { url, kit, mw } = await start(kind, express);
        const c = new Client(url);
        expect((await c.send('/login?u=dee')).status).toBe(200);
        const oldCookie = c.cookie;
        const oldKey = mw.sessions.storeKey(idOf(oldCookie));
        const half = N >> 1;
        const replies = await Promise.all(
          Array.from({ length: N + 1 }, (_, i) =>
            i === half ? request(`${url}/logout`, { cookie: oldCookie }) : request(`${url}/set/k${i}?v=${i}`, { cookie: oldCookie }),
          ),
        );
        const logout = replies[half] as Reply;
        expect(logout.status).toBe(200);
        expect(logout.setCookie.some((s) => /Max-Age=0/i.test(s))).toBe(true);
        expect(replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body}`)).toEqual([]);
        expect(await kit.store.get(oldKey)).toBeNull();
        const viaOld = JSON.parse((await request(`${url}/keys`, { cookie: oldCookie })).body) as { keys: string[]; userId: string | null };
        expect(viaOld).toEqual({ keys: [], userId: null });
        expect(await kit.store.listByUser?.('dee')).toEqual([]);
        const anonymous = minted(replies);
        expect(await kit.records()).toBe(anonymous);
        rows.push({
          store: kind,
          express: name,
          scenario: 'logout mid-burst',
          requests: N + 1,
          'old ID live': 0,
          'authenticated records': 0,
          'anonymous records': anonymous,
          lost: 0,
        });
      });
    });
  }
}
