/**
 * Shared pieces of the reliability suite: the four real stores behind one interface (with a way to
 * count their records), tunable sizes for `npm run test:stress`, and the report that writes each
 * run's figures into docs/reliability.md.
 *
 * Sizes: every figure has a default for `npm test` and an environment variable for long runs (see
 * docs/reliability.md, "Parameters"). `SESH_STRESS=1` switches every default to its stress value.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis as IORedis } from 'ioredis';
import type pg from 'pg';
import type { Store } from '../../src/store.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { makePool, type PgServer, startPostgres, uniqueTable } from '../support/postgres.js';
import { type RedisServer, startRedis } from '../support/redis.js';
import { ROOT } from '../support/sqlite.js';

export const SECRET = 'rL7vQ2mX8wWc4Ns7Yb1Hd6Jf3Kg0Pz9Tq';
export const STRESS = process.env.SESH_STRESS === '1';

/** A positive integer from the environment, else the stress or the normal default. */
export function param(name: string, normal: number, stress: number): number {
  const raw = process.env[name];
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number; got ${JSON.stringify(raw)}.`);
    return n;
  }
  return STRESS ? stress : normal;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export type StoreKind = 'memory' | 'sqlite' | 'redis' | 'postgres';
export const STORE_KINDS: readonly StoreKind[] = ['memory', 'sqlite', 'redis', 'postgres'];

/** A real store plus what the suite needs around it. */
export interface StoreKit {
  kind: StoreKind;
  store: Store;
  /** Number of session records the store holds right now (per-user index entries excluded). */
  records(): Promise<number>;
  dispose(): Promise<void>;
  /** PostgreSQL only: the pool and table of this kit. */
  pg?: { pool: pg.Pool; table: string };
}

/** Lazily started servers, one of each per test file; {@link disposeServers} in afterAll. */
let redisServer: Promise<RedisServer> | undefined;
let pgServer: Promise<PgServer> | undefined;
const cleanups: (() => Promise<unknown>)[] = [];
const tempDirs: string[] = [];

export function sharedRedis(options: { persist?: boolean } = {}): Promise<RedisServer> {
  redisServer ??= startRedis(options);
  return redisServer;
}

/** The file's PostgreSQL server; the options of the first call win (`durable` for crash tests). */
export function sharedPostgres(options: { durable?: boolean } = {}): Promise<PgServer> {
  pgServer ??= startPostgres(options);
  return pgServer;
}

export function tempDir(prefix = 'sesh-rel-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Close every kit, pool, client and server this file made, even after a failure. */
export async function disposeServers(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  const r = redisServer;
  const p = pgServer;
  redisServer = undefined;
  pgServer = undefined;
  if (r) await (await r.catch(() => undefined))?.dispose().catch(() => {});
  if (p) await (await p.catch(() => undefined))?.destroy().catch(() => {});
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

let prefixCounter = 0;

/** Options for the network stores, tuned for outage tests (short driver timeouts). */
export interface KitOptions {
  /** PostgresStore `queryTimeout` and pool `connectionTimeoutMillis`. */
  pgTimeout?: number;
  /** RedisStore `commandTimeout`. */
  redisTimeout?: number;
  /** Pool size (PostgreSQL). */
  poolMax?: number;
  /** MemoryStore `maxEntries`. */
  maxEntries?: number;
}

/** Build a fresh, empty store of one kind (its own table, prefix or file). */
export async function makeStore(kind: StoreKind, options: KitOptions = {}): Promise<StoreKit> {
  let kit: StoreKit;
  switch (kind) {
    case 'memory': {
      const store = new MemoryStore({ maxEntries: options.maxEntries ?? 100_000, sweepInterval: 0, quiet: true });
      kit = { kind, store, records: async () => store.size, dispose: async () => store.close() };
      break;
    }
    case 'sqlite': {
      const path = join(tempDir('sesh-rel-sqlite-'), 'sessions.db');
      const store = new SqliteStore({ path, purgeInterval: 0 });
      const reader = new Database(path, { readonly: true, fileMustExist: true });
      kit = {
        kind,
        store,
        records: async () => (reader.prepare('SELECT count(*) AS n FROM sesh_sessions').get() as { n: number }).n,
        dispose: async () => {
          reader.close();
          await store.close();
        },
      };
      break;
    }
    case 'redis': {
      const server = await sharedRedis();
      const client = new IORedis({ host: server.host, port: server.port, maxRetriesPerRequest: 1, connectTimeout: 2000 });
      client.on('error', () => {
        // outage tests: the client reports every failed reconnect; the store turns failures into 503s
      });
      await client.ping();
      const prefix = `rel${process.pid}_${++prefixCounter}:`;
      const store = new RedisStore({ client, prefix, commandTimeout: options.redisTimeout ?? 1_000 });
      kit = {
        kind,
        store,
        records: async () => {
          let cursor = '0';
          let n = 0;
          do {
            const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}s:*`, 'COUNT', 1000);
            cursor = next;
            n += keys.length;
          } while (cursor !== '0');
          return n;
        },
        dispose: async () => {
          await (store as Store).close?.();
          client.disconnect();
        },
      };
      break;
    }
    case 'postgres': {
      const server = await sharedPostgres();
      const timeout = options.pgTimeout ?? 2_000;
      const pool: pg.Pool = makePool(server, { max: options.poolMax ?? 10, connectionTimeoutMillis: timeout });
      const table = uniqueTable('rel');
      const store = new PostgresStore({ pool, table, queryTimeout: timeout, purgeInterval: 0 });
      await store.migrate();
      kit = {
        kind,
        store,
        pg: { pool, table },
        records: async () => Number((await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n),
        dispose: async () => {
          await store.close();
          await pool.end();
        },
      };
      break;
    }
  }
  let disposed: Promise<void> | undefined;
  const dispose = kit.dispose;
  kit.dispose = () => {
    disposed ??= dispose();
    return disposed;
  };
  cleanups.push(() => kit.dispose());
  return kit;
}

/** A store that delegates to a real one and counts each call (hostile-cookie and leak tests). */
export class CountingStore implements Store {
  readonly calls = { get: 0, create: 0, patch: 0, touch: 0, destroy: 0 };
  constructor(readonly inner: Store) {}
  get(key: string) {
    this.calls.get++;
    return this.inner.get(key);
  }
  create(key: string, s: Parameters<Store['create']>[1]) {
    this.calls.create++;
    return this.inner.create(key, s);
  }
  patch(key: string, p: Parameters<Store['patch']>[1]) {
    this.calls.patch++;
    return this.inner.patch(key, p);
  }
  touch(key: string, lastSeen: number, expiresAt: number) {
    this.calls.touch++;
    return this.inner.touch(key, lastSeen, expiresAt);
  }
  destroy(key: string) {
    this.calls.destroy++;
    return this.inner.destroy(key);
  }
}

/** Session ID inside a `name=v1.<id>.<mac>` pair or a bare token. */
export function idOf(cookie: string | undefined): string {
  const m = /v1\.([A-Za-z0-9_-]{43})\./.exec(cookie ?? '');
  if (!m) throw new Error(`no session token in ${JSON.stringify(cookie)}`);
  return m[1] as string;
}

// ---------------------------------------------------------------------------------------------
// Report: figures go to the test output always, and into docs/reliability.md when asked for.
// ---------------------------------------------------------------------------------------------

const DOC = join(ROOT, 'docs', 'reliability.md');
const LOCK = join(tmpdir(), 'sesh-reliability-doc.lock');

/** One row of figures: a scenario and its measured values. */
export type Row = Record<string, string | number>;

async function withLock<T>(fn: () => T): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      closeSync(openSync(LOCK, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 60_000) unlinkSync(LOCK);
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new Error(`report lock ${LOCK} held for 30 s`);
      await sleep(20);
    }
  }
  try {
    return fn();
  } finally {
    try {
      unlinkSync(LOCK);
    } catch {
      // gone
    }
  }
}

function table(rows: Row[]): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(cols), line(cols.map(() => '---')), ...rows.map((r) => line(cols.map((c) => String(r[c] ?? ''))))].join('\n');
}

/**
 * Print a section's figures, and with `SESH_RELIABILITY_REPORT=1` (set by `npm run
 * test:reliability` and `npm run test:stress`) replace that section of docs/reliability.md
 * between its `<!-- figures:NAME -->` and `<!-- /figures:NAME -->` markers.
 */
export async function report(section: string, title: string, rows: Row[]): Promise<void> {
  const text = table(rows);
  console.info(`\n[reliability] ${title}\n${text}\n`);
  if (process.env.SESH_RELIABILITY_REPORT !== '1') return;
  const stamp = `${new Date().toISOString().slice(0, 16)}Z, ${STRESS ? 'test:stress' : 'npm test'} sizes, Node ${process.version}`;
  await withLock(() => {
    const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Reliability\n';
    const start = `<!-- figures:${section} -->`;
    const end = `<!-- /figures:${section} -->`;
    const block = `${start}\n_${title} (${stamp})_\n\n${text}\n${end}`;
    const i = doc.indexOf(start);
    const j = doc.indexOf(end);
    const next = i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
    writeFileSync(DOC, next);
  });
}

/** Largest value of a list (0 when empty). */
export const max = (xs: number[]) => xs.reduce((a, b) => (b > a ? b : a), 0);

/** p-th percentile of a list (0 when empty). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}
