import fc from 'fast-check';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSeshError, OptionsError } from '../src/errors.js';
import { PostgresStore, type PostgresStoreOptions } from '../src/stores/postgres/index.js';
import { FakeClock, runStoreSuite } from '../src/testing/index.js';
import type { StoredSession } from '../src/types.js';
import { makePool, type PgServer, startPostgres, uniqueTable } from './support/postgres.js';

let server: PgServer;
let pool: pg.Pool;
const stores: PostgresStore[] = [];

beforeAll(async () => {
  server = await startPostgres();
  pool = makePool(server, { max: 12 });
});

afterAll(async () => {
  for (const s of stores) await s.close();
  await pool?.end().catch(() => {});
  await server?.destroy();
});

function makeStore(options: Partial<PostgresStoreOptions> = {}): { store: PostgresStore; clock: FakeClock; table: string } {
  const clock = new FakeClock(1_700_000_000_000);
  const table = options.table ?? uniqueTable();
  const store = new PostgresStore({ pool, clock, table, purgeInterval: 0, ...options });
  stores.push(store);
  return { store, clock, table };
}

function record(clock: FakeClock, over: Partial<StoredSession> = {}): StoredSession {
  const now = clock.now();
  return { data: { a: 1 }, meta: { ip: '127.0.0.1' }, createdAt: now, lastSeen: now, expiresAt: now + 60_000, userId: null, ...over };
}

async function rows(table: string): Promise<Record<string, unknown>[]> {
  return (await pool.query(`SELECT * FROM "public"."${table}" ORDER BY key`)).rows;
}

runStoreSuite(
  ({ clock }) => {
    const table = uniqueTable('suite');
    const store = new PostgresStore({ pool, clock, table, purgeInterval: 0 });
    return {
      store,
      cleanup: async () => {
        await pool.query(`DROP TABLE IF EXISTS public."${table}"; DROP TABLE IF EXISTS public."${table}_migrations"`);
      },
    };
  },
  { name: 'PostgresStore passes the sesh store conformance suite', require: ['userIndex', 'purge', 'close'], describe, it },
);

describe('PostgresStore contract on a real PostgreSQL', () => {
  it('creates, reads fresh copies, and refuses to create over a live row', async () => {
    const { store, clock } = makeStore();
    const rec = record(clock, { data: { n: 1, nested: { list: [1, 'two', null, true] }, s: 'é ✓ "q" \\' } });
    expect(await store.get('k1')).toBeNull();
    expect(await store.create('k1', rec)).toBe(true);
    const got = await store.get('k1');
    expect(got).toEqual(rec);
    (got as StoredSession).data.n = 99;
    expect((await store.get('k1'))?.data.n).toBe(1);
    expect(await store.create('k1', record(clock, { data: { other: true } }))).toBe(false);
    expect((await store.get('k1'))?.data).toEqual(rec.data);
  });

  it('never returns an expired row, and lets create take over an expired, unpurged row', async () => {
    const { store, clock, table } = makeStore();
    await store.create('k', record(clock, { expiresAt: clock.now() + 1000, data: { old: true }, userId: 'u1' }));
    clock.advance(999);
    expect(await store.get('k')).not.toBeNull();
    clock.advance(1);
    expect(await store.get('k')).toBeNull();
    expect(await store.patch('k', { set: { x: 1 }, expiresAt: clock.now() + 5000 })).toBe(false);
    expect(await store.touch('k', clock.now(), clock.now() + 5000)).toBe(false);
    expect(await rows(table)).toHaveLength(1); // still there, just dead
    expect(await store.create('k', record(clock, { data: { fresh: true } }))).toBe(true);
    const got = await store.get('k');
    expect(got?.data).toEqual({ fresh: true });
    expect(got?.userId).toBeNull();
  });

  it('patches per key, update-if-exists, with meta, lastSeen and user binding', async () => {
    const { store, clock } = makeStore();
    expect(await store.patch('missing', { set: { a: 1 }, expiresAt: clock.now() + 1000 })).toBe(false);
    expect(await store.get('missing')).toBeNull();
    await store.create('k', record(clock, { data: { a: 1, b: 2, c: 3 }, meta: { ip: 'x', roles: ['r'] } }));
    clock.advance(10);
    const ok = await store.patch('k', {
      set: { b: 'two', d: { deep: [1] }, gone: undefined },
      unset: ['c', 'nope'],
      metaSet: { authTime: 5 },
      metaUnset: ['ip'],
      lastSeen: clock.now(),
      expiresAt: clock.now() + 9000,
      userId: 'alice',
    });
    expect(ok).toBe(true);
    const got = await store.get('k');
    expect(got?.data).toEqual({ a: 1, b: 'two', d: { deep: [1] } });
    expect(got?.meta).toEqual({ roles: ['r'], authTime: 5 });
    expect(got?.lastSeen).toBe(clock.now());
    expect(got?.expiresAt).toBe(clock.now() + 9000);
    expect(got?.userId).toBe('alice');
    // userId undefined leaves it; lastSeen undefined leaves it; null unbinds.
    await store.patch('k', { set: { e: 1 }, expiresAt: clock.now() + 8000 });
    expect((await store.get('k'))?.userId).toBe('alice');
    expect((await store.get('k'))?.lastSeen).toBe(clock.now());
    await store.patch('k', { expiresAt: clock.now() + 8000, userId: null });
    expect((await store.get('k'))?.userId).toBeNull();
  });

  it('touch moves only lastSeen and expiresAt', async () => {
    const { store, clock } = makeStore();
    const rec = record(clock, { userId: 'u' });
    await store.create('k', rec);
    clock.advance(500);
    expect(await store.touch('k', clock.now(), clock.now() + 70_000)).toBe(true);
    expect(await store.get('k')).toEqual({ ...rec, lastSeen: clock.now(), expiresAt: clock.now() + 70_000 });
    expect(await store.touch('absent', clock.now(), clock.now() + 1)).toBe(false);
  });

  it('destroy reports whether a live row existed; exactly one of two concurrent destroys wins', async () => {
    const { store, clock, table } = makeStore();
    await store.create('k', record(clock));
    const results = await Promise.all([store.destroy('k'), store.destroy('k')]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await store.destroy('k')).toBe(false);
    await store.create('dead', record(clock, { expiresAt: clock.now() + 1 }));
    clock.advance(5);
    expect(await store.destroy('dead')).toBe(false);
    expect(await rows(table)).toHaveLength(0);
  });

  it('keeps every key of 100 parallel patches on one session (no lost update)', async () => {
    const { store, clock } = makeStore();
    await store.create('k', record(clock, { data: {} }));
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.patch('k', { set: { [`key${i}`]: i }, expiresAt: clock.now() + 60_000 })),
    );
    expect(results.every(Boolean)).toBe(true);
    const data = (await store.get('k'))?.data ?? {};
    expect(Object.keys(data)).toHaveLength(100);
    for (let i = 0; i < 100; i++) expect(data[`key${i}`]).toBe(i);
  });

  it('drops prototype-pollution keys written to the table by anyone, at every depth', async () => {
    const { store, clock, table } = makeStore();
    await store.create('k', record(clock));
    await pool.query(`UPDATE "public"."${table}" SET data = $1::jsonb, meta = $2::jsonb WHERE key = 'k'`, [
      '{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"isAdmin":true}},"ok":{"__proto__":{"polluted":1},"v":2}}',
      '{"__proto__":{"isAdmin":true},"ip":"1"}',
    ]);
    const got = await store.get('k');
    expect(got?.data).toEqual({ ok: { v: 2 } });
    expect(Object.hasOwn(got?.data ?? {}, '__proto__')).toBe(false);
    expect((got?.data as { isAdmin?: boolean } | undefined)?.isAdmin).toBeUndefined();
    expect(({} as { isAdmin?: boolean; polluted?: number }).isAdmin).toBeUndefined();
    expect(({} as { polluted?: number }).polluted).toBeUndefined();
    expect(got?.meta).toEqual({ ip: '1' });
    // and they are never written either
    await store.create('k2', record(clock, { data: JSON.parse('{"__proto__":{"x":1},"z":1}') }));
    await store.patch('k2', { set: JSON.parse('{"__proto__":{"x":1},"y":1}'), expiresAt: clock.now() + 1000 });
    const raw = (await pool.query(`SELECT data::text AS d FROM "public"."${table}" WHERE key = 'k2'`)).rows[0]?.d as string;
    expect(raw).not.toContain('__proto__');
    expect(raw).toContain('"y": 1');
  });

  it('round-trips any string PostgreSQL cannot hold as such (NUL, lone surrogates), as values and keys', async () => {
    const { store, clock } = makeStore();
    const unit = fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom('\u0000', '\uFDD0', '\uD800', '\uDFFF', '"', '\\', 'é', '😀'),
    );
    const str = fc.string({ unit, maxLength: 12 });
    const key = str.filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k));
    const value = fc.oneof(str, fc.array(str, { maxLength: 3 }), fc.dictionary(key, str, { maxKeys: 3 }), fc.integer());
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.dictionary(key, value, { maxKeys: 4 }), fc.dictionary(key, value, { maxKeys: 3 }), async (data, set) => {
        const k = `prop${n++}`;
        expect(await store.create(k, record(clock, { data, meta: { ua: Object.keys(data).join('|') } }))).toBe(true);
        expect((await store.get(k))?.data).toEqual(data);
        const unset = Object.keys(data).slice(0, 1);
        expect(await store.patch(k, { set, unset, expiresAt: clock.now() + 1000 })).toBe(true);
        const expected: Record<string, unknown> = { ...data };
        for (const u of unset) delete expected[u];
        Object.assign(expected, set);
        expect((await store.get(k))?.data).toEqual(expected);
      }),
      { numRuns: 60 },
    );
  });

  it('lists and destroys the sessions of a user, with exceptKeys, ignoring expired rows', async () => {
    const { store, clock } = makeStore();
    await store.create('a1', record(clock, { userId: 'alice', createdAt: clock.now() - 2 }));
    await store.create('a2', record(clock, { userId: 'alice', createdAt: clock.now() - 1 }));
    await store.create('a3', record(clock, { userId: 'alice', expiresAt: clock.now() + 10 }));
    await store.create('b1', record(clock, { userId: 'bob' }));
    await store.create('anon', record(clock));
    await store.patch('anon', { expiresAt: clock.now() + 60_000, userId: 'alice' });
    clock.advance(20);
    const list = await store.listByUser('alice');
    expect(list.map((e) => e.key).sort()).toEqual(['a1', 'a2', 'anon']);
    expect(list.find((e) => e.key === 'a1')?.session.userId).toBe('alice');
    expect(await store.listByUser('nobody')).toEqual([]);
    expect(await store.destroyByUser('alice', ['a2'])).toBe(2); // a1 + anon; a3 was expired
    expect((await store.listByUser('alice')).map((e) => e.key)).toEqual(['a2']);
    expect(await store.get('b1')).not.toBeNull();
    expect(await store.destroyByUser('alice')).toBe(1);
    expect(await store.listByUser('alice')).toEqual([]);
  });

  it('purges expired rows in batches and leaves live ones', async () => {
    const { store, clock, table } = makeStore({ purgeBatchSize: 7 });
    await store.migrate();
    await pool.query(
      `INSERT INTO "public"."${table}" (key, data, meta, created_at, last_seen, expires_at)
       SELECT 'dead' || g, '{}', '{}', $1::bigint, $1::bigint, $1::bigint + 5 FROM generate_series(1, 30) g`,
      [clock.now()],
    );
    await store.create('live', record(clock));
    clock.advance(10);
    expect(await store.purgeExpired()).toBe(30);
    expect((await rows(table)).map((r) => r.key)).toEqual(['live']);
    expect(await store.purgeExpired()).toBe(0);
  });

  it('runs the purge on an unref’d timer when purgeInterval is set, and close() stops it', async () => {
    const { store, clock, table } = makeStore({ purgeInterval: 30 });
    await store.create('dead', record(clock, { expiresAt: clock.now() + 1 }));
    clock.advance(2);
    const deadline = Date.now() + 5000;
    while ((await rows(table)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await rows(table)).toHaveLength(0);
    await store.close();
    await pool.query(
      `INSERT INTO "public"."${table}" (key, data, meta, created_at, last_seen, expires_at) VALUES ('dead2', '{}', '{}', 0, 0, 1)`,
    );
    await new Promise((r) => setTimeout(r, 150));
    expect(await rows(table)).toHaveLength(1);
  });
});

describe('PostgresStore schema and migrations', () => {
  it('creates the schema on first use with JSONB columns, bigint times and both indexes', async () => {
    const { store, clock, table } = makeStore({ schema: 'sesh_custom' });
    await store.create('k', record(clock));
    const cols = await pool.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'sesh_custom' AND table_name = $1 ORDER BY column_name`,
      [table],
    );
    expect(Object.fromEntries(cols.rows.map((r) => [r.column_name, r.data_type]))).toEqual({
      key: 'text',
      data: 'jsonb',
      meta: 'jsonb',
      created_at: 'bigint',
      last_seen: 'bigint',
      expires_at: 'bigint',
      user_id: 'text',
    });
    const idx = await pool.query(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'sesh_custom' AND tablename = $1`, [table]);
    const defs = idx.rows.map((r) => String(r.indexdef)).join('\n');
    expect(defs).toMatch(/\(expires_at\)/);
    expect(defs).toMatch(/\(user_id\)/);
    expect(defs).toMatch(/PRIMARY KEY|pkey/i);
    const versions = await pool.query(`SELECT version FROM sesh_custom."${table}_migrations" ORDER BY version`);
    expect(versions.rows.map((r) => r.version)).toEqual([1, 2]);
  });

  it('migrates under an advisory lock when many instances start at once', async () => {
    const table = uniqueTable();
    const clock = new FakeClock(1_700_000_000_000);
    const many = Array.from({ length: 8 }, () => makeStore({ table }).store);
    const results = await Promise.all(many.map((s, i) => s.create(`k${i}`, record(clock))));
    expect(results.every(Boolean)).toBe(true);
    const versions = await pool.query(`SELECT version FROM public."${table}_migrations" ORDER BY version`);
    expect(versions.rows.map((r) => r.version)).toEqual([1, 2]);
    expect(await rows(table)).toHaveLength(8);
  });

  it('migrates an old (version 1) table forward, keeping its rows', async () => {
    const table = uniqueTable('old');
    const now = 1_700_000_000_000;
    await pool.query(`CREATE TABLE public."${table}" (key text PRIMARY KEY, data jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at bigint NOT NULL, last_seen bigint NOT NULL, expires_at bigint NOT NULL)`);
    await pool.query(`CREATE TABLE public."${table}_migrations" (version integer PRIMARY KEY, description text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    await pool.query(`INSERT INTO public."${table}_migrations" (version, description) VALUES (1, 'v1')`);
    await pool.query(`INSERT INTO public."${table}" VALUES ('old', '{"cart":[1,2]}', $1, $1, $2)`, [now, now + 60_000]);
    const { store, clock } = makeStore({ table });
    const got = await store.get('old');
    expect(got).toEqual({ data: { cart: [1, 2] }, meta: {}, createdAt: now, lastSeen: now, expiresAt: now + 60_000, userId: null });
    expect(await store.patch('old', { set: { x: 1 }, metaSet: { authTime: 1 }, expiresAt: clock.now() + 1000, userId: 'u' })).toBe(true);
    expect((await store.listByUser('u')).map((e) => e.key)).toEqual(['old']);
    const versions = await pool.query(`SELECT version FROM public."${table}_migrations" ORDER BY version`);
    expect(versions.rows.map((r) => r.version)).toEqual([1, 2]);
  });

  it('a table already migrated by a later release is used as is (rolling deploy), never migrated back', async () => {
    const table = uniqueTable('newer');
    const first = makeStore({ table });
    await first.store.migrate();
    const later = PostgresStore.schemaVersion + 1;
    await pool.query(`INSERT INTO public."${table}_migrations" (version, description) VALUES ($1, 'from a later release')`, [later]);
    const { store, clock } = makeStore({ table });
    expect(await store.create('k', record(clock))).toBe(true);
    expect(await store.patch('k', { set: { b: 2 }, expiresAt: clock.now() + 1000 })).toBe(true);
    expect((await store.get('k'))?.data).toEqual({ a: 1, b: 2 });
    const versions = await pool.query(`SELECT version FROM public."${table}_migrations" ORDER BY version`);
    expect(versions.rows.map((r) => r.version)).toEqual([...Array.from({ length: PostgresStore.schemaVersion }, (_, i) => i + 1), later]);
  });

  it('createSchema: false never runs DDL, fails with a clear error, and works once schemaSql() was applied', async () => {
    const { store, clock, table } = makeStore({ createSchema: false });
    const err = await store.get('k').catch((e: unknown) => e);
    expect(isSeshError(err, 'INVALID_OPTIONS')).toBe(true);
    expect(String((err as Error).message)).toMatch(/schemaSql/);
    const exists = await pool.query('SELECT to_regclass($1) AS t', [`public."${table}"`]);
    expect(exists.rows[0]?.t).toBeNull();
    const sql = PostgresStore.schemaSql({ table });
    expect(sql).toContain('pg_advisory_xact_lock');
    await pool.query(sql);
    await pool.query(sql); // idempotent
    expect(await store.create('k', record(clock))).toBe(true);
    expect(await store.get('k')).not.toBeNull();
  });

  it('runs its statements prepared by default (one name per statement and table), one-off with preparedStatements: false', async () => {
    // One connection, so pg_prepared_statements (per connection) shows what the stores prepared.
    const single = makePool(server, { max: 1 });
    const prepared = async () =>
      (await single.query('SELECT name FROM pg_prepared_statements ORDER BY name')).rows.map((r) => String(r.name));
    try {
      const clock = new FakeClock(1_700_000_000_000);
      const a = new PostgresStore({ pool: single, clock, table: uniqueTable('prep'), purgeInterval: 0 });
      const b = new PostgresStore({ pool: single, clock, table: uniqueTable('prep'), purgeInterval: 0 });
      const off = new PostgresStore({ pool: single, clock, table: uniqueTable('prep'), purgeInterval: 0, preparedStatements: false });
      stores.push(a, b, off);
      await off.create('k', record(clock));
      await off.patch('k', { set: { b: 2 }, expiresAt: clock.now() + 1000 });
      expect((await off.get('k'))?.data).toEqual({ a: 1, b: 2 });
      expect(await prepared()).toEqual([]);
      // Two stores on two tables share the connection: same operations, different statements.
      for (const store of [a, b, a, b]) {
        await store.create('k', record(clock));
        await store.patch('k', { set: { b: 2 }, expiresAt: clock.now() + 1000 });
        expect((await store.get('k'))?.data).toEqual({ a: 1, b: 2 });
      }
      const names = await prepared();
      expect(names).toHaveLength(6);
      for (const op of ['create', 'get', 'patch']) {
        expect(names.filter((n) => new RegExp(`^sesh_${op}_[0-9a-f]{16}$`).test(n))).toHaveLength(2);
      }
    } finally {
      await single.end();
    }
  });

  it('validates identifiers instead of interpolating them', () => {
    expect(() => new PostgresStore({ pool, table: 'x"; DROP TABLE y; --' })).toThrow(OptionsError);
    expect(() => new PostgresStore({ pool, schema: 'a.b' })).toThrow(/plain SQL identifier/);
    expect(() => new PostgresStore({ pool, table: 'a'.repeat(49) })).toThrow(OptionsError);
    expect(() => new PostgresStore({ pool: undefined as unknown as pg.Pool })).toThrow(/needs a `pool`/);
    expect(() => new PostgresStore({ pool, queryTimeout: 0 })).toThrow(/queryTimeout/);
    expect(() => new PostgresStore({ pool, preparedStatements: 'no' as unknown as boolean })).toThrow(/preparedStatements/);
    expect(PostgresStore.schemaSql({ schema: 'app', table: 'Sessions' })).toContain('"app"."Sessions"');
  });
});

describe('PostgresStore failures', () => {
  it('fails fast with STORE_UNAVAILABLE when nothing listens, and leaks no client', async () => {
    const { port } = server.config;
    const deadPool = makePool({ ...server, config: { ...server.config, port: port === 1 ? 2 : 1 } } as PgServer, { max: 3 });
    const store = new PostgresStore({ pool: deadPool, table: uniqueTable(), purgeInterval: 0, queryTimeout: 1500 });
    const t0 = Date.now();
    const errs = await Promise.all(Array.from({ length: 5 }, () => store.get('k').catch((e: unknown) => e)));
    expect(Date.now() - t0).toBeLessThan(1500);
    for (const e of errs) expect(isSeshError(e, 'STORE_UNAVAILABLE')).toBe(true);
    expect(deadPool.totalCount).toBe(0);
    expect(deadPool.waitingCount).toBe(0);
    await store.close();
    await deadPool.end();
  });

  it('an app pool without an error listener does not crash when idle connections die; close() detaches', async () => {
    const { Pool } = (await import('pg')).default;
    const bare = new Pool({ ...server.config, max: 3, application_name: 'sesh-bare' });
    try {
      const store = new PostgresStore({ pool: bare, table: uniqueTable(), purgeInterval: 0 });
      expect(bare.listenerCount('error')).toBe(1);
      const clock = new FakeClock();
      await Promise.all([store.create('a', record(clock)), store.create('b', record(clock)), store.get('c')]);
      expect(bare.idleCount).toBeGreaterThan(0);
      const killed = await pool.query(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = 'sesh-bare'`,
      );
      expect(killed.rows[0]?.n).toBeGreaterThan(0);
      const deadline = Date.now() + 3000;
      while (bare.totalCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(bare.totalCount).toBe(0); // the dead idle clients were dropped, the process is alive
      expect((await store.get('a'))?.data).toEqual({ a: 1 });
      await store.close();
      expect(bare.listenerCount('error')).toBe(0);
      // An app that attached its own listener keeps it, and the store adds none.
      const own = () => {};
      bare.on('error', own);
      const s2 = new PostgresStore({ pool: bare, table: uniqueTable(), purgeInterval: 0 });
      expect(bare.listeners('error')).toEqual([own]);
      await s2.close();
    } finally {
      await bare.end();
    }
  });

  it('every client the pool opens keeps a quiet error listener, even while handed out (a FATAL in the same packet cannot crash the process)', async () => {
    const { Pool } = (await import('pg')).default;
    const own = new Pool({ ...server.config, max: 2 });
    own.on('error', () => {});
    try {
      const store = new PostgresStore({ pool: own, table: uniqueTable(), purgeInterval: 0 });
      const clock = new FakeClock();
      await store.create('a', record(clock));
      // pg-pool removes its own idle listener from a client it hands out; ours stays.
      const client = await own.connect();
      expect(client.listenerCount('error')).toBe(1);
      client.release(true);
      expect((await store.get('a'))?.data).toEqual({ a: 1 });
      await store.close();
      expect(own.listenerCount('connect')).toBe(0);
    } finally {
      await own.end();
    }
  });

  it('bounds a hung query by queryTimeout and discards that client', async () => {
    const { store, clock, table } = makeStore({ queryTimeout: 300 });
    // It declares its bound (so the engine sets no second deadline) only once the schema is
    // current: until then an operation also waits for the migration, whose budget is longer.
    expect(store.operationTimeout).toBeUndefined();
    await store.create('k', record(clock));
    expect(store.operationTimeout).toBe(300);
    const locker = await pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE public."${table}" IN ACCESS EXCLUSIVE MODE`);
      const t0 = Date.now();
      const err = await store.get('k').catch((e: unknown) => e);
      const took = Date.now() - t0;
      expect(isSeshError(err, 'STORE_UNAVAILABLE')).toBe(true);
      expect(took).toBeLessThan(1500);
      await locker.query('ROLLBACK');
    } finally {
      locker.release();
    }
    expect((await store.get('k'))?.data).toEqual({ a: 1 });
    expect(pool.waitingCount).toBe(0);
    expect(pool.totalCount - pool.idleCount).toBe(0);
  });

  it('bounds the wait for a pool client by queryTimeout, and gives a client that comes late back to the pool', async () => {
    const small = makePool(server, { max: 1 });
    try {
      const { store, clock } = makeStore({ pool: small, queryTimeout: 300 });
      await store.create('k', record(clock));
      const held = await small.connect();
      const t0 = Date.now();
      const err = await store.get('k').catch((e: unknown) => e);
      expect(isSeshError(err, 'STORE_UNAVAILABLE')).toBe(true);
      expect((err as Error).message).toContain('no PostgreSQL connection within 300 ms');
      expect(Date.now() - t0).toBeLessThan(1500);
      // The timed-out operation is still queued for a client: the one held goes to it, and back.
      held.release();
      for (let i = 0; i < 50 && (small.waitingCount > 0 || small.idleCount < 1); i++) await new Promise((r) => setTimeout(r, 10));
      expect([small.waitingCount, small.totalCount, small.idleCount]).toEqual([0, 1, 1]);
      // With max 1, a leaked client would leave every later operation waiting.
      expect((await store.get('k'))?.data).toEqual({ a: 1 });
      await store.close();
    } finally {
      await small.end();
    }
  });
});
