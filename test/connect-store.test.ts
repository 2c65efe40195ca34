/**
 * sesh/stores/connect: the sesh store contract on top of express-session stores, checked with the
 * conformance suite on express-session's MemoryStore, memorystore and connect-redis (real
 * redis-server), and end to end under the native sesh/express middleware.
 */
import { createRequire } from 'node:module';
import { RedisStore } from 'connect-redis';
import type { Request, Response } from 'express';
import expressSession from 'express-session';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { session } from '../src/adapters/express/index.js';
import { isSeshError } from '../src/index.js';
import { ConnectStore, fromConnectStore } from '../src/stores/connect/index.js';
import { FakeClock, runStoreSuite } from '../src/testing/index.js';
import { Client, expressVersions, listen, type Running } from './support/http.js';
import { type RedisServer, startRedis } from './support/redis.js';

const require = createRequire(import.meta.url);
// memorystore is CommonJS and takes the express-session module.
const memorystore = require('memorystore') as (
  s: typeof expressSession,
) => new (
  o?: Record<string, unknown>,
) => expressSession.Store & { stopInterval(): void };
const MemoryStoreLru = memorystore(expressSession);

/** express-session's MemoryStore keeps JSON text per ID in `sessions` (not in its typings). */
const textOf = (store: expressSession.MemoryStore) => (store as unknown as { sessions: Record<string, string> }).sessions;

const SECRET = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';

describe('ConnectStore over express-session MemoryStore', () => {
  runStoreSuite(({ clock }) => new ConnectStore(new expressSession.MemoryStore(), { clock }), {
    describe,
    it,
    name: 'conformance (express-session MemoryStore)',
  });
});

describe('ConnectStore over memorystore', () => {
  runStoreSuite(
    ({ clock }) => {
      const inner = new MemoryStoreLru({ checkPeriod: 60_000 });
      return { store: new ConnectStore(inner, { clock }), cleanup: () => inner.stopInterval() };
    },
    { describe, it, name: 'conformance (memorystore)' },
  );
});

let redis: RedisServer | undefined;
let redisClient: ReturnType<typeof createClient> | undefined;
let prefixCounter = 0;
beforeAll(async () => {
  redis = await startRedis();
  redisClient = createClient({ url: redis.url });
  await redisClient.connect();
}, 120_000);
afterAll(async () => {
  await redisClient?.quit().catch(() => {});
  await redis?.dispose();
});

describe('ConnectStore over connect-redis (real redis-server)', () => {
  runStoreSuite(({ clock }) => new ConnectStore(new RedisStore({ client: redisClient, prefix: `t${++prefixCounter}:` }), { clock }), {
    describe,
    it,
    name: 'conformance (connect-redis)',
  });

  it('hands connect-redis a TTL from the record expiry, under the hashed store key', async () => {
    const prefix = `ttl${++prefixCounter}:`;
    const store = fromConnectStore(new RedisStore({ client: redisClient, prefix }));
    const now = Date.now();
    const record = { data: { a: 1 }, meta: {}, createdAt: now, lastSeen: now, expiresAt: now + 90_000, userId: null };
    expect(await store.create('k1', record)).toBe(true);
    const ttl = await (redisClient as NonNullable<typeof redisClient>).ttl(`${prefix}k1`);
    expect(ttl).toBeGreaterThan(85);
    expect(ttl).toBeLessThanOrEqual(90);
    expect(await store.get('k1')).toEqual(record);
  });
});

describe('ConnectStore behaviour', () => {
  it('refuses something that is not an express-session store, with an actionable error', () => {
    expect(() => new ConnectStore({} as never)).toThrow(/express-session store instance/);
    expect(() => new ConnectStore(new expressSession.MemoryStore(), { timeout: 0 })).toThrow(/timeout/);
  });

  it('drops prototype-pollution keys and records that are not sesh records', async () => {
    const inner = new expressSession.MemoryStore();
    const store = new ConnectStore(inner);
    const exp = new Date(Date.now() + 60_000).toISOString();
    textOf(inner).evil =
      `{"cookie":{"expires":"${exp}"},"sesh":{"v":1,"data":{"__proto__":{"polluted":1},"ok":1,"constructor":{"prototype":{"x":1}}},"meta":{"__proto__":{"p":1}},"createdAt":1,"lastSeen":1,"expiresAt":${Date.now() + 60_000},"userId":null}}`;
    textOf(inner).foreign = `{"cookie":{"expires":"${exp}"},"user":"bob"}`;
    const got = await store.get('evil');
    expect(got?.data).toEqual({ ok: 1 });
    expect(Object.getPrototypeOf(got?.data)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await store.get('foreign')).toBeNull();
  });

  it('turns callback errors, throws, timeouts and "disconnect" into StoreUnavailableError', async () => {
    const inner = new expressSession.MemoryStore();
    const store = new ConnectStore(inner, { timeout: 50 });
    inner.get = (_sid, cb) => cb(new Error('boom'));
    await expect(store.get('a')).rejects.toSatisfy((e: unknown) => isSeshError(e, 'STORE_UNAVAILABLE'));
    inner.get = () => {
      throw new Error('sync boom');
    };
    await expect(store.get('a')).rejects.toSatisfy((e: unknown) => isSeshError(e, 'STORE_UNAVAILABLE'));
    inner.get = () => {};
    await expect(store.get('a')).rejects.toThrow(/did not answer get within 50 ms/);
    inner.get = (_sid, cb) => cb(Object.assign(new Error('missing'), { code: 'ENOENT' }));
    expect(await store.get('a')).toBeNull();
    inner.emit('disconnect');
    await expect(store.get('a')).rejects.toThrow(/disconnect/);
    inner.emit('connect');
    expect(await store.get('a')).toBeNull();
  });

  it('translates an injected clock to wall-clock expiry for the wrapped store', async () => {
    const clock = new FakeClock(Date.now() - 3_600_000);
    const inner = new expressSession.MemoryStore();
    const store = new ConnectStore(inner, { clock });
    const t = clock.now();
    await store.create('k', { data: {}, meta: {}, createdAt: t, lastSeen: t, expiresAt: t + 60_000, userId: null });
    const stored = JSON.parse(textOf(inner).k as string) as { cookie: { expires: string } };
    expect(Date.parse(stored.cookie.expires)).toBeGreaterThan(Date.now() + 50_000);
    expect(await store.get('k')).not.toBeNull();
    clock.advance(60_000);
    expect(await store.get('k')).toBeNull();
  });
});

for (const { name, express } of expressVersions) {
  describe(`sesh/express on connect-redis through ConnectStore (${name})`, () => {
    let app: Running | undefined;
    const prefix = `app${name.replace(/\W/g, '')}:`;
    beforeAll(async () => {
      const a = express();
      const store = new ConnectStore(new RedisStore({ client: redisClient, prefix }));
      a.use(session({ secret: SECRET, store }));
      a.get('/count', (req: Request, res: Response) => {
        const s = req.session as unknown as Record<string, number>;
        s.views = (s.views ?? 0) + 1;
        res.send(String(s.views));
      });
      a.get('/logout', async (req: Request, res: Response) => {
        await req.session.destroy();
        res.send('bye');
      });
      app = await listen(a);
    });
    afterAll(() => app?.close());

    it('keeps a session across requests; redis holds it under a hash, never the cookie ID', async () => {
      const client = new Client((app as Running).url);
      expect((await client.send('/count')).body).toBe('1');
      expect((await client.send('/count')).body).toBe('2');
      const keys = await (redisClient as NonNullable<typeof redisClient>).keys(`${prefix}*`);
      expect(keys).toHaveLength(1);
      const id = decodeURIComponent((client.cookie as string).split('=')[1] as string).split('.')[1] as string;
      expect(keys[0]).not.toContain(id);
      await client.send('/logout');
      expect(await (redisClient as NonNullable<typeof redisClient>).keys(`${prefix}*`)).toHaveLength(0);
      expect((await client.send('/count')).body).toBe('1');
    });
  });
}
