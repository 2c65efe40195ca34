/**
 * The per-user auth features (fixation, logout, device list, revocation, role changes,
 * maxSessionsPerUser) over real HTTP against every store with the per-user index: memory,
 * SQLite, Redis and PostgreSQL, each a real backend started by the test itself.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeAllSessions, setUserRoles } from '../src/adapters/express/index.js';
import type { Store } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { PostgresStore } from '../src/stores/postgres/index.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import { Browser, buildApp, send } from './security-support.js';
import { expressVersions, listen, type Running } from './support/http.js';
import { makePool, type PgServer, startPostgres, uniqueTable } from './support/postgres.js';
import { type RedisServer, startRedis } from './support/redis.js';

const running: Running[] = [];
const closers: Array<() => Promise<unknown>> = [];
let redis: RedisServer | undefined;
let redisClient: Redis | undefined;
let postgres: PgServer | undefined;
let pool: pg.Pool | undefined;

beforeAll(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  redisClient = new Redis(redis.port, redis.host, { lazyConnect: false, maxRetriesPerRequest: 1 });
  redisClient.on('error', () => undefined);
  pool = makePool(postgres);
});

afterAll(async () => {
  await Promise.allSettled(running.splice(0).map((r) => r.close()));
  await Promise.allSettled(closers.map((c) => c()));
  await Promise.allSettled([redisClient?.quit(), pool?.end()]);
  await Promise.allSettled([redis?.dispose(), postgres?.destroy()]);
});

const stores: Array<{ name: string; make: () => Store }> = [
  { name: 'memory', make: () => new MemoryStore({ sweepInterval: 0 }) },
  { name: 'sqlite', make: () => new SqliteStore({ path: ':memory:' }) },
  { name: 'redis', make: () => new RedisStore({ client: redisClient as Redis, prefix: `a${randomBytes(4).toString('hex')}:` }) },
  { name: 'postgres', make: () => new PostgresStore({ pool: pool as pg.Pool, table: uniqueTable('auth'), purgeInterval: 0 }) },
];

for (const { name, make } of stores) {
  describe(`per-user sessions on the ${name} store`, () => {
    async function start() {
      const store = make();
      closers.push(async () => store.close?.());
      const t = buildApp(expressVersions[0].express, { store });
      const r = await listen(t.app);
      running.push(r);
      return { ...t, url: r.url, store };
    }

    it('A19 fixation and A20 replay after logout', async () => {
      const { url } = await start();
      const attacker = new Browser(url);
      await attacker.post('/set', { cart: ['x'] });
      const planted = attacker.cookie as string;
      const victim = new Browser(url);
      victim.cookie = planted;
      expect((await victim.post('/login', { user: 'victim' })).status).toBe(200);
      expect(victim.cookie).not.toBe(planted);
      expect((await send(url, '/private', { cookie: planted })).status).toBe(401);
      const loggedIn = victim.cookie as string;
      await victim.post('/logout');
      expect((await send(url, '/private', { cookie: loggedIn })).status).toBe(401);
    });

    it('lists, revokes own sessions only, revokes others, revokes all, changes roles, caps sessions', async () => {
      const { url, mw } = await start();
      const laptop = new Browser(url);
      const phone = new Browser(
        url,
        'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
      );
      const mallory = new Browser(url);
      await laptop.post('/login', { user: 'alice', roles: ['admin'] });
      await phone.post('/login', { user: 'alice', roles: ['admin'] });
      await mallory.post('/login', { user: 'mallory' });
      const list = (await laptop.send('/sessions')).json<Array<{ handle: string; current: boolean; device: string }>>();
      expect(list).toHaveLength(2);
      expect(list.filter((s) => s.current)).toHaveLength(1);
      const phoneHandle = list.find((s) => !s.current)?.handle as string;
      expect(list.find((s) => !s.current)?.device).toMatch(/iOS/);
      expect((await mallory.post('/revoke', { handle: phoneHandle })).json()).toEqual({ revoked: false });
      expect((await phone.send('/private')).status).toBe(200);

      // Role change reaches every device without waiting for expiry.
      expect(await setUserRoles(mw, 'alice', ['viewer'])).toBe(2);
      expect((await phone.send('/admin')).status).toBe(403);
      expect((await laptop.send('/admin')).status).toBe(403);

      expect((await laptop.post('/revoke', { handle: phoneHandle })).json()).toEqual({ revoked: true });
      expect((await phone.send('/private')).status).toBe(401);

      const tablet = new Browser(url);
      await tablet.post('/login', { user: 'alice' });
      expect((await laptop.post('/revoke-others')).json()).toEqual({ n: 1 });
      expect((await tablet.send('/private')).status).toBe(401);
      expect((await laptop.send('/private')).status).toBe(200);

      expect(await revokeAllSessions(mw, 'alice')).toBe(1);
      expect((await laptop.send('/private')).status).toBe(401);
      expect((await mallory.send('/private')).status).toBe(200);

      const a = new Browser(url);
      const b = new Browser(url);
      const c = new Browser(url);
      await a.post('/login', { user: 'carol', max: 2 });
      await new Promise((r) => setTimeout(r, 15));
      await b.post('/login', { user: 'carol', max: 2 });
      await new Promise((r) => setTimeout(r, 15));
      await c.post('/login', { user: 'carol', max: 2 });
      expect((await a.send('/private')).status).toBe(401);
      expect((await b.send('/private')).status).toBe(200);
      expect((await c.send('/private')).status).toBe(200);
    });
  });
}
