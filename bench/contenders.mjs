// The session layers under test. Each factory returns { middleware?, save?(req), close?() }.
// sesh is imported by its package name (self-reference), i.e. from the built dist/ like an app would.
// A factory whose module does not exist yet throws ERR_PACKAGE_PATH_NOT_EXPORTED / ERR_MODULE_NOT_FOUND
// and the harness reports the contender as skipped.
import { join } from 'node:path';

/** Signing secret shared by every contender (length suits all of them). */
export const SECRET = 'bench-3f9c1d7e5a2b8c4d6e0f1a2b3c4d5e6f7a8b9c0d';
const THIRTY_MINUTES = 30 * 60_000;

async function seshWith(makeStore) {
  const { session } = await import('sesh/express');
  const { store, close } = await makeStore();
  const mw = session({ secret: SECRET, store });
  return {
    middleware: mw,
    close: async () => {
      await mw.close();
      await close?.();
    },
  };
}

async function ioredis(url) {
  const { default: Redis } = await import('ioredis');
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  await client.ping();
  return client;
}

async function pgPool(config) {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ ...config, max: 10 });
  pool.on('error', () => undefined);
  return pool;
}

/** The floor of one kind of store (bench/floor.mjs), as a layer that installs itself on the app. */
function floorOf(kind, env) {
  let installed;
  return {
    install: async (app) => {
      const { installFloor } = await import('./floor.mjs');
      installed = await installFloor(app, kind, env);
    },
    close: () => installed?.close(),
  };
}

function expressSessionWith(store) {
  return import('express-session').then(({ default: session }) => ({
    middleware: session({
      secret: SECRET,
      store,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: THIRTY_MINUTES, httpOnly: true, sameSite: 'lax', secure: false },
    }),
  }));
}

/** @type {Record<string, (env: { redisUrl?: string, pg?: object, tmp: string }) => Promise<object>>} */
export const contenders = {
  'express (bare)': async () => ({}),

  'sesh memory': () =>
    seshWith(async () => {
      const { MemoryStore } = await import('sesh/stores/memory');
      return { store: new MemoryStore({ quiet: true }) };
    }),

  'sesh sqlite': (env) =>
    seshWith(async () => {
      const { SqliteStore } = await import('sesh/stores/sqlite');
      return { store: new SqliteStore({ path: join(env.tmp, 'sessions.db') }) };
    }),

  'sesh redis': (env) =>
    seshWith(async () => {
      const { RedisStore } = await import('sesh/stores/redis');
      const client = await ioredis(env.redisUrl);
      return { store: new RedisStore({ client }), close: () => client.quit() };
    }),

  'sesh postgres': (env) =>
    seshWith(async () => {
      const { PostgresStore } = await import('sesh/stores/postgres');
      const pool = await pgPool(env.pg);
      return { store: new PostgresStore({ pool }), close: () => pool.end() };
    }),

  'sesh stateless': async () => {
    const { session } = await import('sesh/stateless');
    const mw = session({ secret: SECRET });
    return { middleware: mw, close: () => mw.close() };
  },

  'express-session memory': async () => {
    const { default: session } = await import('express-session');
    return expressSessionWith(new session.MemoryStore());
  },

  'express-session connect-redis': async (env) => {
    const { createClient } = await import('redis');
    const { RedisStore } = await import('connect-redis');
    const client = createClient({ url: env.redisUrl });
    client.on('error', () => undefined);
    await client.connect();
    const layer = await expressSessionWith(new RedisStore({ client }));
    return { ...layer, close: () => client.quit() };
  },

  'express-session connect-pg-simple': async (env) => {
    const { default: session } = await import('express-session');
    const { default: connectPg } = await import('connect-pg-simple');
    const PgStore = connectPg(session);
    const pool = await pgPool(env.pg);
    const store = new PgStore({ pool, createTableIfMissing: true, pruneSessionInterval: false });
    const layer = await expressSessionWith(store);
    return { ...layer, close: () => pool.end() };
  },

  'cookie-session': async () => {
    const { default: cookieSession } = await import('cookie-session');
    return { middleware: cookieSession({ name: 'session', keys: [SECRET], maxAge: THIRTY_MINUTES, sameSite: 'lax' }) };
  },

  'iron-session': async () => {
    const { getIronSession } = await import('iron-session');
    const options = {
      password: SECRET,
      cookieName: 'session',
      ttl: 30 * 60,
      cookieOptions: { secure: false, httpOnly: true, sameSite: 'lax' },
    };
    return {
      middleware: (req, res, next) => {
        getIronSession(req, res, options).then((s) => {
          req.session = s;
          next();
        }, next);
      },
      save: (req) => req.session.save(),
    };
  },

  // The floors (bench/floor.mjs): the least any session layer with sesh's security model does, per
  // store. Only run with `--floor`, to measure what the targets leave room for in the same rounds.
  'floor memory': async () => floorOf('memory', {}),
  'floor sqlite': async (env) => floorOf('sqlite', { tmp: env.tmp }),
  'floor redis': async (env) => floorOf('redis', { redisUrl: env.redisUrl }),
  'floor postgres': async (env) => floorOf('postgres', { pgPool: () => pgPool(env.pg) }),
  'floor stateless': async () => floorOf('stateless', {}),
};

/** Contenders that need a Redis or PostgreSQL server. */
export const needs = {
  redis: ['sesh redis', 'express-session connect-redis', 'floor redis'],
  postgres: ['sesh postgres', 'express-session connect-pg-simple', 'floor postgres'],
};

/** Contenders whose names start with this only run when asked for (`--floor`). */
export const FLOOR_PREFIX = 'floor ';
