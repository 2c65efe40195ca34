/**
 * Slow or hung store.
 * - A store whose calls never settle, behind Express 5 and 4 over real HTTP (storeTimeout 300 ms):
 *   every request that needs the store ends with a 503 at the timeout (min/max latency reported),
 *   with no Set-Cookie; afterwards the process holds no more sockets, timers or server connections
 *   than before (process.getActiveResourcesInfo() and server.getConnections()).
 * - The same store driven through the engine in a child process with --expose-gc: every hung
 *   promise the store returned is garbage-collected after the timeout (FinalizationRegistry), and
 *   the heap does not grow with the number of requests.
 * - A slow store (every call answers after 2x the timeout): 503 at the timeout, and the late
 *   answers change nothing the client sees.
 * - Real hangs: Redis frozen with SIGSTOP, and a PostgreSQL table locked by another transaction
 *   (both with driver timeouts longer than storeTimeout, so sesh's own deadline is what answers):
 *   503 at storeTimeout, recovery once the store answers again, no pool client leaked.
 */
import { request as httpRequest } from 'node:http';
import type { Express, NextFunction, Request, Response } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { session } from '../../src/adapters/express/index.js';
import type { Store } from '../../src/store.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { expressVersions, listen, type Running } from '../support/http.js';
import { makePool } from '../support/postgres.js';
import { runNode, TSX } from '../support/sqlite.js';
import { disposeServers, makeStore, max, param, type Row, report, SECRET, sharedPostgres, sharedRedis, sleep } from './harness.js';

const TIMEOUT = 300;
const SLACK = 600; // event-loop scheduling on a loaded 2-core machine
const REQUESTS = param('SESH_STRESS_HUNG_REQUESTS', 200, 5_000);
const CHILD_OPS = param('SESH_STRESS_HUNG_OPS', 4_000, 100_000);

const rows: Row[] = [];
const apps: Running[] = [];
// The real servers start here (hookTimeout), not inside their tests (testTimeout).
beforeAll(async () => {
  await Promise.all([sharedRedis(), sharedPostgres()]);
});
afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  await disposeServers();
  await report('hung', `Slow or hung store: storeTimeout ${TIMEOUT} ms`, rows);
});

type Bag = Record<string, unknown>;
interface Reply {
  status: number;
  ms: number;
  setCookie: number;
  body: string;
}

/** One request on its own connection (no keep-alive agent), so no client socket outlives it. */
function get(url: string, cookie?: string): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: cookie ? { cookie } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, setCookie: res.headers['set-cookie']?.length ?? 0, body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** Counts of active handles by type (sockets, timers...). */
function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

async function app(express: (typeof expressVersions)[number]['express'], store: Store, storeTimeout = TIMEOUT) {
  const a: Express = express();
  a.use(session({ secret: SECRET, store, storeTimeout, onError: () => {} }));
  a.get('/write', (req, res) => {
    (req.session as unknown as Bag).v = String(req.query.v ?? 'x');
    res.send('ok');
  });
  a.get('/read', (req, res) => {
    res.json({ ...(req.session as unknown as Bag) });
  });
  a.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.status ?? 500).send('error');
  });
  const running = await listen(a);
  apps.push(running);
  return running;
}

/** A cookie for a session that exists in `store` (made through a healthy app on the same store). */
async function cookieFor(express: (typeof expressVersions)[number]['express'], store: Store): Promise<string> {
  const healthy = await app(express, store, 5_000);
  const r = await new Promise<string>((resolve, reject) => {
    httpRequest(`${healthy.url}/write?v=before`, { agent: false }, (res) => {
      res.resume();
      resolve((res.headers['set-cookie']?.[0] ?? '').split(';')[0] as string);
    })
      .on('error', reject)
      .end();
  });
  return r;
}

/** Send `n` requests, 50 at a time, half reading a session (get) and half creating one (create). */
async function burst(url: string, cookie: string, n: number): Promise<Reply[]> {
  const out: Reply[] = [];
  for (let i = 0; i < n; i += 50) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, (_, j) => (j % 2 === 0 ? get(`${url}/read`, cookie) : get(`${url}/write?v=${i + j}`))),
      )),
    );
  }
  return out;
}

const never = <T>() => new Promise<T>(() => {});
const hungStore: Store = { get: never, create: never, patch: never, touch: never, destroy: never };

describe('hung store (calls never settle)', () => {
  for (const { name, express } of expressVersions) {
    it(`${REQUESTS} requests over HTTP (${name}): 503 at the timeout, no cookie, no leaked handles`, async () => {
      const cookie = await cookieFor(express, new MemoryStore({ quiet: true }));
      const running = await app(express, hungStore);
      await get(`${running.url}/nothing`); // warm up the server's own handles
      await sleep(50);
      const before = resources();
      let connections = -1;
      const replies = await burst(running.url, cookie, REQUESTS);
      expect(replies.filter((r) => r.status !== 503).map((r) => `${r.status} ${r.body}`)).toEqual([]);
      expect(replies.filter((r) => r.setCookie > 0)).toEqual([]);
      const ms = replies.map((r) => r.ms);
      expect(Math.min(...ms)).toBeGreaterThanOrEqual(TIMEOUT - 5);
      expect(max(ms)).toBeLessThanOrEqual(TIMEOUT + SLACK);
      // Let closed sockets be reaped, then compare handle counts.
      const until = Date.now() + 5_000;
      let after = resources();
      for (;;) {
        connections = await new Promise<number>((r) => running.server.getConnections((_e, n) => r(n)));
        after = resources();
        const grown = Object.keys(after).filter((k) => (after[k] ?? 0) > (before[k] ?? 0));
        if ((connections === 0 && grown.length === 0) || Date.now() > until) break;
        await sleep(50);
      }
      expect(connections).toBe(0);
      for (const k of Object.keys(after)) expect(`${k}: ${after[k]}`).toBe(`${k}: ${Math.min(after[k] ?? 0, before[k] ?? 0)}`);
      rows.push({
        store: 'never settles',
        express: name,
        requests: replies.length,
        '503s': replies.filter((r) => r.status === 503).length,
        'min ms': Math.round(Math.min(...ms)),
        'max ms': Math.round(max(ms)),
        'sockets / timers after (before)': `${after.TCPSocketWrap ?? 0} / ${after.Timeout ?? 0} (${before.TCPSocketWrap ?? 0} / ${before.Timeout ?? 0})`,
        'open connections after': connections,
      });
    });
  }

  it(`${CHILD_OPS} engine operations in a --expose-gc child: every hung promise released, heap flat`, async () => {
    const run = await runNode(['--expose-gc', '--import', TSX, 'test/reliability/fixtures/hung-child.ts', String(CHILD_OPS)], {
      timeout: 600_000,
    });
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1) as string) as {
      ops: number;
      unavailable: number;
      other: string[];
      maxMs: number;
      hungPromises: number;
      collected: number;
      heapWarm: number;
      heapEnd: number;
    };
    expect(out.other).toEqual([]);
    expect(out.unavailable).toBe(out.ops);
    expect(out.hungPromises).toBe(out.ops);
    // Everything the engine could have kept a reference to was collected.
    expect(out.collected).toBeGreaterThanOrEqual(out.hungPromises * 0.99);
    // Four times as many requests after the warm-up: the heap does not grow with them.
    expect(out.heapEnd - out.heapWarm).toBeLessThan(4 * 1024 * 1024);
    rows.push({
      store: 'never settles (engine, child)',
      requests: out.ops,
      '503s': out.unavailable,
      'max ms': Math.round(out.maxMs),
      'hung promises': out.hungPromises,
      'collected after GC': out.collected,
      'heap growth (KB)': Math.round((out.heapEnd - out.heapWarm) / 1024),
    });
  }, 600_000);
});

describe('slow store (answers after twice the timeout)', () => {
  it('503 at the timeout, late answers change nothing the client sees', async () => {
    const inner = new MemoryStore({ quiet: true, sweepInterval: 0 });
    const late = <T>(p: () => Promise<T>) => sleep(2 * TIMEOUT).then(p);
    const slow: Store = {
      get: (k) => late(() => inner.get(k)),
      create: (k, s) => late(() => inner.create(k, s)),
      patch: (k, p) => late(() => inner.patch(k, p)),
      touch: (k, a, b) => late(() => inner.touch(k, a, b)),
      destroy: (k) => late(() => inner.destroy(k)),
    };
    const { express, name } = expressVersions[0];
    const cookie = await cookieFor(express, inner);
    const running = await app(express, slow);
    const replies = await burst(running.url, cookie, 100);
    expect(replies.filter((r) => r.status !== 503)).toEqual([]);
    expect(replies.filter((r) => r.setCookie > 0)).toEqual([]);
    expect(max(replies.map((r) => r.ms))).toBeLessThanOrEqual(TIMEOUT + SLACK);
    await sleep(3 * TIMEOUT); // the late answers arrive now; nobody is waiting for them
    // The session written before is intact (late reads and failed writes did not touch it).
    const healthy = await app(express, inner, 5_000);
    const r = await get(`${healthy.url}/read`, cookie);
    expect(JSON.parse(r.body)).toEqual({ v: 'before' });
    rows.push({
      store: 'answers after 600 ms',
      express: name,
      requests: replies.length,
      '503s': replies.length,
      'min ms': Math.round(Math.min(...replies.map((x) => x.ms))),
      'max ms': Math.round(max(replies.map((x) => x.ms))),
    });
  });
});

describe('real stores that hang', () => {
  it('Redis frozen with SIGSTOP: 503 at storeTimeout, recovery after SIGCONT', async () => {
    const server = await sharedRedis();
    const kit = await makeStore('redis', { redisTimeout: 5_000 });
    const { express } = expressVersions[0];
    const cookie = await cookieFor(express, kit.store);
    const running = await app(express, kit.store);
    server.pause();
    let replies: Reply[];
    try {
      replies = await burst(running.url, cookie, 40);
    } finally {
      server.resume();
    }
    expect(replies.filter((r) => r.status !== 503)).toEqual([]);
    expect(replies.filter((r) => r.setCookie > 0)).toEqual([]);
    expect(max(replies.map((r) => r.ms))).toBeLessThanOrEqual(TIMEOUT + SLACK);
    let ok: Reply | undefined;
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      ok = await get(`${running.url}/read`, cookie);
      if (ok.status === 200) break;
      await sleep(50);
    }
    expect(ok?.status).toBe(200);
    expect(JSON.parse(ok?.body ?? '{}')).toEqual({ v: 'before' });
    rows.push({
      store: 'Redis (SIGSTOP)',
      express: 'express 5',
      requests: replies.length,
      '503s': replies.length,
      'max ms': Math.round(max(replies.map((r) => r.ms))),
      recovered: 'yes',
    });
  });

  it('PostgreSQL table locked by another transaction: 503 at storeTimeout, no pool client leaked', async () => {
    const server = await sharedPostgres();
    const kit = await makeStore('postgres', { pgTimeout: 5_000, poolMax: 20 });
    const { express } = expressVersions[0];
    const cookie = await cookieFor(express, kit.store);
    const running = await app(express, kit.store);
    const { pool, table } = kit.pg as NonNullable<typeof kit.pg>;
    const admin = makePool(server, { max: 1 });
    const locker = await admin.connect();
    let replies: Reply[];
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      replies = await burst(running.url, cookie, 40);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
      await admin.end();
    }
    expect(replies.filter((r) => r.status !== 503)).toEqual([]);
    expect(replies.filter((r) => r.setCookie > 0)).toEqual([]);
    expect(max(replies.map((r) => r.ms))).toBeLessThanOrEqual(TIMEOUT + SLACK);
    const ok = await get(`${running.url}/read`, cookie);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ v: 'before' });
    // The queries that sesh stopped waiting for finish once the lock is gone and give their
    // clients back: nothing checked out, nobody waiting.
    const until = Date.now() + 10_000;
    while ((pool.waitingCount > 0 || pool.totalCount > pool.idleCount) && Date.now() < until) await sleep(50);
    expect(pool.waitingCount).toBe(0);
    expect(pool.totalCount - pool.idleCount).toBe(0);
    rows.push({
      store: 'PostgreSQL (table locked)',
      express: 'express 5',
      requests: replies.length,
      '503s': replies.length,
      'max ms': Math.round(max(replies.map((r) => r.ms))),
      recovered: 'yes',
    });
  });
});
