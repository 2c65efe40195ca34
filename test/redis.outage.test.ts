/**
 * RedisStore behind the Express middleware, over real HTTP, on a real persistent Redis that the test
 * stops mid-load and restarts on the same port and data: 503s arrive within the command timeout,
 * no anonymous Set-Cookie during the outage, the app recovers without a restart, and every session
 * acknowledged before the outage is intact. Express 5 with ioredis, Express 4 with node-redis, both
 * with the clients' default settings. Also: a hash that cannot be read is a fresh session, not a 500.
 */
import type { Express } from 'express';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { session } from '../src/adapters/express/index.js';
import { type RedisClientLike, RedisStore } from '../src/stores/redis/index.js';
import { Client, expressVersions, listen, type Running, request } from './support/http.js';
import { type RedisServer, startRedis } from './support/redis.js';

const SECRET = 'Rd5vQ2mL8xWc4Ns7Yb1Hd6Jf3Kg0Pz9T';
const COMMAND_TIMEOUT = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface Setup {
  server: RedisServer;
  app: Running;
  store: RedisStore;
  clientErrors: unknown[];
  commitErrors: unknown[];
}

async function setup(express: (typeof expressVersions)[number]['express'], lib: 'ioredis' | 'node-redis'): Promise<Setup> {
  const server = await startRedis({ persist: true });
  cleanups.push(() => server.dispose());
  const clientErrors: unknown[] = [];
  let client: RedisClientLike;
  if (lib === 'ioredis') {
    const io = new IORedis({ host: server.host, port: server.port });
    io.on('error', (e) => clientErrors.push(e));
    cleanups.push(async () => io.disconnect());
    await io.ping();
    client = io;
  } else {
    const nr = createClient({ url: server.url });
    nr.on('error', (e) => clientErrors.push(e));
    await nr.connect();
    cleanups.push(async () => nr.destroy());
    client = nr;
  }
  const store = new RedisStore({ client, commandTimeout: COMMAND_TIMEOUT });
  const commitErrors: unknown[] = [];
  const app: Express = express();
  app.use(session({ secret: SECRET, store, storeTimeout: 2_000, onError: (e) => commitErrors.push(e) }));
  app.get('/write', (req, res) => {
    const s = req.session as unknown as Record<string, unknown>;
    s[String(req.query.k)] = String(req.query.v);
    res.send('ok');
  });
  app.get('/read', (req, res) => {
    res.json({ ...(req.session as unknown as Record<string, unknown>) });
  });
  app.get('/anon', (_req, res) => {
    res.send('hello');
  });
  const running = await listen(app);
  cleanups.push(() => running.close());
  return { server, app: running, store, clientErrors, commitErrors };
}

const combos = [
  { ...expressVersions[0], lib: 'ioredis' as const },
  { ...expressVersions[1], lib: 'node-redis' as const },
];

for (const { name, express, lib } of combos) {
  describe(`RedisStore outage over HTTP (${name}, ${lib})`, () => {
    it('answers 503 fast while Redis is down, never issues a cookie, recovers, and loses nothing acknowledged', async () => {
      const { server, app, clientErrors, commitErrors } = await setup(express, lib);

      // 0. One write first, so the store's scripts are loaded on the fresh server before the burst
      //    (a cold server answering 20 first-time script loads at once can exceed the 500 ms
      //    command timeout on a busy 2-core CI machine; that is set-up, not what is tested here).
      expect((await new Client(app.url).send('/write?k=warm&v=up')).status).toBe(200);

      // 1. Sessions written and acknowledged before the outage.
      const users = Array.from({ length: 20 }, () => new Client(app.url));
      const acked = new Map<Client, Record<string, string>>();
      await Promise.all(
        users.map(async (u, i) => {
          const r = await u.send(`/write?k=seed&v=s${i}`);
          expect(r.status).toBe(200);
          expect(u.cookie).toBeDefined();
          acked.set(u, { seed: `s${i}` });
        }),
      );

      // 2. Load: each user keeps writing a counter under its own key; anonymous visitors write too.
      type Hit = { start: number; ms: number; status: number; setCookie: string[] };
      const hits: Hit[] = [];
      let stop = false;
      const attempted = new Map<Client, number>();
      const worker = async (u: Client, i: number) => {
        for (let n = 1; !stop; n++) {
          attempted.set(u, n);
          const start = performance.now();
          const r = await u.send(`/write?k=n&v=${n}`);
          hits.push({ start, ms: performance.now() - start, status: r.status, setCookie: r.setCookie });
          if (r.status === 200) acked.set(u, { ...(acked.get(u) ?? {}), n: String(n) });
          else await sleep(20);
          if (i % 5 === 0) {
            const a0 = performance.now();
            const anon = await new Client(app.url).send(`/write?k=x&v=${n}`);
            hits.push({ start: a0, ms: performance.now() - a0, status: anon.status, setCookie: anon.setCookie });
          }
        }
      };
      const load = Promise.all(users.map(worker));
      // If an assertion fails below, stop the load before the app is closed under it.
      cleanups.push(async () => {
        stop = true;
        await load.catch(() => {});
      });
      await sleep(300);

      // 3. Outage: stop Redis mid-load (SIGTERM; appendfsync always keeps every acknowledged write).
      await server.stop();
      const downFrom = performance.now();
      await sleep(1_500);
      const downTo = performance.now();

      // 4. Requests sent while Redis was down: all 503, each within the timeout, and no cookie at all.
      const during = hits.filter((h) => h.start >= downFrom && h.start + h.ms <= downTo);
      const maxMs = Math.max(...during.map((h) => h.ms));
      console.log(
        `[redis outage ${name}, ${lib}] ${during.length} requests during the outage, statuses ${[...new Set(during.map((h) => h.status))].join(',')}, max latency ${maxMs.toFixed(1)} ms (commandTimeout ${COMMAND_TIMEOUT} ms)`,
      );
      expect(during.length).toBeGreaterThan(5);
      for (const h of during) {
        expect(h.status).toBe(503);
        expect(h.setCookie).toEqual([]);
      }
      // Bounded by commandTimeout; the margin absorbs event-loop stalls on a busy 2-core CI runner.
      expect(maxMs).toBeLessThan(COMMAND_TIMEOUT + 1_000);
      // Reads of existing sessions fail the same way (the session is never replaced by an empty one).
      const read = await users[0]?.send('/read');
      expect(read?.status).toBe(503);
      expect(read?.setCookie).toEqual([]);
      // A visitor that touches no session is served normally.
      const anon = await request(`${app.url}/anon`);
      expect(anon.status).toBe(200);
      expect(anon.setCookie).toEqual([]);

      // 5. Redis comes back on the same port and data; the app recovers without a restart.
      await server.start();
      const back = performance.now();
      let recovered = false;
      while (performance.now() - back < 10_000) {
        const r = await users[1]?.send('/read');
        if (r?.status === 200) {
          recovered = true;
          break;
        }
        await sleep(50);
      }
      expect(recovered).toBe(true);
      console.log(`[redis outage ${name}, ${lib}] recovered ${(performance.now() - back).toFixed(0)} ms after Redis restarted`);
      await sleep(300);
      stop = true;
      await load;

      // 6. Every session is intact: same cookie, seed kept, and the counter at least the last acknowledged one.
      for (const [i, u] of users.entries()) {
        const r = await u.send('/read');
        expect(r.status).toBe(200);
        expect(r.setCookie).toEqual([]); // still the same session: no new cookie
        const data = JSON.parse(r.body) as Record<string, string>;
        const ack = acked.get(u) ?? {};
        expect(data.seed).toBe(`s${i}`);
        const n = Number(data.n ?? 0);
        expect(n).toBeGreaterThanOrEqual(Number(ack.n ?? 0));
        expect(n).toBeLessThanOrEqual(attempted.get(u) ?? 0);
      }
      expect(commitErrors.length).toBeGreaterThan(0); // commits that failed were reported, as 503s
      expect(clientErrors.length).toBeGreaterThan(0); // and the client's errors went to its listener
    });
  });
}

describe('RedisStore over HTTP: unreadable record', () => {
  it('treats a session hash with broken JSON as no session (new cookie), not as a 500', async () => {
    const { app, store, server } = await setup(expressVersions[0].express, 'ioredis');
    const u = new Client(app.url);
    expect((await u.send('/write?k=a&v=1')).status).toBe(200);
    const before = u.cookie;
    // Corrupt every session hash of this store directly in Redis.
    const io = new IORedis({ host: server.host, port: server.port });
    try {
      const keys = await io.keys('sesh:s:*');
      expect(keys.length).toBe(1);
      await io.hset(keys[0] as string, 'd:a', '{oops');
    } finally {
      io.disconnect();
    }
    const r = await u.send('/write?k=b&v=2');
    expect(r.status).toBe(200);
    expect(u.cookie).not.toBe(before);
    expect(JSON.parse((await u.send('/read')).body)).toEqual({ b: '2' });
    void store;
  });
});
