// The floor: the least a session layer with sesh's security model has to do, written inline in one
// middleware with no abstraction, to compare sesh with (bench/README.md, "The floor"). Used by
// bench/tools/isolate.mjs (its floor variants) and by the full benchmark (`npm run bench -- --floor`:
// the `floor …` contenders of bench/contenders.mjs).
import { ServerResponse } from 'node:http';

/**
 * Install the floor of one kind of store on an Express app: `memory` (a `Map`), `sqlite` (one
 * SQLite table through better-sqlite3's prepared statements, as sesh's SQLite store keeps it, WAL
 * and synchronous=NORMAL; in `env.tmp` or a new temporary directory), `redis` (one GET or SET with
 * PX through ioredis, at `env.redisUrl`), `postgres` (one prepared SELECT or upsert on the pool
 * `env.pgPool()` returns), `async` (the `Map` answering through promises) or `stateless` (the data
 * sealed with AES-256-GCM in the cookie). Returns `{ close }`, which closes what it opened.
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
export async function installFloor(app, kind, env = {}) {
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
  /** What `close` undoes: clients and databases opened below. */
  const closers = [];

  let db;
  if (kind === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const conn = new Database(join(env.tmp ?? mkdtempSync(join(tmpdir(), 'sesh-floor-')), 'floor.db'));
    closers.push(() => conn.close());
    conn.pragma('journal_mode = WAL');
    conn.pragma('synchronous = NORMAL');
    conn.exec('CREATE TABLE s (key TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID');
    const get = conn.prepare('SELECT data AS text, expires_at AS expiresAt FROM s WHERE key = ?');
    const put = conn.prepare(
      'INSERT INTO s (key, data, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at',
    );
    db = { get: (key) => get.get(key), set: (key, rec) => put.run(key, rec.text, rec.expiresAt) };
  } else if (kind === 'redis') {
    const { default: Redis } = await import('ioredis');
    if (!env.redisUrl) throw new Error('The Redis floor needs a Redis URL (env.redisUrl).');
    const client = new Redis(env.redisUrl);
    closers.push(() => client.quit());
    // Redis enforces the expiry (PX): a record it returns is live.
    db = {
      get: (key) => client.get(key).then((text) => (text === null ? undefined : { text, expiresAt: Number.POSITIVE_INFINITY })),
      set: (key, rec) => client.set(key, rec.text, 'PX', LIFETIME),
    };
  } else if (kind === 'postgres') {
    if (!env.pgPool) throw new Error('The PostgreSQL floor needs a pg pool factory (env.pgPool).');
    const pool = await env.pgPool();
    closers.push(() => pool.end());
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
  } else if (kind === 'memory' || kind === 'stateless') {
    db = new Map(); // store key -> { text, expiresAt }
  } else if (kind === 'async') {
    // The same Map answering through promises, to compare with sesh's `async` variant.
    const map = new Map();
    db = { get: (key) => Promise.resolve(map.get(key)), set: (key, rec) => Promise.resolve(map.set(key, rec)) };
  } else {
    throw new Error(`unknown floor ${kind} (memory, sqlite, redis, postgres, async or stateless)`);
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
        if (kind === 'stateless') {
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
      if (kind === 'stateless') {
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
  return {
    close: async () => {
      for (const close of closers) await close();
    },
  };
}
