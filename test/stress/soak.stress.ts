/**
 * Soak (only in `npm run test:stress`): for SESH_STRESS_SOAK_SECONDS per store (default 60), on
 * memory, SQLite, Redis and PostgreSQL behind Express 5, SESH_STRESS_SOAK_CLIENTS clients (default
 * 32) run a random mix of sign-in (regenerate + user), per-key writes, deletes, reads, touch-only
 * requests and sign-out, each keeping its own model of what its session must hold. Every read is
 * compared with the model: any difference is a lost or phantom write. At the end, the store holds
 * exactly one record per signed-in client (`listByUser` per user) and the process RSS is reported.
 */
import type { Express, NextFunction, Request, Response } from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { getSessionState, session } from '../../src/adapters/express/index.js';
import { disposeServers, makeStore, param, percentile, type Row, report, SECRET, STORE_KINDS } from '../reliability/harness.js';
import { Client, expressVersions, listen, type Running } from '../support/http.js';

const SECONDS = param('SESH_STRESS_SOAK_SECONDS', 60, 60);
const CLIENTS = param('SESH_STRESS_SOAK_CLIENTS', 32, 32);
const rows: Row[] = [];
const apps: Running[] = [];

afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  await disposeServers();
  await report('soak', `Soak: ${CLIENTS} clients, random mix, ${SECONDS} s per store`, rows);
});

type Bag = Record<string, unknown>;

/** Small deterministic PRNG (mulberry32), so a run can be replayed with the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const kind of STORE_KINDS) {
  describe(`soak on ${kind}`, () => {
    it(`${CLIENTS} clients for ${SECONDS} s: every read matches the client's model`, async () => {
      const kit = await makeStore(kind, { pgTimeout: 15_000, redisTimeout: 15_000 });
      const app: Express = expressVersions[0].express();
      app.use(session({ secret: SECRET, store: kit.store, touchAfter: 1_000, storeTimeout: 15_000, onError: () => {} }));
      app.get('/login', async (req, res) => {
        const state = getSessionState(req);
        await state.regenerate();
        state.setUser(String(req.query.u));
        res.send('ok');
      });
      app.get('/set/:k', (req, res) => {
        (req.session as unknown as Bag)[String(req.params.k)] = String(req.query.v);
        res.send('ok');
      });
      app.get('/del/:k', (req, res) => {
        delete (req.session as unknown as Bag)[String(req.params.k)];
        res.send('ok');
      });
      app.get('/read', (req, res) => {
        res.json({ data: { ...(req.session as unknown as Bag) }, user: getSessionState(req).userId });
      });
      app.get('/touch', (_req, res) => {
        res.send('ok');
      });
      app.get('/logout', async (req, res) => {
        await req.session.destroy();
        res.send('bye');
      });
      app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
        res.status(err.status ?? 500).send(`error ${err.message}`);
      });
      const running = await listen(app);
      apps.push(running);

      const end = Date.now() + SECONDS * 1_000;
      let requests = 0;
      let reads = 0;
      const latencies: number[] = [];
      const problems: string[] = [];
      const signedIn = new Set<number>();
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, id) => {
          const rand = prng(1_000 + id);
          const c = new Client(running.url);
          let model: Record<string, string> = {};
          let user: string | null = null;
          const send = async (path: string) => {
            const t0 = Date.now();
            const r = await c.send(path);
            latencies.push(Date.now() - t0);
            requests++;
            if (r.status !== 200) problems.push(`client ${id} ${path}: ${r.status} ${r.body}`);
            return r;
          };
          while (Date.now() < end && problems.length < 10) {
            const x = rand();
            if (x < 0.05) {
              user = `user${id}`;
              await send(`/login?u=${user}`); // regenerate keeps the data
            } else if (x < 0.08) {
              await send('/logout');
              model = {};
              user = null;
            } else if (x < 0.5) {
              const k = `k${Math.floor(rand() * 20)}`;
              const v = String(Math.floor(rand() * 1e9));
              await send(`/set/${k}?v=${v}`);
              model[k] = v;
            } else if (x < 0.6) {
              const k = `k${Math.floor(rand() * 20)}`;
              await send(`/del/${k}`);
              if (c.cookie) delete model[k];
            } else if (x < 0.75) {
              await send('/touch');
            } else {
              const r = await send('/read');
              reads++;
              const got = JSON.parse(r.body) as { data: Record<string, string>; user: string | null };
              if (JSON.stringify(sorted(got.data)) !== JSON.stringify(sorted(model)) || got.user !== user) {
                problems.push(`client ${id}: expected ${JSON.stringify({ model, user })}, got ${r.body}`);
              }
            }
          }
          if (user) signedIn.add(id);
        }),
      );
      expect(problems).toEqual([]);
      for (let id = 0; id < CLIENTS; id++) {
        const owned = (await kit.store.listByUser?.(`user${id}`)) ?? [];
        expect(owned.length, `user${id}`).toBe(signedIn.has(id) ? 1 : 0);
      }
      rows.push({
        store: kind,
        seconds: SECONDS,
        clients: CLIENTS,
        requests,
        'reads checked': reads,
        'p50 ms': percentile(latencies, 50),
        'p99 ms': percentile(latencies, 99),
        'max ms': Math.max(...latencies),
        'RSS (MB)': (process.memoryUsage().rss / 1024 / 1024).toFixed(0),
        lost: 0,
      });
    });
  });
}

function sorted(o: Record<string, string>): [string, string][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1));
}
