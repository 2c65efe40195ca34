import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createSessions, isSeshError, type SeshEvent, type StoredSession } from '../src/index.js';
import { SQLITE_SCHEMA_VERSION, SqliteStore, type SqliteStoreOptions } from '../src/stores/sqlite/index.js';
import { FakeClock } from '../src/testing/index.js';
import { killAll, ROOT, runNode, TSX } from './support/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'sesh-sqlite-'));
let n = 0;
const file = (name = 'db') => join(dir, `${name}-${n++}.db`);
const open: SqliteStore[] = [];
function store(options: SqliteStoreOptions = {}): SqliteStore {
  const s = new SqliteStore({ path: file(), purgeInterval: 0, ...options });
  open.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

function record(clock: FakeClock, over: Partial<StoredSession> = {}): StoredSession {
  const now = clock.now();
  return { data: { a: 1 }, meta: {}, createdAt: now, lastSeen: now, expiresAt: now + 60_000, userId: null, ...over };
}

/**
 * Another connection (in a worker thread, as another process would be) holds a write lock on
 * `path` (`BEGIN IMMEDIATE`, as a store's migration does) for `ms`. Resolves once the lock is
 * held; `released` settles when the worker has committed and exited.
 */
async function holdWriteLock(path: string, ms: number): Promise<{ released: Promise<void> }> {
  const worker = new Worker(
    `const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))});
     const { parentPort, workerData } = require('node:worker_threads');
     const db = new Database(workerData.path);
     db.exec('BEGIN IMMEDIATE');
     parentPort.postMessage('locked');
     setTimeout(() => { db.exec('COMMIT'); db.close(); }, workerData.ms);`,
    { eval: true, workerData: { path, ms } },
  );
  const released = new Promise<void>((resolve, reject) => {
    worker.once('exit', () => resolve());
    worker.once('error', reject);
  });
  await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { released };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('SqliteStore: operations', () => {
  it('creates, reads fresh copies, refuses a live duplicate and replaces an expired one', async () => {
    const clock = new FakeClock();
    const s = store({ clock });
    expect(await s.create('k', record(clock, { data: { a: 1, nested: { x: [1, 2] } } }))).toBe(true);
    const got = await s.get('k');
    expect(got).toEqual(record(clock, { data: { a: 1, nested: { x: [1, 2] } } }));
    (got?.data as { a: number }).a = 99;
    expect((await s.get('k'))?.data.a).toBe(1);
    expect(await s.create('k', record(clock, { data: { b: 2 } }))).toBe(false);
    expect((await s.get('k'))?.data).toEqual({ a: 1, nested: { x: [1, 2] } });
    clock.advance(60_000);
    expect(await s.get('k')).toBeNull(); // expiresAt === now is expired
    expect(await s.create('k', record(clock, { data: { b: 2 } }))).toBe(true);
    expect((await s.get('k'))?.data).toEqual({ b: 2 });
  });

  it('patches per key, update-if-exists only, and moves the user binding', async () => {
    const clock = new FakeClock();
    const s = store({ clock });
    const now = clock.now();
    await s.create('k', record(clock, { data: { a: 1, b: 2, n: null }, meta: { ip: '1.2.3.4' } }));
    expect(await s.patch('k', { set: { a: 10, c: { d: true } }, unset: ['b'], metaSet: { authTime: 5 }, expiresAt: now + 5000 })).toBe(
      true,
    );
    expect(await s.patch('k', { set: { e: 'x' }, lastSeen: now + 1, expiresAt: now + 6000, userId: 'u1' })).toBe(true);
    expect(await s.get('k')).toEqual({
      data: { a: 10, n: null, c: { d: true }, e: 'x' },
      meta: { ip: '1.2.3.4', authTime: 5 },
      createdAt: now,
      lastSeen: now + 1,
      expiresAt: now + 6000,
      userId: 'u1',
    });
    expect(await s.patch('missing', { set: { a: 1 }, expiresAt: now + 1000 })).toBe(false);
    expect(await s.get('missing')).toBeNull();
    clock.advance(6000);
    expect(await s.patch('k', { set: { a: 1 }, expiresAt: clock.now() + 1000 })).toBe(false);
    expect(await s.touch('k', clock.now(), clock.now() + 1000)).toBe(false);
    expect(await s.get('k')).toBeNull();
  });

  it('touches and destroys: destroy reports only live records, exactly one of two concurrent destroys wins', async () => {
    const clock = new FakeClock();
    const s = store({ clock });
    await s.create('k', record(clock));
    expect(await s.touch('k', clock.now() + 10, clock.now() + 99_000)).toBe(true);
    expect(await s.get('k')).toMatchObject({ lastSeen: clock.now() + 10, expiresAt: clock.now() + 99_000 });
    const wins = await Promise.all([s.destroy('k'), s.destroy('k')]);
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await s.touch('k', clock.now(), clock.now() + 1000)).toBe(false);
    await s.create('old', record(clock, { expiresAt: clock.now() + 10 }));
    clock.advance(10);
    expect(await s.destroy('old')).toBe(false);
  });

  it('lists and destroys by user, keeping exceptKeys and ignoring expired sessions', async () => {
    const clock = new FakeClock();
    const s = store({ clock });
    await s.create('a1', record(clock, { userId: 'alice', lastSeen: clock.now() + 2 }));
    await s.create('a2', record(clock, { userId: 'alice', lastSeen: clock.now() + 1 }));
    await s.create('a3', record(clock, { userId: 'alice', expiresAt: clock.now() + 5 }));
    await s.create('b1', record(clock, { userId: 'bob' }));
    await s.create('anon', record(clock));
    await s.patch('anon', { expiresAt: clock.now() + 60_000, userId: 'alice' });
    clock.advance(5);
    expect((await s.listByUser('alice')).map((e) => e.key)).toEqual(['a1', 'a2', 'anon']);
    expect((await s.listByUser('alice'))[0]?.session.userId).toBe('alice');
    expect(await s.listByUser('nobody')).toEqual([]);
    expect(await s.destroyByUser('alice', ['a2'])).toBe(2);
    expect((await s.listByUser('alice')).map((e) => e.key)).toEqual(['a2']);
    expect(await s.destroyByUser('alice')).toBe(1);
    expect(await s.get('b1')).not.toBeNull();
  });

  it('drops prototype-pollution keys read from the file at every depth', async () => {
    const clock = new FakeClock();
    const path = file();
    const s = store({ clock, path });
    await s.create('k', record(clock));
    const raw = new Database(path);
    raw
      .prepare('UPDATE sesh_sessions SET data = ?, meta = ? WHERE key = ?')
      .run('{"__proto__":{"isAdmin":true},"a":{"constructor":{"prototype":{"isAdmin":true}},"ok":1}}', '{"__proto__":{"x":1}}', 'k');
    raw.close();
    const got = await s.get('k');
    expect(got?.data).toEqual({ a: { ok: 1 } });
    expect(Object.hasOwn(got?.data ?? {}, '__proto__')).toBe(false);
    expect((got?.data as { isAdmin?: boolean } | undefined)?.isAdmin).toBeUndefined();
    expect(({} as { isAdmin?: boolean }).isAdmin).toBeUndefined();
    expect(got?.meta).toEqual({});
  });

  it('a row with corrupt JSON gives "no session" (corrupt_session) through the engine, and a patch never overwrites it', async () => {
    const path = file();
    const s = store({ path });
    const events: SeshEvent[] = [];
    const sessions = createSessions({ secret: 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A', store: s, onEvent: (e) => events.push(e) });
    const ctx = { secure: true, host: 'localhost' };
    const first = await sessions.load({ ...ctx, cookie: undefined });
    (first.session as unknown as Record<string, unknown>).user = 'alice';
    const { setCookie } = await sessions.commit(first);
    const cookie = (setCookie[0] as string).split(';')[0] as string;
    const key = first.storeKey as string;
    expect((await sessions.load({ ...ctx, cookie })).session).toMatchObject({ user: 'alice' });

    const raw = new Database(path);
    raw.prepare('UPDATE sesh_sessions SET data = ? WHERE key = ?').run('{"user":', key);
    await expect(s.patch(key, { set: { x: 1 }, expiresAt: Date.now() + 1000 })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect((raw.prepare('SELECT data FROM sesh_sessions WHERE key = ?').get(key) as { data: string }).data).toBe('{"user":');
    for (const bad of ['"str"', '[]', 'null', '42']) {
      raw.prepare('UPDATE sesh_sessions SET data = ? WHERE key = ?').run(bad, key);
      const state = await sessions.load({ ...ctx, cookie });
      expect(state.session).not.toHaveProperty('user');
      expect(events.at(-1)?.type).toBe('corrupt_session');
      await s.create(key, {
        data: { user: 'alice' },
        meta: {},
        createdAt: Date.now(),
        lastSeen: Date.now(),
        expiresAt: Date.now() + 60_000,
        userId: null,
      });
    }
    raw.close();
  });

  it('works on :memory: and on a database handle the app passes (which close() leaves open)', async () => {
    const clock = new FakeClock();
    const mem = store({ clock, path: ':memory:' });
    await mem.create('k', record(clock));
    expect((await mem.get('k'))?.data).toEqual({ a: 1 });
    expect(mem.path).toBe(':memory:');

    const handle = new Database(':memory:');
    const own = new SqliteStore({ database: handle, clock, table: 'app_sessions', purgeInterval: 0 });
    await own.create('k', record(clock));
    await own.close();
    expect(handle.open).toBe(true);
    expect(handle.prepare('SELECT count(*) AS n FROM app_sessions').get()).toEqual({ n: 1 });
    handle.close();
  });

  it('rejects every operation after close(), and close() twice is fine', async () => {
    const s = store();
    await s.close();
    await s.close();
    await expect(s.get('k')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(s.purgeExpired()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });
});

describe('SqliteStore: startup and bad input', () => {
  it('rejects bad options with INVALID_OPTIONS', () => {
    for (const o of [
      { table: 'x; DROP TABLE y' },
      { table: 'sesh_schema' },
      { synchronous: 'OFF' },
      { busyTimeout: -1 },
      { purgeInterval: Number.NaN },
      { purgeInterval: 2 ** 31 },
      { purgeBatchSize: 0 },
      { driver: 'sqlite3' },
      { path: '' },
      { path: file(), database: new Database(':memory:') },
      { onBackgroundError: 'log' },
    ]) {
      const err = thrown(() => new SqliteStore(o as SqliteStoreOptions));
      expect(isSeshError(err, 'INVALID_OPTIONS'), JSON.stringify(Object.keys(o))).toBe(true);
    }
  });

  it('a directory given as the file fails with a clear typed error', () => {
    const d = join(dir, 'a-directory');
    mkdirSync(d);
    const err = thrown(() => new SqliteStore({ path: d })) as Error;
    expect(isSeshError(err, 'INVALID_OPTIONS')).toBe(true);
    expect(err.message).toContain('is a directory');
  });

  it('an unwritable location (its parent is a regular file) fails with a clear typed error', () => {
    const blocker = join(dir, 'blocker');
    writeFileSync(blocker, 'x');
    const err = thrown(() => new SqliteStore({ path: join(blocker, 'sub', 'sessions.db') })) as Error;
    expect(isSeshError(err, 'INVALID_OPTIONS')).toBe(true);
    expect(err.message).toMatch(/writable location/);
  });

  it('a database the process can only read fails at startup, not on the first request', () => {
    const path = file();
    new SqliteStore({ path, purgeInterval: 0 }).close();
    const readonly = new Database(path, { readonly: true });
    const err = thrown(() => new SqliteStore({ database: readonly })) as Error;
    readonly.close();
    expect(isSeshError(err, 'INVALID_OPTIONS')).toBe(true);
    expect(err.message).toMatch(/cannot write/);
  });

  it('a file that is not a SQLite database fails clearly and is left byte-for-byte untouched', () => {
    const path = join(dir, 'notes.txt');
    const content = 'These are my notes, not a database.\n'.repeat(200);
    writeFileSync(path, content);
    const err = thrown(() => new SqliteStore({ path })) as Error;
    expect(isSeshError(err, 'INVALID_OPTIONS')).toBe(true);
    expect(err.message).toContain('is not a SQLite database');
    expect(readFileSync(path, 'utf8')).toBe(content);
  });

  it('a new file another process is writing to: the switch to WAL waits for it, up to busyTimeout', async () => {
    // SQLite answers a journal-mode switch under another connection's write lock with SQLITE_BUSY
    // at once, without the busy timeout: two processes starting on a new file at the same moment.
    const path = file();
    const lock = await holdWriteLock(path, 300);
    const s = store({ path });
    const clock = new FakeClock();
    expect(await s.create('k', record(clock))).toBe(true);
    expect((await s.get('k'))?.data).toEqual({ a: 1 });
    await lock.released;
    const check = new Database(path);
    expect(check.pragma('journal_mode', { simple: true })).toBe('wal');
    check.close();

    // A lock held longer than busyTimeout still fails at startup, with the cause named.
    const other = file();
    const long = await holdWriteLock(other, 1_000);
    const err = thrown(() => new SqliteStore({ path: other, busyTimeout: 100, purgeInterval: 0 })) as Error;
    expect(isSeshError(err, 'INVALID_OPTIONS')).toBe(true);
    expect(err.message).toContain('database is locked');
    await long.released;
  });

  it('a database from a newer schema version is refused, not downgraded', () => {
    const path = file();
    const raw = new Database(path);
    raw.exec(`CREATE TABLE sesh_schema (table_name TEXT PRIMARY KEY, version INTEGER NOT NULL);
      INSERT INTO sesh_schema VALUES ('sesh_sessions', ${SQLITE_SCHEMA_VERSION + 1});`);
    raw.close();
    const err = thrown(() => new SqliteStore({ path })) as Error;
    expect(isSeshError(err, 'INVALID_OPTIONS')).toBe(true);
    expect(err.message).toContain('newer version of sesh');
  });

  it("driver 'node:sqlite' on a runtime without it says what to do", () => {
    const has =
      typeof (process as { getBuiltinModule?: unknown }).getBuiltinModule === 'function' &&
      (() => {
        try {
          return !!process.getBuiltinModule('node:sqlite');
        } catch {
          return false;
        }
      })();
    if (has) {
      const s = store({ driver: 'node:sqlite' });
      expect(s.driver).toBe('node:sqlite');
    } else {
      const err = thrown(() => new SqliteStore({ driver: 'node:sqlite', path: file() })) as Error;
      expect(isSeshError(err, 'DRIVER_MISSING')).toBe(true);
      expect(err.message).toContain('Node 22.5');
    }
  });

  it('without better-sqlite3 installed: DRIVER_MISSING with the exact install command', { timeout: 90_000 }, async () => {
    const script = `
      import { SqliteStore } from ${JSON.stringify(join(ROOT, 'src/stores/sqlite/index.ts'))};
      try { new SqliteStore({ path: ${JSON.stringify(file())}, driver: 'better-sqlite3' }); console.log('opened'); }
      catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }`;
    const r = await runNode(['--require', './test/fixtures/sqlite-no-driver.cjs', '--import', TSX, '--input-type=module', '-e', script]);
    const out = JSON.parse(r.stdout.trim()) as { code: string; message: string };
    expect(out.code).toBe('DRIVER_MISSING');
    expect(out.message).toContain('npm install better-sqlite3@12');
    expect(out.message).toContain('13.x requires Node 22');
  });

  it('refuses better-sqlite3 13.x on Node < 22 before loading it (it would crash the process)', { timeout: 90_000 }, async () => {
    const fake = mkdtempSync(join(dir, 'fake-bs3-'));
    writeFileSync(join(fake, 'package.json'), '{"name":"better-sqlite3","version":"13.0.1"}');
    writeFileSync(join(fake, 'index.js'), 'console.log("LOADED"); process.exit(3);');
    const script = `
      import { SqliteStore } from ${JSON.stringify(join(ROOT, 'src/stores/sqlite/index.ts'))};
      try { new SqliteStore({ path: ${JSON.stringify(file())} }); console.log('opened'); }
      catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }`;
    const r = await runNode(['--require', './test/fixtures/sqlite-no-driver.cjs', '--import', TSX, '--input-type=module', '-e', script], {
      env: { FAKE_BETTER_SQLITE3_DIR: fake },
    });
    const nodeMajor = Number.parseInt(process.versions.node, 10);
    if (nodeMajor < 22) {
      expect(r.stdout).not.toContain('LOADED');
      const out = JSON.parse(r.stdout.trim()) as { code: string; message: string };
      expect(out.code).toBe('DRIVER_MISSING');
      expect(out.message).toContain('npm install better-sqlite3@12');
    } else {
      expect(r.stdout).toContain('LOADED');
    }
  });

  it('uses ./.sesh/sessions.db by default, then SESH_SQLITE_PATH, then the path option; the purge timer never keeps the process alive', {
    timeout: 90_000,
  }, async () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const script = `
      import { SqliteStore } from ${JSON.stringify(join(ROOT, 'src/stores/sqlite/index.ts'))};
      const s = new SqliteStore({ purgeInterval: 10 });
      await s.create('k', { data: {}, meta: {}, createdAt: 1, lastSeen: 1, expiresAt: Date.now() + 60000, userId: null });
      console.log(s.path);
      // no close(): the process must still exit on its own`;
    const args = ['--import', TSX, '--input-type=module', '-e', script];
    const r = await runNode(args, { cwd, env: { SESH_SQLITE_PATH: undefined } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(join(cwd, '.sesh', 'sessions.db'));
    expect(existsSync(join(cwd, '.sesh', 'sessions.db'))).toBe(true);

    const viaEnv = join(cwd, 'env', 'here.db');
    const r2 = await runNode(args, { cwd, env: { SESH_SQLITE_PATH: viaEnv } });
    expect(r2.code).toBe(0);
    expect(r2.stdout.trim()).toBe(viaEnv);

    process.env.SESH_SQLITE_PATH = viaEnv;
    try {
      const explicit = file();
      expect(store({ path: explicit }).path).toBe(explicit);
    } finally {
      delete process.env.SESH_SQLITE_PATH;
    }
  });
});

describe('SqliteStore: schema migrations', () => {
  it('opens a database at schema v1 and migrates it forward, keeping its sessions', async () => {
    const path = file('v1');
    const raw = new Database(path);
    raw.exec(readFileSync(join(ROOT, 'test/fixtures/sqlite-schema-v1.sql'), 'utf8'));
    raw.close();

    const s = store({ path });
    expect(s.migration).toEqual({ from: 1, to: SQLITE_SCHEMA_VERSION });
    expect(await s.get('live')).toEqual({
      data: { cart: ['a', 'b'] },
      meta: { authTime: 1000 },
      createdAt: 1000,
      lastSeen: 2000,
      expiresAt: 32503680000000,
      userId: 'alice',
    });
    expect(await s.get('old')).toBeNull();
    expect((await s.listByUser('alice')).map((e) => e.key)).toEqual(['live']);
    await s.close();

    const check = new Database(path, { readonly: true });
    expect(check.prepare("SELECT version FROM sesh_schema WHERE table_name = 'sesh_sessions'").get()).toEqual({
      version: SQLITE_SCHEMA_VERSION,
    });
    const indexes = (
      check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sesh_sessions'").all() as Array<{ name: string }>
    ).map((r) => r.name);
    expect(indexes).toEqual(expect.arrayContaining(['sesh_sessions_expires_at', 'sesh_sessions_user_id']));
    const plan = check.prepare('EXPLAIN QUERY PLAN SELECT key FROM sesh_sessions WHERE user_id = ? AND expires_at > ?').all('a', 0);
    expect(JSON.stringify(plan)).toContain('sesh_sessions_user_id');
    expect(check.pragma('journal_mode', { simple: true })).toBe('wal');
    check.close();

    // Reopening at the current version migrates nothing.
    expect(store({ path }).migration).toEqual({ from: SQLITE_SCHEMA_VERSION, to: SQLITE_SCHEMA_VERSION });
  });
});

describe('SqliteStore: purging expired sessions', () => {
  it('purges 100k expired rows in batches of purgeBatchSize while gets keep completing in between', { timeout: 90_000 }, async () => {
    const clock = new FakeClock();
    const path = file('purge');
    const s = store({ clock, path, purgeBatchSize: 1000 });
    await s.create('live', record(clock, { expiresAt: clock.now() + 3_600_000 }));
    const raw = new Database(path);
    const insert = raw.prepare('INSERT INTO sesh_sessions VALUES (?, ?, ?, ?, ?, ?, ?)');
    raw.transaction(() => {
      for (let i = 0; i < 100_000; i++) insert.run(`x${i}`, '{"a":1}', '{}', 1, 1, clock.now() - 1 - (i % 500), i % 7 ? null : 'u');
    })();
    const count = raw.prepare('SELECT count(*) AS n FROM sesh_sessions WHERE expires_at <= ?');
    const remaining = () => (count.get(clock.now()) as { n: number }).n;
    expect(remaining()).toBe(100_000);

    let done = false;
    const purge = s.purgeExpired().then((deleted) => {
      done = true;
      return deleted;
    });
    const seen: number[] = [];
    let gets = 0;
    while (!done) {
      await new Promise((r) => setImmediate(r)); // like an incoming request, a macrotask
      if (done) break;
      expect((await s.get('live'))?.data).toEqual({ a: 1 });
      gets++;
      seen.push(remaining());
    }
    expect(await purge).toBe(100_000);
    raw.close();
    // Requests ran between batches, and each batch deleted exactly purgeBatchSize rows.
    expect(gets).toBeGreaterThanOrEqual(50);
    const between = seen.filter((v) => v > 0 && v < 100_000);
    expect(between.length).toBeGreaterThanOrEqual(50);
    expect(between.every((v) => v % 1000 === 0)).toBe(true);
    expect(seen).toEqual([...seen].sort((a, b) => b - a));
    expect(await s.get('live')).not.toBeNull();
    expect(await s.purgeExpired()).toBe(0);
  });

  it('purges on its own timer, and close() stops it', async () => {
    const clock = new FakeClock();
    const path = file('timer');
    const s = store({ clock, path, purgeInterval: 20 });
    await s.create('a', record(clock, { expiresAt: clock.now() + 10 }));
    await s.create('b', record(clock, { expiresAt: clock.now() + 10_000 }));
    const raw = new Database(path, { readonly: true });
    const rows = () => (raw.prepare('SELECT count(*) AS n FROM sesh_sessions').get() as { n: number }).n;
    clock.advance(10);
    for (let i = 0; i < 200 && rows() !== 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(rows()).toBe(1);
    await s.close();
    raw.close();
  });

  it('reports a failing background purge to onBackgroundError and keeps going', async () => {
    const handle = new Database(':memory:');
    const errors: unknown[] = [];
    const s = new SqliteStore({ database: handle, purgeInterval: 10, onBackgroundError: (e) => errors.push(e) });
    open.push(s);
    handle.exec('DROP TABLE sesh_sessions');
    for (let i = 0; i < 200 && errors.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(String(errors[0])).toMatch(/no such table/);
    await s.close();
    handle.close();
  });

  it('a purge call during a running purge joins it', async () => {
    const clock = new FakeClock();
    const s = store({ clock, purgeBatchSize: 1 });
    for (let i = 0; i < 5; i++) await s.create(`k${i}`, record(clock, { expiresAt: clock.now() + 1 }));
    clock.advance(1);
    const [a, b] = await Promise.all([s.purgeExpired(), s.purgeExpired()]);
    expect(a).toBe(5);
    expect(b).toBe(5);
  });
});
