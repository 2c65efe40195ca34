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
// sesh's security model has to do, written inline: see `floor()` at the end). The routes are
// those of bench/server.mjs. sesh is loaded from dist/ (SESH_DIST=/dir for another
// build). Servers are pinned to core 0 and the load generator to core 1 when taskset exists.
// Environment: CONN (connections, default 50); SESH_OPTIONS (JSON options added to the sesh
// variants', e.g. '{"trackClient":false}', to see what a feature costs). Prints the median CPU per request, and its user
// and system parts.
import { execFileSync, fork } from 'node:child_process';
import { createServer, ServerResponse } from 'node:http';
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
    app.use(session({ secret: SECRET, store: new MemoryStore({ quiet: true }), ...extra }));
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
    await floor(app, variant);
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

/**
 * The least a session layer with sesh's security model has to do, written inline with no
 * abstraction, as a floor to compare sesh with (`floor`: memory, `floor-sqlite`: one SQLite table
 * through better-sqlite3's prepared statements, as sesh's SQLite store keeps it, WAL and
 * synchronous=NORMAL; `floor-redis`: one GET or SET with PX through ioredis, at REDIS_URL;
 * `floor-postgres`: one prepared SELECT or upsert on a pg pool of 10, PG_CONFIG;
 * `floor-stateless`: the data sealed with AES-256-GCM in the cookie).
 *
 * Server-side: find the cookie, check its HMAC-SHA256 in constant time, hash the ID into the store
 * key, look the record up, check its expiry, parse its data; before the response, compare the data
 * with what was loaded and write it back when it changed; a new session gets a random 256-bit ID, a
 * record and a signed cookie. Stateless: open the sealed cookie, check the expiry inside it, parse;
 * seal again when the data changed. Not done (sesh does): idle timeout, rolling, touch, size limit,
 * store deadline, device list, per-key patch, key rotation, security events, response deferral.
 * `req.session` is an accessor on the app's request prototype (a property added to each request
 * costs more).
 */
async function floor(app, variant) {
  const { createCipheriv, createDecipheriv, hash, randomFillSync, timingSafeEqual } = await import('node:crypto');
  const secretKey = Buffer.alloc(32, 7);
  const pads = Buffer.alloc(128);
  for (let i = 0; i < 64; i++) {
    pads[i] = (secretKey[i] ?? 0) ^ 0x36;
    pads[64 + i] = (secretKey[i] ?? 0) ^ 0x5c;
  }
  const inner = Buffer.alloc(64 + 43);
  const outer = Buffer.alloc(64 + 32);
  pads.copy(inner, 0, 0, 64);
  pads.copy(outer, 0, 64, 128);
  /** HMAC-SHA256 of a 43-character ID (RFC 2104 over two one-shot hashes, as sesh does it). */
  const mac = (id) => {
    inner.write(id, 64, 'latin1');
    outer.write(hash('sha256', inner, 'latin1'), 64, 'latin1');
    return hash('sha256', outer, 'base64url');
  };
  const expected = Buffer.alloc(32);
  const given = Buffer.alloc(32);
  const pool = Buffer.alloc(4096);
  let offset = 4096;
  const random = (n) => {
    if (offset + n > 4096) {
      randomFillSync(pool);
      offset = 0;
    }
    offset += n;
    return pool.subarray(offset - n, offset);
  };
  const LIFETIME = 86_400_000;
  const aad = Buffer.from('sesh floor');

  let db;
  if (variant === 'floor-sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const conn = new Database(join(mkdtempSync(join(tmpdir(), 'sesh-floor-')), 'floor.db'));
    conn.pragma('journal_mode = WAL');
    conn.pragma('synchronous = NORMAL');
    conn.exec('CREATE TABLE s (key TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID');
    const get = conn.prepare('SELECT data AS text, expires_at AS expiresAt FROM s WHERE key = ?');
    const put = conn.prepare(
      'INSERT INTO s (key, data, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at',
    );
    db = { get: (key) => get.get(key), set: (key, rec) => put.run(key, rec.text, rec.expiresAt) };
  } else if (variant === 'floor-redis') {
    const { default: Redis } = await import('ioredis');
    const client = new Redis(redisUrl());
    // Redis enforces the expiry (PX): a record it returns is live.
    db = {
      get: (key) => client.get(key).then((text) => (text === null ? undefined : { text, expiresAt: Number.POSITIVE_INFINITY })),
      set: (key, rec) => client.set(key, rec.text, 'PX', LIFETIME),
    };
  } else if (variant === 'floor-postgres') {
    const pool = await pgPool();
    await pool.query('CREATE TABLE IF NOT EXISTS floor_s (key TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at BIGINT NOT NULL)');
    db = {
      get: (key) =>
        pool
          .query({ name: 'floor-get', text: 'SELECT data AS text, expires_at FROM floor_s WHERE key = $1', values: [key] })
          .then(({ rows }) => (rows.length === 0 ? undefined : { text: rows[0].text, expiresAt: Number(rows[0].expires_at) })),
      set: (key, rec) =>
        pool.query({
          name: 'floor-set',
          text: 'INSERT INTO floor_s (key, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at',
          values: [key, rec.text, rec.expiresAt],
        }),
    };
  } else if (variant === 'floor' || variant === 'floor-stateless') {
    db = new Map(); // store key -> { text, expiresAt }
  } else if (variant === 'floor-async') {
    // The same Map answering through promises, to compare with sesh's `async` variant.
    const map = new Map();
    db = { get: (key) => Promise.resolve(map.get(key)), set: (key, rec) => Promise.resolve(map.set(key, rec)) };
  } else {
    throw new Error(`unknown variant ${variant}`);
  }

  const seal = (text) => {
    const nonce = random(12);
    const c = createCipheriv('aes-256-gcm', secretKey, nonce);
    c.setAAD(aad);
    const body = Buffer.concat([nonce, c.update(JSON.stringify({ d: text, e: Date.now() + LIFETIME })), c.final(), c.getAuthTag()]);
    return body.toString('base64url');
  };
  const open = (token) => {
    const raw = Buffer.from(token, 'base64url');
    if (raw.length < 28) return null;
    try {
      const d = createDecipheriv('aes-256-gcm', secretKey, raw.subarray(0, 12));
      d.setAAD(aad);
      d.setAuthTag(raw.subarray(raw.length - 16));
      const payload = JSON.parse(d.update(raw.subarray(12, raw.length - 16), undefined, 'utf8') + d.final('utf8'));
      return payload.e > Date.now() ? payload.d : null;
    } catch {
      return null;
    }
  };

  const states = new WeakMap(); // res -> { key, text, data }
  Object.defineProperty(app.request, 'session', {
    get() {
      return states.get(this.res)?.data;
    },
  });
  const { end } = ServerResponse.prototype;
  app.response.end = function (...args) {
    const st = states.get(this);
    if (st !== undefined) {
      states.delete(this);
      const text = JSON.stringify(st.data);
      if (text !== st.text) {
        if (variant === 'floor-stateless') {
          this.setHeader('Set-Cookie', `sid=${seal(text)}; Path=/; HttpOnly; SameSite=Lax`);
        } else {
          let key = st.key;
          if (key === null) {
            const id = random(32).toString('base64url');
            key = hash('sha256', id, 'base64url');
            this.setHeader('Set-Cookie', `sid=${id}.${mac(id)}; Path=/; HttpOnly; SameSite=Lax`);
          }
          const written = db.set(key, { text, expiresAt: Date.now() + LIFETIME });
          if (written instanceof Promise) {
            // The record is written before the response leaves, as sesh does.
            written.then(() => end.apply(this, args));
            return this;
          }
        }
      }
    }
    return end.apply(this, args);
  };
  app.use((req, res, next) => {
    let st = { key: null, text: '{}', data: {} };
    const c = req.headers.cookie;
    const at = c === undefined ? -1 : c.indexOf('sid=');
    if (at !== -1 && (at === 0 || c[at - 1] === ' ')) {
      const semi = c.indexOf(';', at);
      const token = c.slice(at + 4, semi === -1 ? c.length : semi);
      if (variant === 'floor-stateless') {
        const text = token.length <= 4096 ? open(token) : null;
        if (text !== null) st = { key: null, text, data: JSON.parse(text) };
      } else if (token.length === 87 && token[43] === '.') {
        const id = token.slice(0, 43);
        expected.write(mac(id), 0, 'base64url');
        if (given.write(token.slice(44), 0, 'base64url') === 32 && timingSafeEqual(expected, given)) {
          const key = hash('sha256', id, 'base64url');
          const rec = db.get(key);
          const found = (r) => {
            if (r !== undefined && r.expiresAt > Date.now()) states.set(res, { key, text: r.text, data: JSON.parse(r.text) });
            else states.set(res, st);
            next();
          };
          if (rec instanceof Promise) rec.then(found, next);
          else found(rec);
          return;
        }
      }
    }
    states.set(res, st);
    next();
  });
}
