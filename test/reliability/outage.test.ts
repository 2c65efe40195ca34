/**
 * Store outage, for Redis and PostgreSQL behind Express 5 and Express 4, over real HTTP: the server
 * is stopped while signed-in clients keep writing, kept down for SESH_STRESS_OUTAGE_MS (default
 * 1500 ms), then started again on the same port and data while the app keeps running.
 *
 * Checked: every request that started after the store went down and ended before it came back got a
 * 503 within `storeTimeout` (+ scheduling slack; the maximum is reported), no response ever carried a
 * cookie for another session (no one was served as anonymous-with-a-new-cookie), the app recovered
 * without a restart, every session written before the outage is intact with at least every
 * acknowledged count, and (PostgreSQL) every pool client is back in the pool afterwards.
 *
 * Both servers are killed outright, with SIGKILL, and restarted on the same data: Redis runs with
 * `appendfsync always`; PostgreSQL with `synchronous_commit=on` (a commit reaches the OS before it
 * is acknowledged; `fsync` stays off, which only matters for a power loss), and the postmaster and
 * every backend are killed at once, so the restart runs crash recovery.
 */
import type { Express, NextFunction, Request, Response } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { session } from '../../src/adapters/express/index.js';
import { Client, expressVersions, listen, type Running, request } from '../support/http.js';
import {
  disposeServers,
  idOf,
  makeStore,
  max,
  param,
  percentile,
  type Row,
  report,
  SECRET,
  type StoreKind,
  sharedPostgres,
  sharedRedis,
  sleep,
} from './harness.js';

const STORE_TIMEOUT = 1_000;
const SLACK = 400; // event-loop scheduling on a loaded 2-core machine
const OUTAGE_MS = param('SESH_STRESS_OUTAGE_MS', 1_500, 10_000);
const CLIENTS = param('SESH_STRESS_OUTAGE_CLIENTS', 16, 64);

const rows: Row[] = [];
const apps: Running[] = [];
afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  await disposeServers();
  await report('outage', `Store outage: server down ${OUTAGE_MS} ms under load, storeTimeout ${STORE_TIMEOUT} ms`, rows);
});

// Start both servers here (hookTimeout), not inside the first test (testTimeout): on a loaded
// machine initdb alone can take seconds. Redis persists every write, PostgreSQL acknowledges a
// commit only once it reached the OS, so a SIGKILL loses nothing acknowledged.
beforeAll(async () => {
  await Promise.all([sharedRedis({ persist: true }), sharedPostgres({ durable: true })]);
});

type Bag = Record<string, unknown>;

async function stopServer(kind: StoreKind): Promise<void> {
  if (kind === 'redis') await (await sharedRedis()).kill();
  else await (await sharedPostgres()).kill();
}

async function startServer(kind: StoreKind): Promise<void> {
  if (kind === 'redis') await (await sharedRedis()).start();
  else await (await sharedPostgres()).start();
}

for (const kind of ['redis', 'postgres'] as const) {
  for (const { name, express } of expressVersions) {
    describe(`${kind} outage, ${name}`, () => {
      it('503 within storeTimeout during the outage, no new cookie, recovery without restart, nothing acknowledged lost', async () => {
        const kit = await makeStore(kind, { redisTimeout: 500, pgTimeout: 500 });
        const app: Express = express();
        app.use(session({ secret: SECRET, store: kit.store, storeTimeout: STORE_TIMEOUT, onError: () => {} }));
        app.get('/login', async (req, res) => {
          await req.session.regenerate();
          (req.session as unknown as Bag).user = String(req.query.u);
          res.send('ok');
        });
        app.get('/count', (req, res) => {
          const s = req.session as unknown as Bag;
          s.views = ((s.views as number | undefined) ?? 0) + 1;
          res.send(String(s.views));
        });
        app.get('/read', (req, res) => {
          res.json({ ...(req.session as unknown as Bag) });
        });
        app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
          res.status(err.status ?? 500).send('error');
        });
        const running = await listen(app);
        apps.push(running);
        const url = running.url;

        const clients = Array.from({ length: CLIENTS }, () => new Client(url));
        for (const [i, c] of clients.entries()) expect((await c.send(`/login?u=u${i}`)).status).toBe(200);
        const ids = clients.map((c) => idOf(c.cookie));
        const acked = clients.map(() => 0);

        let down = Number.POSITIVE_INFINITY; // store confirmed dead
        let up = Number.POSITIVE_INFINITY; // restart begins
        let stop = false;
        let total = 0;
        const during: { status: number; ms: number; cookies: number }[] = [];
        const problems: string[] = [];
        const loops = clients.map(async (c, i) => {
          while (!stop) {
            const t0 = Date.now();
            const r = await request(`${url}/count`, { cookie: c.cookie });
            const t1 = Date.now();
            total++;
            if (r.status === 200) acked[i] = Math.max(acked[i] as number, Number(r.body));
            else if (r.status !== 503) problems.push(`client ${i}: ${r.status} ${r.body}`);
            for (const sc of r.setCookie) {
              if (!sc.startsWith('__Host-sid=') || idOf(sc) !== ids[i]) problems.push(`client ${i} was sent another cookie: ${sc}`);
            }
            if (t0 >= down && t1 <= up) during.push({ status: r.status, ms: t1 - t0, cookies: r.setCookie.length });
            await sleep(r.status === 503 ? 20 : 5);
          }
        });

        let recoveryMs = 0;
        const fresh: { status: number; cookies: number }[] = [];
        try {
          const warm = Date.now() + 15_000;
          while (Math.min(...acked) < 2 && Date.now() < warm) await sleep(20);
          expect(Math.min(...acked)).toBeGreaterThanOrEqual(2);
          const logFrom = kind === 'postgres' ? (await sharedPostgres()).log().length : 0;
          await stopServer(kind);
          down = Date.now();
          const end = down + OUTAGE_MS;
          while (Date.now() < end) {
            // New visitors during the outage: the write their request needs fails, so no cookie.
            const r = await request(`${url}/count`);
            fresh.push({ status: r.status, cookies: r.setCookie.length });
            await sleep(100);
          }
          up = Date.now();
          await startServer(kind);
          const restarted = Date.now();
          // Recovery: the same app, with no restart, serves the clients again.
          const until = restarted + 20_000;
          let ok = false;
          while (!ok && Date.now() < until) {
            ok = (await request(`${url}/count`, { cookie: clients[0]?.cookie })).status === 200;
            if (!ok) await sleep(50);
          }
          expect(ok).toBe(true);
          recoveryMs = Date.now() - restarted;
          // It really was a crash: PostgreSQL had to recover from its WAL on the restart.
          if (kind === 'postgres') {
            expect((await sharedPostgres()).log().slice(logFrom)).toMatch(/not properly shut down|automatic recovery in progress/);
          }
          const settle = acked.map((a) => a);
          const after = Date.now() + 10_000;
          while (acked.some((a, i) => a <= (settle[i] as number)) && Date.now() < after) await sleep(20);
        } finally {
          stop = true;
          await Promise.all(loops);
        }

        expect(problems).toEqual([]);
        expect(during.length).toBeGreaterThan(0);
        expect(during.filter((d) => d.status !== 503)).toEqual([]);
        expect(during.filter((d) => d.cookies > 0)).toEqual([]);
        const maxMs = max(during.map((d) => d.ms));
        expect(maxMs).toBeLessThanOrEqual(STORE_TIMEOUT + SLACK);
        expect(fresh.length).toBeGreaterThan(0);
        expect(fresh).toEqual(fresh.map(() => ({ status: 503, cookies: 0 })));

        // Every session written before the outage is intact, with at least every acknowledged count.
        let lost = 0;
        for (const [i, c] of clients.entries()) {
          const r = await c.send('/read');
          const data = JSON.parse(r.body) as Bag;
          if (data.user !== `u${i}` || (data.views as number) < (acked[i] as number)) lost++;
        }
        expect(lost).toBe(0);
        expect(await kit.records()).toBe(CLIENTS);

        // No pool client leaked: once the requests are done, every client is back in the pool.
        let leaked = 0;
        if (kit.pg) {
          const { pool } = kit.pg;
          const until = Date.now() + 5_000;
          while ((pool.idleCount !== pool.totalCount || pool.waitingCount > 0) && Date.now() < until) await sleep(20);
          leaked = pool.totalCount - pool.idleCount;
          expect({ leaked, waiting: pool.waitingCount }).toEqual({ leaked: 0, waiting: 0 });
        }

        rows.push({
          store: kind,
          express: name,
          requests: total,
          'during outage': during.length,
          'new visitors': fresh.length,
          '503 max ms': maxMs,
          '503 p50 ms': percentile(
            during.map((d) => d.ms),
            50,
          ),
          'recovery ms': recoveryMs,
          'sessions checked': CLIENTS,
          'pool clients leaked': kind === 'postgres' ? leaked : '–',
          lost,
        });
      });
    });
  }
}
