/**
 * Several app instances on one Redis Cluster, over real HTTP: an Express 5 instance on ioredis'
 * Cluster client and an Express 4 instance on node-redis' cluster client share sessions; concurrent
 * requests on both instances writing different keys of one session all survive (per-key merge);
 * "log out everywhere" through the per-user index reaches sessions on every node.
 */
import type { Express } from 'express';
import { Cluster } from 'ioredis';
import { createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSessionState, session } from '../src/adapters/express/index.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { Client, expressVersions, listen, type Running } from './support/http.js';
import { type RedisCluster, startRedisCluster } from './support/redis.js';

const SECRET = 'Cl7vQ2mL8xWc4Ns7Yb1Hd6Jf3Kg0Pz9R';

let cluster: RedisCluster | undefined;
let io: Cluster | undefined;
let nr: ReturnType<typeof createCluster> | undefined;
const apps: Running[] = [];
const clientErrors: unknown[] = [];

function makeApp(express: (typeof expressVersions)[number]['express'], store: RedisStore): Express {
  const app: Express = express();
  app.use(session({ secret: SECRET, store, onError: () => {} }));
  app.get('/set', (req, res) => {
    (req.session as unknown as Record<string, unknown>)[String(req.query.k)] = String(req.query.v);
    res.send('ok');
  });
  app.get('/login', async (req, res) => {
    const state = getSessionState(req);
    await state.regenerate();
    state.setUser(String(req.query.u));
    res.send('ok');
  });
  app.get('/logout-everywhere', async (req, res) => {
    const state = getSessionState(req);
    const n = await store.destroyByUser(state.userId as string, [state.storeKey as string]);
    res.send(String(n));
  });
  app.get('/devices', async (req, res) => {
    res.json((await store.listByUser(getSessionState(req).userId as string)).length);
  });
  app.get('/read', (req, res) => {
    res.json({ ...(req.session as unknown as Record<string, unknown>) });
  });
  return app;
}

let a: Running;
let b: Running;

beforeAll(async () => {
  cluster = await startRedisCluster();
  io = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  io.on('error', (e) => clientErrors.push(e));
  nr = createCluster({ rootNodes: cluster.startupNodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })) });
  nr.on('error', (e) => clientErrors.push(e));
  await Promise.all([nr.connect(), new Promise((r) => io?.once('ready', r))]);
  a = await listen(makeApp(expressVersions[0].express, new RedisStore({ client: io, prefix: 'app:' })));
  b = await listen(makeApp(expressVersions[1].express, new RedisStore({ client: nr, prefix: 'app:' })));
  apps.push(a, b);
});

afterAll(async () => {
  for (const r of apps) await r.close().catch(() => {});
  await Promise.allSettled([io?.quit(), nr?.quit()]);
  await cluster?.dispose();
  expect(clientErrors).toEqual([]);
});

describe('RedisStore on Cluster, two app instances (express 5 + ioredis, express 4 + node-redis)', () => {
  it('shares sessions and merges concurrent writes from both instances per key', async () => {
    const user = new Client(a.url);
    expect((await user.send('/set?k=start&v=1')).status).toBe(200);
    const cookie = user.cookie;
    // 40 concurrent writes of distinct keys, alternating instances, all with the same cookie.
    const writes = Array.from({ length: 40 }, (_, i) => {
      const c = new Client(i % 2 === 0 ? a.url : b.url);
      c.cookie = cookie;
      return c.send(`/set?k=k${i}&v=${i}`);
    });
    for (const r of await Promise.all(writes)) expect(r.status).toBe(200);
    const onB = new Client(b.url);
    onB.cookie = cookie;
    const data = JSON.parse((await onB.send('/read')).body) as Record<string, string>;
    expect(data.start).toBe('1');
    for (let i = 0; i < 40; i++) expect(data[`k${i}`]).toBe(String(i));
  });

  it('logs a user out everywhere, across instances and Cluster nodes', async () => {
    const devices = Array.from({ length: 8 }, (_, i) => new Client(i % 2 === 0 ? a.url : b.url));
    for (const d of devices) expect((await d.send('/login?u=carol')).status).toBe(200);
    const first = devices[0] as Client;
    expect((await first.send('/devices')).body).toBe('8');
    expect((await first.send('/logout-everywhere')).body).toBe('7');
    expect((await first.send('/devices')).body).toBe('1');
    for (const d of devices.slice(1)) {
      const r = await d.send('/read');
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({}); // signed out: a fresh, empty session
    }
  });
});
