/**
 * PostgresStore behind the Express middleware, over real HTTP, on a real PostgreSQL that the test
 * stops, restarts, locks and disconnects: fast 503s, no anonymous cookies, no leaked pool clients,
 * recovery without restarting the app, nothing acknowledged before the outage lost.
 */
import type { Express, NextFunction, Request, Response } from 'express';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { session } from '../src/adapters/express/index.js';
import { PostgresStore } from '../src/stores/postgres/index.js';
import { Client, expressVersions, listen, type Running, request } from './support/http.js';
import { makePool, type PgServer, startPostgres, uniqueTable } from './support/postgres.js';

const SECRET = 'pG7v2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5Q';

let server: PgServer;
const pools: pg.Pool[] = [];
const apps: Running[] = [];
const stores: PostgresStore[] = [];

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  for (const s of stores) await s.close().catch(() => {});
  for (const p of pools) await p.end().catch(() => {});
  await server?.destroy();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function assertNoLeak(pool: pg.Pool): void {
  expect(pool.waitingCount).toBe(0);
  expect(pool.totalCount - pool.idleCount).toBe(0); // nothing checked out
}

for (const { name, express } of expressVersions) {
  describe(`PostgresStore over HTTP (${name})`, () => {
    async function start() {
      const pool = makePool(server, { max: 10, connectionTimeoutMillis: 1000 });
      pools.push(pool);
      const table = uniqueTable('http');
      const store = new PostgresStore({ pool, table, queryTimeout: 1000, purgeInterval: 0 });
      stores.push(store);
      await store.migrate();
      const app: Express = express();
      app.use(session({ secret: SECRET, store, storeTimeout: 2000, onError: () => {} }));
      app.get('/login', async (req, res) => {
        await req.session.regenerate();
        (req.session as unknown as Record<string, unknown>).user = String(req.query.u);
        res.send('ok');
      });
      app.get('/count', (req, res) => {
        const s = req.session as unknown as Record<string, unknown>;
        s.views = ((s.views as number | undefined) ?? 0) + 1;
        res.send(String(s.views));
      });
      app.get('/read', (req, res) => {
        const s = req.session as unknown as Record<string, unknown>;
        res.json({ user: s.user ?? null, views: s.views ?? null });
      });
      app.get('/set/:k', (req, res) => {
        (req.session as unknown as Record<string, unknown>)[String(req.params.k)] = Number(req.query.v);
        res.send('ok');
      });
      app.get('/keys', (req, res) => {
        res.json(Object.keys(req.session).sort());
      });
      app.get('/public', (_req, res) => {
        res.send('public');
      });
      app.use((err: Error & { status?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
        res.status(err.status ?? 500).send(`error:${err.code ?? 'unknown'}`);
      });
      const running = await listen(app);
      apps.push(running);
      return { url: running.url, pool, table, store };
    }

    it('100 parallel requests on one session, each setting a distinct key: all 100 keys kept', async () => {
      const { url, pool } = await start();
      const c = new Client(url);
      expect((await c.send('/login?u=ann')).status).toBe(200);
      expect(c.cookie).toBeDefined();
      const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => request(`${url}/set/k${i}?v=${i}`, { cookie: c.cookie })));
      expect(replies.map((r) => r.status)).toEqual(Array(100).fill(200));
      const keys = JSON.parse((await c.send('/keys')).body) as string[];
      expect(keys.filter((k) => /^k\d+$/.test(k))).toHaveLength(100);
      expect(keys).toContain('user');
      assertNoLeak(pool);
    });

    it('database stopped mid-load: fast 503s, no anonymous Set-Cookie, recovery after restart, nothing acknowledged lost', async () => {
      const { url, pool } = await start();
      const clients = Array.from({ length: 12 }, () => new Client(url));
      for (const [i, c] of clients.entries()) expect((await c.send(`/login?u=user${i}`)).status).toBe(200);
      const acked = clients.map(() => 0);

      // Load: every client counts in a loop; a 200 means the write was committed before the response.
      let outageFrom = Number.POSITIVE_INFINITY;
      let outageTo = Number.POSITIVE_INFINITY;
      let stop = false;
      const outage = { count: 0, maxLatency: 0, statuses: new Set<number>(), setCookies: 0 };
      const errors: string[] = [];
      const loops = clients.map(async (c, i) => {
        while (!stop) {
          const t0 = Date.now();
          const before = c.cookie;
          const r = await request(`${url}/count`, { cookie: before });
          const latency = Date.now() - t0;
          if (r.status === 200) acked[i] = Math.max(acked[i] as number, Number(r.body));
          if (t0 > outageFrom && Date.now() < outageTo) {
            outage.count++;
            outage.maxLatency = Math.max(outage.maxLatency, latency);
            outage.statuses.add(r.status);
            outage.setCookies += r.setCookie.length;
          }
          if (r.status !== 200 && r.status !== 503) errors.push(`unexpected ${r.status}: ${r.body}`);
          await sleep(5);
        }
      });
      let snapshot: number[] = [];
      try {
        // Wait until every client has a count acknowledged (bounded), then kill the database.
        const warm = Date.now() + 10_000;
        while (Math.min(...acked) < 2 && Date.now() < warm) await sleep(20);
        expect(Math.min(...acked)).toBeGreaterThan(0);
        await server.stop('fast');
        outageFrom = Date.now();
        await sleep(600);
        // New visitors during the outage: 503 where the store is needed, never a minted cookie.
        const fresh = await request(`${url}/count`);
        expect(fresh.status).toBe(503);
        expect(fresh.setCookie).toEqual([]);
        const pub = await request(`${url}/public`);
        expect(pub.status).toBe(200);
        expect(pub.setCookie).toEqual([]);
        outageTo = Date.now();
        snapshot = [...acked];
        await server.start(); // same data dir, same port; the app is not restarted
        await sleep(300);
      } finally {
        stop = true;
        await Promise.all(loops);
      }
      expect(errors).toEqual([]);

      console.info(
        `[postgres outage ${name}] ${outage.count} requests during the outage, statuses ${[...outage.statuses].join(',')}, max latency ${outage.maxLatency} ms`,
      );
      expect(outage.count).toBeGreaterThan(10);
      expect([...outage.statuses]).toEqual([503]);
      expect(outage.setCookies).toBe(0);
      // Refused connections fail at once; the bound is queryTimeout (1 s) plus scheduling slack on a busy CI box.
      expect(outage.maxLatency).toBeLessThan(2500);

      // Recovery: every session is still there with at least every count acknowledged before.
      for (const [i, c] of clients.entries()) {
        const r = await c.send('/read');
        expect(r.status).toBe(200);
        const body = JSON.parse(r.body) as { user: string; views: number };
        expect(body.user).toBe(`user${i}`);
        expect(body.views).toBeGreaterThanOrEqual(snapshot[i] as number);
        expect(body.views).toBeGreaterThanOrEqual(acked[i] as number);
        expect(body.views).toBeLessThanOrEqual((acked[i] as number) + 1); // at most one in-flight, unacknowledged write
        expect((await c.send('/count')).body).toBe(String(body.views + 1));
      }
      await sleep(20);
      assertNoLeak(pool);
    });

    it('connections killed by the server (pg_terminate_backend): the pool recovers without a restart', async () => {
      const { url, pool } = await start();
      const c = new Client(url);
      await c.send('/login?u=kim');
      await Promise.all(Array.from({ length: 8 }, () => request(`${url}/count`, { cookie: c.cookie })));
      expect(pool.totalCount).toBeGreaterThan(0);
      const admin = makePool(server, { max: 1 });
      pools.push(admin);
      const killed = await admin.query(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = 'postgres' AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
      );
      expect(killed.rows[0]?.n).toBeGreaterThan(0);
      await sleep(50);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await c.send('/count')).status);
      // At most the first request may see a dead connection; then every request succeeds.
      expect(statuses.slice(1)).toEqual([200, 200, 200, 200]);
      expect(JSON.parse((await c.send('/read')).body).user).toBe('kim');
      assertNoLeak(pool);
    });

    it('a database that hangs (table locked) answers 503 within queryTimeout, then recovers', async () => {
      const { url, pool, table } = await start();
      const c = new Client(url);
      await c.send('/login?u=lou');
      const admin = makePool(server, { max: 1 });
      pools.push(admin);
      const locker = await admin.connect();
      try {
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE public."${table}" IN ACCESS EXCLUSIVE MODE`);
        const t0 = Date.now();
        const replies = await Promise.all(Array.from({ length: 5 }, () => request(`${url}/read`, { cookie: c.cookie })));
        const took = Date.now() - t0;
        expect(replies.map((r) => r.status)).toEqual([503, 503, 503, 503, 503]);
        expect(replies.flatMap((r) => r.setCookie)).toEqual([]);
        expect(took).toBeLessThan(2500);
        await locker.query('ROLLBACK');
      } finally {
        locker.release();
      }
      const after = await c.send('/read');
      expect(after.status).toBe(200);
      expect(JSON.parse(after.body).user).toBe('lou');
      await sleep(20);
      assertNoLeak(pool);
    });
  });
}
