/**
 * RedisStore behaviour beyond the conformance suite, on real servers: options, client detection, key
 * layout and TTLs, the script cache fallback, Cluster slot spreading, and failing fast (server
 * stopped, server frozen) with recovery when Redis comes back, for ioredis and node-redis with their
 * default settings.
 */
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { Cluster, Redis as IORedis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isSeshError, StoreUnavailableError } from '../src/errors.js';
import { RedisStore } from '../src/stores/redis/index.js';
import type { StoredSession } from '../src/types.js';
import { type RedisCluster, type RedisServer, rawCommand, startRedis, startRedisCluster } from './support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const key = () => randomBytes(32).toString('base64url');
const prefix = () => `b${randomBytes(6).toString('hex')}:`;
const HOUR = 3_600_000;

function record(over: Partial<StoredSession> = {}): StoredSession {
  const now = Date.now();
  return {
    data: { a: 1, nested: { b: [1, 'x'] } },
    meta: { remember: true },
    createdAt: now,
    lastSeen: now,
    expiresAt: now + HOUR,
    userId: null,
    ...over,
  };
}

/** Resolve how long `p` took to settle, and its error (if any). */
async function timed(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const t0 = performance.now();
  try {
    await p;
    return { ms: performance.now() - t0, error: undefined };
  } catch (error) {
    return { ms: performance.now() - t0, error };
  }
}

/** Retry `fn` until it resolves (bounded); returns how long recovery took. */
async function until(fn: () => Promise<unknown>, limitMs = 15_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    try {
      await fn();
      return Date.now() - t0;
    } catch (err) {
      if (Date.now() - t0 > limitMs) throw err;
      await sleep(100);
    }
  }
}

describe('RedisStore options', () => {
  it('refuses a missing or unknown client, a prefix with braces and a bad commandTimeout', () => {
    const fakeIo = { status: 'ready', call: async () => null };
    // @ts-expect-error: the options are required
    expect(() => new RedisStore()).toThrow(/needs options/);
    // @ts-expect-error: client is required
    expect(() => new RedisStore({})).toThrow(/`client` is missing/);
    // @ts-expect-error: not a Redis client
    expect(() => new RedisStore({ client: { get: () => null } })).toThrow(/ioredis `Redis` or `Cluster`/);
    expect(() => new RedisStore({ client: fakeIo, prefix: 'a{b}:' })).toThrow(/prefix/);
    expect(() => new RedisStore({ client: fakeIo, commandTimeout: 0 })).toThrow(/commandTimeout/);
    expect(() => new RedisStore({ client: fakeIo, commandTimeout: Number.NaN })).toThrow(/commandTimeout/);
    try {
      new RedisStore({ client: fakeIo, prefix: '{x}' });
    } catch (err) {
      expect(isSeshError(err, 'INVALID_OPTIONS')).toBe(true);
    }
  });
});

describe('RedisStore on standalone Redis', () => {
  let server: RedisServer | undefined;
  let io: IORedis | undefined;
  let nr: ReturnType<typeof createClient> | undefined;
  const errors: unknown[] = [];

  beforeAll(async () => {
    server = await startRedis();
    io = new IORedis({ host: server.host, port: server.port });
    io.on('error', (e) => errors.push(e));
    nr = createClient({ url: server.url });
    nr.on('error', (e) => errors.push(e));
    await Promise.all([nr.connect(), io.ping()]);
  });
  afterAll(async () => {
    await Promise.allSettled([io?.quit(), nr?.quit()]);
    await server?.dispose();
  });

  const clients = () => [
    { name: 'ioredis', client: io as IORedis },
    { name: 'node-redis', client: nr as ReturnType<typeof createClient> },
  ];

  it('detects the client library', () => {
    expect(new RedisStore({ client: io as IORedis }).clientKind).toBe('ioredis');
    expect(new RedisStore({ client: nr as ReturnType<typeof createClient> }).clientKind).toBe('node-redis');
  });

  it('keeps one hash per session with a field per key and a PEXPIREAT at expiresAt', async () => {
    const redis = io as IORedis;
    for (const { client } of clients()) {
      const store = new RedisStore({ client, prefix: prefix() });
      const k = key();
      const rec = record({ userId: 'alice', expiresAt: Date.now() + HOUR + 0.5 });
      expect(await store.create(k, rec)).toBe(true);
      const hash = await redis.hgetall(store.sessionKey(k));
      expect(Object.keys(hash).sort()).toEqual(['_c', '_e', '_ix', '_l', '_u', 'd:a', 'd:nested', 'm:remember']);
      expect(hash['d:nested']).toBe('{"b":[1,"x"]}');
      expect(hash._u).toBe('alice');
      expect(store.sessionKey(k)).toMatch(/s:\{.+\}$/);
      // PEXPIREAT rounds up, so the key never dies before expiresAt.
      expect(Number(await redis.call('PEXPIRETIME', store.sessionKey(k)))).toBe(Math.ceil(rec.expiresAt));
      expect(await redis.smembers(store.userKey('alice'))).toEqual([k]);
      const indexUntil = Number(await redis.call('PEXPIRETIME', store.userKey('alice')));
      expect(indexUntil).toBeGreaterThanOrEqual(Math.ceil(rec.expiresAt));
      // A touch past the index expiry extends it; the session key follows expiresAt exactly.
      const later = Date.now() + 3 * 24 * HOUR;
      expect(await store.touch(k, Date.now(), later)).toBe(true);
      expect(Number(await redis.call('PEXPIRETIME', store.sessionKey(k)))).toBe(later);
      expect(Number(await redis.call('PEXPIRETIME', store.userKey('alice')))).toBeGreaterThan(later);
      // A touch that moves expiry back shortens the session key, never the index.
      const sooner = Date.now() + HOUR;
      const before = Number(await redis.call('PEXPIRETIME', store.userKey('alice')));
      expect(await store.touch(k, Date.now(), sooner)).toBe(true);
      expect(Number(await redis.call('PEXPIRETIME', store.sessionKey(k)))).toBe(sooner);
      expect(Number(await redis.call('PEXPIRETIME', store.userKey('alice')))).toBe(before);
      // Destroy removes the hash and (soon after) the index entry.
      expect(await store.destroy(k)).toBe(true);
      expect(await redis.exists(store.sessionKey(k))).toBe(0);
      await until(async () => expect(await redis.smembers(store.userKey('alice'))).toEqual([]), 2_000);
    }
  });

  it('patches keep the user fields and the index in step: extend, rebind, clear', async () => {
    const redis = io as IORedis;
    for (const { name, client } of clients()) {
      const store = new RedisStore({ client, prefix: prefix() });
      const k = key();
      expect(await store.create(k, record({ userId: 'alice', expiresAt: Date.now() + HOUR }))).toBe(true);
      const fields = async () => redis.hgetall(store.sessionKey(k));
      // A data patch that moves expiry past the index's extends the index set, and keeps the user.
      const later = Date.now() + 3 * 24 * HOUR;
      expect(await store.patch(k, { set: { b: 2 }, lastSeen: 5, expiresAt: later })).toBe(true);
      let hash = await fields();
      expect([hash._u, hash._e, hash._l, hash['d:b']], name).toEqual(['alice', String(later), '5', '2']);
      expect(Number(hash._ix)).toBeGreaterThan(later);
      expect(Number(await redis.call('PEXPIRETIME', store.userKey('alice')))).toBe(Number(hash._ix));
      expect(Number(await redis.call('PEXPIRETIME', store.sessionKey(k)))).toBe(later);
      // One that does not reach it leaves the index alone.
      const ix = hash._ix;
      expect(await store.patch(k, { set: { c: 3 }, expiresAt: Date.now() + HOUR })).toBe(true);
      hash = await fields();
      expect([hash._ix, hash._l, hash['d:c']]).toEqual([ix, '5', '3']);
      // Rebinding moves the session to the new user's index and out of the old one.
      expect(await store.patch(k, { userId: 'bob', expiresAt: Date.now() + HOUR })).toBe(true);
      hash = await fields();
      expect(hash._u).toBe('bob');
      expect(Number(hash._ix)).toBeGreaterThan(Date.now() + HOUR);
      expect(await redis.smembers(store.userKey('bob'))).toEqual([k]);
      await until(async () => expect(await redis.smembers(store.userKey('alice'))).toEqual([]), 2_000);
      expect((await store.listByUser('bob')).map((e) => e.key)).toEqual([k]);
      // Clearing the user drops both user fields; the data stays.
      expect(await store.patch(k, { userId: null, unset: ['b'], expiresAt: Date.now() + HOUR })).toBe(true);
      hash = await fields();
      expect(Object.keys(hash).sort(), name).toEqual(['_c', '_e', '_l', 'd:a', 'd:c', 'd:nested', 'm:remember']);
      expect((await store.get(k))?.userId).toBeNull();
      await until(async () => expect(await redis.smembers(store.userKey('bob'))).toEqual([]), 2_000);
      // A patch of a dead record writes nothing.
      expect(await store.destroy(k)).toBe(true);
      expect(await store.patch(k, { set: { d: 4 }, expiresAt: Date.now() + HOUR })).toBe(false);
      expect(await redis.exists(store.sessionKey(k))).toBe(0);
    }
  });

  it('reads a session in one round trip (one HGETALL), and patches, touches, destroys in one script call each', async () => {
    const port = (server as RedisServer).port;
    // MONITOR lists every command a client sends; commands run inside a script are marked "lua"
    // and are not round trips, so they are left out. An ECHO from another connection fences each op.
    const monitor = createConnection({ host: '127.0.0.1', port });
    let text = '';
    monitor.on('data', (d: Buffer) => {
      text += d.toString('utf8');
    });
    monitor.write('MONITOR\r\n');
    let fence = 0;
    const sent = async (): Promise<string[]> => {
      const mark = `fence-${++fence}`;
      await rawCommand(port, `ECHO ${mark}`);
      const deadline = Date.now() + 5_000;
      while (!text.includes(`"${mark}"`)) {
        if (Date.now() > deadline) throw new Error(`MONITOR did not show ${mark}: ${text.slice(-500)}`);
        await sleep(5);
      }
      const lines = text.split('\r\n');
      text = '';
      return lines
        .filter((l) => l.startsWith('+') && !l.includes(' lua]') && !/"(echo|ECHO)"/.test(l) && l !== '+OK')
        .map((l) => (/\] "([a-zA-Z]+)"/.exec(l)?.[1] ?? l).toLowerCase());
    };
    try {
      for (const { name, client } of clients()) {
        const store = new RedisStore({ client, prefix: prefix() });
        const k = key();
        expect(await store.create(k, record())).toBe(true);
        // Load the scripts once, so what follows is the steady state (EVALSHA, no fallback).
        expect(await store.patch(k, { set: { warm: 1 }, expiresAt: Date.now() + HOUR })).toBe(true);
        expect(await store.touch(k, Date.now(), Date.now() + HOUR)).toBe(true);
        const other = key();
        expect(await store.create(other, record())).toBe(true);
        expect(await store.destroy(other)).toBe(true);
        await sent();
        expect((await store.get(k))?.data.a, name).toBe(1);
        expect(await sent(), `${name}: get`).toEqual(['hgetall']);
        expect(await store.patch(k, { set: { b: 2 }, unset: ['a'], expiresAt: Date.now() + HOUR })).toBe(true);
        expect(await sent(), `${name}: patch`).toEqual(['evalsha']);
        expect(await store.touch(k, Date.now(), Date.now() + HOUR)).toBe(true);
        expect(await sent(), `${name}: touch`).toEqual(['evalsha']);
        expect(await store.destroy(k)).toBe(true);
        expect(await sent(), `${name}: destroy`).toEqual(['evalsha']);
      }
    } finally {
      monitor.destroy();
    }
  });

  it('re-sends a script with EVAL after SCRIPT FLUSH (NOSCRIPT fallback)', async () => {
    for (const { client } of clients()) {
      const store = new RedisStore({ client, prefix: prefix() });
      const k = key();
      await (io as IORedis).script('FLUSH');
      expect(await store.create(k, record())).toBe(true);
      await (io as IORedis).script('FLUSH');
      expect(await store.patch(k, { set: { z: 'zz' }, unset: ['a'], expiresAt: Date.now() + HOUR })).toBe(true);
      await (io as IORedis).script('FLUSH');
      expect(await store.touch(k, Date.now(), Date.now() + HOUR)).toBe(true);
      expect((await store.get(k))?.data).toEqual({ nested: { b: [1, 'x'] }, z: 'zz' });
    }
  });

  it('hands a hash it cannot read to the engine as corrupt (NaN times), never as a live session', async () => {
    const store = new RedisStore({ client: io as IORedis, prefix: prefix() });
    const k = key();
    await store.create(k, record());
    await (io as IORedis).hset(store.sessionKey(k), 'd:a', '{not json');
    const got = await store.get(k);
    expect(got).not.toBeNull();
    expect(Number.isNaN(got?.expiresAt)).toBe(true);
  });

  it('fails at once while the server is down, and recovers without a restart when it returns', async () => {
    const srv = await startRedis();
    // Default client settings on purpose: the store must fail fast whatever the client would do.
    const ioc = new IORedis({ host: srv.host, port: srv.port });
    const nrc = createClient({ url: srv.url });
    const seen: unknown[] = [];
    ioc.on('error', (e) => seen.push(e));
    nrc.on('error', (e) => seen.push(e));
    try {
      await Promise.all([ioc.ping(), nrc.connect()]);
      // A long commandTimeout: failing in well under it proves the store did not even wait for Redis.
      const stores = [
        new RedisStore({ client: ioc, prefix: prefix(), commandTimeout: 5_000 }),
        new RedisStore({ client: nrc, prefix: prefix(), commandTimeout: 5_000 }),
      ];
      const k = key();
      for (const s of stores) expect(await s.create(k, record({ userId: 'u1' }))).toBe(true);
      await srv.stop();
      await sleep(100); // let both clients notice the closed socket
      for (const s of stores) {
        for (const op of [
          () => s.get(k),
          () => s.create(key(), record()),
          () => s.patch(k, { set: { x: 1 }, expiresAt: Date.now() + HOUR }),
          () => s.touch(k, Date.now(), Date.now() + HOUR),
          () => s.destroy(k),
          () => s.listByUser('u1'),
          () => s.destroyByUser('u1'),
        ]) {
          const r = await timed(op());
          expect(r.error).toBeInstanceOf(StoreUnavailableError);
          expect((r.error as StoreUnavailableError).status).toBe(503);
          expect((r.error as Error).message).toMatch(/Redis is unavailable/);
          expect(r.ms).toBeLessThan(250);
        }
      }
      await srv.start();
      for (const s of stores) {
        const ms = await until(() => s.get(k));
        console.log(`[redis] ${s.clientKind} recovered ${ms} ms after the server came back`);
        // The server ran without persistence: the data is gone, but the store works again.
        expect(await s.create(k, record())).toBe(true);
        expect((await s.get(k))?.data.a).toBe(1);
      }
      expect(seen.length).toBeGreaterThan(0); // the errors went to our listeners, not to the process
    } finally {
      await Promise.allSettled([ioc.quit(), nrc.quit()]);
      ioc.disconnect();
      await srv.dispose();
    }
  });

  it('gives up after commandTimeout when the server accepts but never answers (frozen), then recovers', async () => {
    const srv = await startRedis();
    const ioc = new IORedis({ host: srv.host, port: srv.port });
    const nrc = createClient({ url: srv.url });
    ioc.on('error', () => {});
    nrc.on('error', () => {});
    try {
      await Promise.all([ioc.ping(), nrc.connect()]);
      const stores = [
        new RedisStore({ client: ioc, prefix: prefix(), commandTimeout: 300 }),
        new RedisStore({ client: nrc, prefix: prefix(), commandTimeout: 300 }),
      ];
      // The bound the engine trusts instead of setting a second deadline of its own.
      for (const s of stores) expect(s.operationTimeout).toBe(300);
      const k = key();
      for (const s of stores) await s.create(k, record());
      srv.pause();
      for (const s of stores) {
        const results = await Promise.all([timed(s.get(k)), timed(s.patch(k, { set: { b: 2 }, expiresAt: Date.now() + HOUR }))]);
        for (const r of results) {
          expect(r.error).toBeInstanceOf(StoreUnavailableError);
          expect((r.error as Error).message).toMatch(/within 300 ms/);
          expect(r.ms).toBeGreaterThanOrEqual(290);
          expect(r.ms).toBeLessThan(1_500); // bounded by commandTimeout, with room for a busy CI runner
        }
      }
      srv.resume();
      for (const s of stores) {
        await until(() => s.get(k));
        expect(await s.patch(k, { set: { c: 3 }, expiresAt: Date.now() + HOUR })).toBe(true);
        expect((await s.get(k))?.data.c).toBe(3);
      }
    } finally {
      srv.resume();
      await Promise.allSettled([ioc.quit(), nrc.quit()]);
      await srv.dispose();
    }
  });

  it('keeps the process alive through an outage when the app attached no error listener (fallback listener, warns once, removed by close)', async () => {
    const srv = await startRedis();
    // No 'error' listener: node-redis would crash the process on the first reconnection error.
    const nrc = createClient({ url: srv.url, socket: { reconnectStrategy: () => 50 } });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      await nrc.connect();
      const store = new RedisStore({ client: nrc, prefix: prefix() });
      expect(nrc.listenerCount('error')).toBe(1);
      const k = key();
      expect(await store.create(k, record())).toBe(true);
      await srv.kill();
      await sleep(400); // several failed reconnections, each an 'error' event
      expect((await timed(store.get(k))).error).toBeInstanceOf(StoreUnavailableError);
      const ours = warn.mock.calls.filter((c) => String(c[0]).includes('RedisStore'));
      expect(ours).toHaveLength(1);
      expect(String(ours[0]?.[0])).toMatch(/client\.on\('error'/);
      await srv.start();
      await until(() => store.get(k));
      await store.close();
      expect(nrc.listenerCount('error')).toBe(0);
      // An app that has its own listener gets no fallback.
      nrc.on('error', () => {});
      new RedisStore({ client: nrc, prefix: prefix() });
      expect(nrc.listenerCount('error')).toBe(1);
    } finally {
      warn.mockRestore();
      await Promise.allSettled([nrc.quit()]);
      await srv.dispose();
    }
  });

  it('reports a closed client as unavailable without sending anything', async () => {
    const srv = server as RedisServer;
    const nrc = createClient({ url: srv.url });
    nrc.on('error', () => {});
    const store = new RedisStore({ client: nrc, prefix: prefix() });
    const r = await timed(store.get(key()));
    expect(r.error).toBeInstanceOf(StoreUnavailableError);
    expect((r.error as Error).message).toMatch(/client.connect\(\)/);
    expect(r.ms).toBeLessThan(50);
    expect(errors).toEqual([]);
  });
});

describe('RedisStore on Cluster', () => {
  let cluster: RedisCluster | undefined;
  let io: Cluster | undefined;
  let nr: ReturnType<typeof createCluster> | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    io = new Cluster(cluster.startupNodes);
    io.on('error', () => {});
    nr = createCluster({ rootNodes: cluster.startupNodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })) });
    nr.on('error', () => {});
    await Promise.all([nr.connect(), new Promise((r) => io?.once('ready', r))]);
  });
  afterAll(async () => {
    await Promise.allSettled([io?.quit(), nr?.quit()]);
    await cluster?.dispose();
  });

  /** Hash slot of a key, asked to a node (CLUSTER KEYSLOT). */
  const slotOf = async (name: string) => {
    const port = cluster?.nodes[0]?.port as number;
    return Number((await rawCommand(port, `CLUSTER KEYSLOT ${name}`)).slice(1));
  };
  /** `host:port` of the master serving a slot, from ioredis' slot map. */
  const nodeOfSlot = (slot: number): string => (io as Cluster).slots[slot]?.[0] ?? 'none';

  it('detects the cluster clients', () => {
    expect(new RedisStore({ client: io as Cluster }).clientKind).toBe('ioredis-cluster');
    expect(new RedisStore({ client: nr as ReturnType<typeof createCluster> }).clientKind).toBe('node-redis-cluster');
  });

  it('spreads one user’s sessions over several slots and nodes, and the index still finds them all', async () => {
    for (const client of [io as Cluster, nr as ReturnType<typeof createCluster>]) {
      const store = new RedisStore({ client, prefix: prefix() });
      const keys = Array.from({ length: 12 }, key);
      for (const k of keys) expect(await store.create(k, record({ userId: 'bob' }))).toBe(true);
      const slots = await Promise.all(keys.map((k) => slotOf(store.sessionKey(k))));
      expect(new Set(slots).size).toBeGreaterThan(6);
      // Three masters share the slots: 12 random keys hit two nodes or more (all on one: p ≈ 3^-11).
      expect(new Set(slots.map(nodeOfSlot)).size).toBeGreaterThan(1);
      expect((await store.listByUser('bob')).map((e) => e.key).sort()).toEqual([...keys].sort());
      expect(await store.destroyByUser('bob', [keys[0] as string])).toBe(11);
      expect((await store.listByUser('bob')).map((e) => e.key)).toEqual([keys[0]]);
    }
  });

  it('fails fast when a master is down and recovers when it returns', async () => {
    const c = cluster as RedisCluster;
    const stores = [
      new RedisStore({ client: io as Cluster, prefix: prefix() }),
      new RedisStore({ client: nr as ReturnType<typeof createCluster>, prefix: prefix() }),
    ];
    const node = c.nodes[1] as RedisServer;
    // A session key served by the node about to freeze.
    let k = key();
    while (nodeOfSlot(await slotOf(stores[0]?.sessionKey(k) ?? '')) !== `127.0.0.1:${node.port}`) k = key();
    for (const s of stores) await s.create(k, record());
    node.pause();
    try {
      for (const s of stores) {
        const r = await timed(s.get(k));
        expect(r.error).toBeInstanceOf(StoreUnavailableError);
        expect(r.ms).toBeLessThan(1_500); // bounded by commandTimeout, with room for a busy CI runner
        // Keys on the frozen node time out, keys elsewhere may still answer: every call is bounded.
        const many = await Promise.all(Array.from({ length: 10 }, () => timed(s.get(key()))));
        expect(Math.max(...many.map((m) => m.ms))).toBeLessThan(1_500);
      }
    } finally {
      node.resume();
    }
    for (const s of stores) {
      await until(() => Promise.all(Array.from({ length: 10 }, () => s.get(key()))));
      expect((await s.get(k))?.data.a).toBe(1);
    }
  });
});
