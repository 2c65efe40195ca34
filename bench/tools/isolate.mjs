// Where does the session layer's HTTP cost go? Runs minimal Express servers that each add one
// ingredient of sesh, interleaved in rounds, and prints the server CPU µs per request of each
// (process.cpuUsage of the server process over the requests it served).
//
//   node bench/tools/isolate.mjs [variants] [route] [rounds] [seconds]
//   e.g. node bench/tools/isolate.mjs bare,await,prop,engine,sesh write 5 2
//
// Variants: bare (no session layer); layer (an empty middleware: one more router layer); await
// (an async middleware that awaits once before next()); prop (sets req.session = {}: one property
// added to a request); engine (the engine called directly from a middleware: load, change,
// commit, no response deferral); sesh (the sesh/express middleware, memory store); sqlite (the
// same on the SQLite store, in a temporary directory); redis (the same on the Redis store, at
// REDIS_URL, through ioredis); postgres (on the PostgreSQL store, PG_CONFIG); async (the memory
// store through its asynchronous methods only, as a store on a server is seen, without the
// network); stateless (the sesh/stateless middleware, no revocation store); floor, floor-sqlite,
// floor-redis, floor-postgres, floor-async and floor-stateless (the least a session layer with
// sesh's security model has to do, written inline: see bench/floor.mjs). The routes are
// those of bench/server.mjs. sesh is loaded from dist/ (SESH_DIST=/dir for another
// build). Servers are pinned to core 0 and the load generator to core 1 when taskset exists.
// Environment: CONN (connections, default 50); SESH_OPTIONS (JSON options added to the sesh
// variants', e.g. '{"trackClient":false}', to see what a feature costs); PREFILL (the sesh variant's
// memory store holds that many other sessions first). Prints the median CPU per request, and its user
// and system parts.
import { execFileSync, fork } from 'node:child_process';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SECRET = 'bench-3f9c1d7e5a2b8c4d6e0f1a2b3c4d5e6f7a8b9c0d';
const dist = pathToFileURL(`${resolve(process.env.SESH_DIST ?? fileURLToPath(new URL('../../dist', import.meta.url)))}/`).href;

/** The Redis server of the redis and floor-redis variants (start one yourself: REDIS_URL). */
function redisUrl() {
  if (!process.env.REDIS_URL)
    throw new Error('The redis variants need REDIS_URL (e.g. redis://127.0.0.1:6390 of a redis-server you started).');
  return process.env.REDIS_URL;
}

/** A pg pool on the PostgreSQL server of the postgres variants (PG_CONFIG: pg's connection options as JSON). */
async function pgPool() {
  if (!process.env.PG_CONFIG)
    throw new Error(
      'The postgres variants need PG_CONFIG (pg connection options as JSON, e.g. {"host":"127.0.0.1","port":5433,"user":"postgres","database":"postgres"}).',
    );
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ ...JSON.parse(process.env.PG_CONFIG), max: 10 });
  pool.on('error', () => undefined);
  return pool;
}

function pin(pid, core) {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
  } catch {
    // no taskset, or one core: run unpinned
  }
}

if (process.argv[2] === '--serve') {
  // ---------------------------------------------------------------- server side
  const variant = process.argv[3];
  /** SESH_OPTIONS (JSON): more options for the sesh variants, to see what one costs. */
  const extra = JSON.parse(process.env.SESH_OPTIONS ?? '{}');
  const { default: express } = await import('express');
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (variant === 'await') {
    app.use(async (_req, _res, next) => {
      await null;
      next();
    });
  } else if (variant === 'layer') {
    app.use((_req, _res, next) => {
      next();
    });
  } else if (variant === 'prop') {
    app.use((req, _res, next) => {
      req.session = {};
      next();
    });
  } else if (variant === 'engine') {
    const { createSessions } = await import(`${dist}index.js`);
    const { MemoryStore } = await import(`${dist}stores/memory.js`);
    const sessions = createSessions({ secret: SECRET, store: new MemoryStore({ quiet: true }) });
    app.use(async (req, res, next) => {
      const s = await sessions.load({ cookie: req.headers.cookie, secure: req.secure, host: req.headers.host, ip: req.ip });
      if (req.path === '/write') s.session.count = (s.session.count ?? 0) + 1;
      else if (req.path === '/login' || req.path === '/new') s.session.user = 'ada';
      else if (s.session.user !== 'ada') throw new Error('lost session');
      const { setCookie } = await sessions.commit(s);
      if (setCookie.length) res.setHeader('set-cookie', setCookie);
      next();
    });
  } else if (variant === 'sesh') {
    const { session } = await import(`${dist}express.js`);
    const { MemoryStore } = await import(`${dist}stores/memory.js`);
    const store = new MemoryStore({ quiet: true });
    // PREFILL=n: n other sessions in the store first, as after a while in production or after the
    // full benchmark's /new rounds (the default maxEntries is 10,000).
    const now = Date.now();
    for (let i = 0; i < Number(process.env.PREFILL ?? 0); i++) {
      store.createSync(`prefill-${i}`, {
        data: { user: 'ada' },
        meta: {},
        createdAt: now,
        lastSeen: now,
        expiresAt: now + 3_600_000,
        userId: null,
      });
    }
    app.use(session({ secret: SECRET, store, ...extra }));
  } else if (variant === 'async') {
    // The memory store seen through its asynchronous methods only, as a store on a server is: the
    // engine's and the adapter's asynchronous path (store promises, response held until the
    // commit settled) without a network round trip.
    const { session } = await import(`${dist}express.js`);
    const { MemoryStore } = await import(`${dist}stores/memory.js`);
    const inner = new MemoryStore({ quiet: true });
    const store = {
      get: (key) => inner.get(key),
      create: (key, record) => inner.create(key, record),
      patch: (key, patch) => inner.patch(key, patch),
      touch: (key, lastSeen, expiresAt) => inner.touch(key, lastSeen, expiresAt),
      destroy: (key) => inner.destroy(key),
    };
    app.use(session({ secret: SECRET, store, ...extra }));
  } else if (variant === 'sqlite') {
    const { session } = await import(`${dist}express.js`);
    const { SqliteStore } = await import(`${dist}stores/sqlite.js`);
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const path = join(mkdtempSync(join(tmpdir(), 'sesh-isolate-')), 'sessions.db');
    app.use(session({ secret: SECRET, store: new SqliteStore({ path }), ...extra }));
  } else if (variant === 'redis') {
    const { session } = await import(`${dist}express.js`);
    const { RedisStore } = await import(`${dist}stores/redis.js`);
    const { default: Redis } = await import('ioredis');
    app.use(session({ secret: SECRET, store: new RedisStore({ client: new Redis(redisUrl()) }), ...extra }));
  } else if (variant === 'postgres') {
    const { session } = await import(`${dist}express.js`);
    const { PostgresStore } = await import(`${dist}stores/postgres.js`);
    app.use(session({ secret: SECRET, store: new PostgresStore({ pool: await pgPool() }), ...extra }));
  } else if (variant === 'stateless') {
    const { session } = await import(`${dist}stateless.js`);
    app.use(session({ secret: SECRET }));
  } else if (variant.startsWith('floor')) {
    const { installFloor } = await import('../floor.mjs');
    const kind = variant === 'floor' ? 'memory' : variant.slice('floor-'.length);
    await installFloor(app, kind, { redisUrl: kind === 'redis' ? redisUrl() : undefined, pgPool });
  } else if (variant !== 'bare') {
    throw new Error(`unknown variant ${variant}`);
  }
  app.get('/login', (req, res) => {
    if (req.session) {
      req.session.user = 'ada';
      req.session.count = 0;
    }
    res.send('ok');
  });
  app.get('/read', (req, res) => {
    res.send(req.session ? String(req.session.user ?? 'anonymous') : 'ada');
  });
  app.get('/write', (req, res) => {
    let n = 1;
    if (req.session) {
      n = (req.session.count ?? 0) + 1;
      req.session.count = n;
    }
    res.send(String(n));
  });
  app.get('/new', (req, res) => {
    if (req.session) req.session.user = 'ada';
    res.send('ok');
  });
  let requests = 0;
  const server = createServer(app);
  server.keepAliveTimeout = 60_000;
  server.on('request', () => {
    requests++;
  });
  server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));
  process.on('message', (m) => {
    if (m.type === 'stats') process.send({ type: 'stats', cpu: process.cpuUsage(), requests });
    else process.exit(0);
  });
} else {
  // ---------------------------------------------------------------- driver
  const { default: autocannon } = await import('autocannon');
  const [variantsArg = 'bare,await,prop,engine,sesh', route = 'read', roundsArg = '5', secondsArg = '2'] = process.argv.slice(2);
  const variants = variantsArg.split(',');
  const rounds = Number(roundsArg);
  const seconds = Number(secondsArg);
  const connections = Number(process.env.CONN ?? 50);
  pin(process.pid, 1);
  const servers = [];
  for (const v of variants) {
    const child = fork(fileURLToPath(import.meta.url), ['--serve', v], { env: { ...process.env, NODE_ENV: 'production' } });
    pin(child.pid, 0);
    const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
    const stats = () =>
      new Promise((r) => {
        child.once('message', r);
        child.send({ type: 'stats' });
      });
    servers.push({ v, child, port, stats, samples: [], user: [], system: [] });
  }
  for (let round = 0; round <= rounds; round++) {
    for (const s of servers) {
      let cookie;
      if (route !== 'new') {
        const r = await fetch(`http://127.0.0.1:${s.port}/login`);
        cookie = r.headers
          .getSetCookie()
          .map((c) => c.split(';')[0])
          .join('; ');
      }
      const before = await s.stats();
      const res = await autocannon({
        url: `http://127.0.0.1:${s.port}/${route}`,
        connections,
        duration: round === 0 ? 1 : seconds,
        headers: cookie ? { cookie } : {},
      });
      const after = await s.stats();
      if (res.non2xx) throw new Error(`${s.v}: ${res.non2xx} non-2xx answers`);
      const n = after.requests - before.requests;
      const user = after.cpu.user - before.cpu.user;
      const system = after.cpu.system - before.cpu.system;
      if (round > 0) {
        // round 0 warms up
        s.samples.push((user + system) / n);
        s.user.push(user / n);
        s.system.push(system / n);
      }
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(`GET /${route}, ${connections} connections, ${rounds} rounds × ${seconds} s; server CPU µs per request`);
  for (const s of servers) {
    console.log(
      `${s.v.padEnd(8)} median ${median(s.samples).toFixed(1).padStart(6)}   min ${Math.min(...s.samples)
        .toFixed(1)
        .padStart(6)}   user ${median(s.user).toFixed(1).padStart(6)}   system ${median(s.system).toFixed(1).padStart(6)}`,
    );
    s.child.send({ type: 'close' });
  }
}
