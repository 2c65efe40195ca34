import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Clock, systemClock } from '../../clock.js';
import { OptionsError, SeshError } from '../../errors.js';
import { applyPatch, type BaseStoreOptions, parseStoredJson, type Store } from '../../store.js';
import type { SessionMeta, SessionPatch, StoredSession, StoredSessionEntry } from '../../types.js';
import { loadDriver, type SqliteDatabase, type SqliteDriverName, type SqliteStatement } from './driver.js';
import { MIGRATIONS, type MigrationResult, migrate, NewerSchemaError, SCHEMA_VERSION } from './schema.js';

export type { SqliteDatabase, SqliteDriverName, SqliteStatement } from './driver.js';

/** The file used when neither the `path` option nor `SESH_SQLITE_PATH` is set (relative to the working directory). */
export const DEFAULT_SQLITE_PATH = './.sesh/sessions.db';

/** Environment variable that sets the database file when the `path` option is not given. */
export const SQLITE_PATH_ENV = 'SESH_SQLITE_PATH';

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions extends BaseStoreOptions {
  /**
   * Database file. Default: `$SESH_SQLITE_PATH`, else `./.sesh/sessions.db` (resolved against the
   * working directory when the store is created). Missing directories are created. `':memory:'`
   * gives a private in-memory database (one process, lost on exit).
   */
  path?: string;
  /**
   * An open database handle to use instead of opening `path`: a `better-sqlite3` `Database` or a
   * `node:sqlite` `DatabaseSync`. sesh creates its table in it but leaves its pragmas (WAL, busy
   * timeout, synchronous) to you, and `close()` does not close it.
   */
  database?: SqliteDatabase;
  /** Which library opens `path`. `'auto'` (default) uses better-sqlite3, else `node:sqlite` when the runtime has it. */
  driver?: SqliteDriverName | 'auto';
  /** Sessions table name (letters, digits, `_`). Default `'sesh_sessions'`. */
  table?: string;
  /**
   * Durability of a commit (`PRAGMA synchronous`, WAL mode). `'NORMAL'` (default): a committed write
   * survives a crash or kill of the process, but a power loss or OS crash may lose the last
   * transactions (never corrupts the file). `'FULL'`: also survives power loss, at the cost of an
   * fsync per write.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a write waits for another process holding the write lock, in ms. Default 5000. */
  busyTimeout?: number;
  /** How often expired sessions are purged, in ms (the timer never keeps the process alive). Default 900 000 (15 min); 0 disables. */
  purgeInterval?: number;
  /** Rows deleted per statement while purging; the event loop runs between batches. Default 1000. */
  purgeBatchSize?: number;
  /** Called when a background purge fails (it is retried at the next interval). Default: `console.warn`. */
  onBackgroundError?: (error: unknown) => void;
}

interface Row {
  data: string;
  meta: string;
  created_at: number | bigint;
  last_seen: number | bigint;
  expires_at: number | bigint;
  user_id: string | null;
}

interface Statements {
  get: SqliteStatement;
  create: SqliteStatement;
  update: SqliteStatement;
  touch: SqliteStatement;
  destroy: SqliteStatement;
  listByUser: SqliteStatement;
  destroyByUser: SqliteStatement;
  purge: SqliteStatement;
}

const COLUMNS = 'data, meta, created_at, last_seen, expires_at, user_id';
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse a JSON column; `null` when it is not a JSON object (the engine then reports `corrupt_session`). */
function parseObject(text: unknown): Record<string, unknown> | null {
  if (typeof text !== 'string') return null;
  try {
    const v = parseStoredJson(text);
    return isPlainObject(v) ? v : null;
  } catch {
    return null;
  }
}

function toRecord(row: Row): StoredSession {
  // A corrupt JSON column is returned as `null`, which fails the engine's record check: the request
  // gets a fresh session and a `corrupt_session` event instead of a 503 on every request.
  return {
    data: parseObject(row.data) as StoredSession['data'],
    meta: parseObject(row.meta) as SessionMeta,
    createdAt: Number(row.created_at),
    lastSeen: Number(row.last_seen),
    expiresAt: Number(row.expires_at),
    userId: row.user_id ?? null,
  };
}

function sqliteCode(err: unknown): string {
  const e = err as { code?: unknown; errcode?: unknown; message?: unknown } | null;
  if (!e) return '';
  if (typeof e.code === 'string' && e.code.startsWith('SQLITE_')) return e.code;
  const msg = typeof e.message === 'string' ? e.message : '';
  // node:sqlite reports `code: 'ERR_SQLITE_ERROR'` plus the numeric `errcode`.
  if (e.errcode === 26 || /not a database/i.test(msg)) return 'SQLITE_NOTADB';
  if (e.errcode === 8 || /readonly database/i.test(msg)) return 'SQLITE_READONLY';
  if (e.errcode === 14 || /unable to open/i.test(msg)) return 'SQLITE_CANTOPEN';
  if (e.errcode === 5 || /database is locked/i.test(msg)) return 'SQLITE_BUSY';
  return '';
}

/**
 * Put the file in WAL mode. Processes that open a new file at the same moment all ask for the
 * switch, and SQLite answers all but one with SQLITE_BUSY at once, without waiting out the busy
 * timeout (waiting there could deadlock). So a busy answer is retried every 10 ms until
 * `busyTimeout` has passed. A file already in WAL mode (every open after the first) answers at once.
 */
function enableWal(db: SqliteDatabase, busyTimeout: number): void {
  const deadline = Date.now() + busyTimeout;
  for (;;) {
    try {
      db.prepare('PRAGMA journal_mode = WAL').get();
      return;
    } catch (err) {
      if (!sqliteCode(err).startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw err;
      // The constructor is synchronous: block this thread for 10 ms (only while opening).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

function nonNegative(name: string, v: unknown, fallback: number, integer = false): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) {
    throw new OptionsError(`SqliteStore \`${name}\` must be a non-negative ${integer ? 'integer' : 'number'}; got ${String(v)}.`);
  }
  return v;
}

/**
 * The embedded SQLite store, and the store `session()` uses when the app names none: sessions
 * survive restarts and are shared by every process on the machine that opens the same file.
 *
 * ```ts
 * import { SqliteStore } from 'sesh/stores/sqlite';
 * app.use(session({ secret, store: new SqliteStore({ path: './data/sessions.db' }) }));
 * ```
 *
 * - WAL mode with a busy timeout: many readers and one writer at a time across processes.
 * - Per-key patches run in one `BEGIN IMMEDIATE` transaction (read, merge, write under the write
 *   lock), so concurrent writers in any process never lose each other's keys; `touch`, `destroy`
 *   and `create` are single statements. Nothing is ever re-created by `patch` or `touch`.
 * - Expired rows are never returned (checked against the store's clock on every read) and are
 *   deleted in batches by an unref'd timer and by {@link SqliteStore.purgeExpired}.
 * - The driver is `better-sqlite3` 12.x (optional peer dependency, loaded on first use), or
 *   `node:sqlite` on runtimes that have it. It is synchronous: each call blocks the event loop for
 *   the duration of one small statement.
 *
 * Startup problems (no driver, a directory or unwritable path, a file that is not a SQLite database,
 * a schema from a newer sesh) throw a `SeshError` from the constructor.
 */
export class SqliteStore implements Store {
  /** Absolute path of the database file (`':memory:'`), or `null` when the app passed `database`. */
  readonly path: string | null;
  /** Driver that opened the file, or `null` when the app passed `database`. */
  readonly driver: SqliteDriverName | null;
  /** Schema version found when the store opened and the version after migrating. */
  readonly migration: MigrationResult;

  readonly #db: SqliteDatabase;
  readonly #owned: boolean;
  readonly #clock: Clock;
  readonly #batch: number;
  readonly #s: Statements;
  #timer: NodeJS.Timeout | undefined;
  #purging: Promise<number> | undefined;
  #closed = false;

  constructor(options: SqliteStoreOptions = {}) {
    if (options === null || typeof options !== 'object') throw new OptionsError('SqliteStore options must be an object.');
    const table = options.table ?? 'sesh_sessions';
    if (typeof table !== 'string' || !TABLE_NAME.test(table) || table === 'sesh_schema') {
      throw new OptionsError(
        `SqliteStore \`table\` must be 1-63 letters, digits or underscores, not starting with a digit (and not 'sesh_schema'); got ${JSON.stringify(table)}.`,
      );
    }
    const synchronous = options.synchronous ?? 'NORMAL';
    if (synchronous !== 'NORMAL' && synchronous !== 'FULL') {
      throw new OptionsError(`SqliteStore \`synchronous\` must be 'NORMAL' or 'FULL'; got ${JSON.stringify(synchronous)}.`);
    }
    const busyTimeout = nonNegative('busyTimeout', options.busyTimeout, 5000, true);
    const interval = nonNegative('purgeInterval', options.purgeInterval, 900_000);
    if (interval > 2_147_483_647) throw new OptionsError('SqliteStore `purgeInterval` must be at most 2147483647 ms (about 24.8 days).');
    this.#batch = nonNegative('purgeBatchSize', options.purgeBatchSize, 1000, true);
    if (this.#batch < 1) throw new OptionsError('SqliteStore `purgeBatchSize` must be at least 1.');
    const driver = options.driver ?? 'auto';
    if (driver !== 'auto' && driver !== 'better-sqlite3' && driver !== 'node:sqlite') {
      throw new OptionsError(`SqliteStore \`driver\` must be 'auto', 'better-sqlite3' or 'node:sqlite'; got ${JSON.stringify(driver)}.`);
    }
    const onBackgroundError =
      options.onBackgroundError ??
      ((err: unknown) => {
        console.warn('[sesh] SQLite store: purging expired sessions failed (will retry):', err);
      });
    if (typeof onBackgroundError !== 'function') throw new OptionsError('SqliteStore `onBackgroundError` must be a function.');
    this.#clock = options.clock ?? systemClock;

    if (options.database !== undefined) {
      if (options.path !== undefined) throw new OptionsError('SqliteStore takes `path` or `database`, not both.');
      const db = options.database;
      if (!db || typeof db.prepare !== 'function' || typeof db.exec !== 'function') {
        throw new OptionsError('SqliteStore `database` must be an open better-sqlite3 Database or node:sqlite DatabaseSync.');
      }
      this.#db = db;
      this.#owned = false;
      this.path = null;
      this.driver = null;
    } else {
      const raw = options.path ?? (process.env[SQLITE_PATH_ENV] || DEFAULT_SQLITE_PATH);
      if (typeof raw !== 'string' || raw === '') {
        throw new OptionsError(`SqliteStore \`path\` must be a file path (default ${DEFAULT_SQLITE_PATH}); got ${JSON.stringify(raw)}.`);
      }
      const path = raw === ':memory:' ? raw : resolve(raw);
      const { name, open } = loadDriver(driver);
      if (path !== ':memory:') prepareFile(path);
      let db: SqliteDatabase;
      try {
        db = open(path);
      } catch (err) {
        throw openError(path, err);
      }
      this.#db = db;
      this.#owned = true;
      this.path = path;
      this.driver = name;
    }

    try {
      if (this.#owned) {
        this.#db.exec(`PRAGMA busy_timeout = ${busyTimeout}`);
        if (this.path !== ':memory:') enableWal(this.#db, busyTimeout);
        this.#db.exec(`PRAGMA synchronous = ${synchronous}`);
      }
      this.migration = migrate(this.#db, table);
      this.#s = prepareStatements(this.#db, table);
    } catch (err) {
      if (this.#owned) this.#db.close();
      throw openError(this.path ?? 'given as `database`', err);
    }

    if (interval > 0) {
      this.#timer = setInterval(() => {
        if (this.#closed) return;
        this.purgeExpired().catch(onBackgroundError);
      }, interval);
      this.#timer.unref();
    }
  }

  #open(): SqliteDatabase {
    if (this.#closed) throw new SeshError('STORE_UNAVAILABLE', 'The SQLite session store is closed.', { status: 503 });
    return this.#db;
  }

  async get(key: string): Promise<StoredSession | null> {
    return this.getSync(key);
  }

  /** {@link Store.getSync}: SQLite answers synchronously, so `get` is this read in a promise. */
  getSync(key: string): StoredSession | null {
    this.#open();
    const row = this.#s.get.get(key, this.#clock.now()) as Row | undefined;
    return row ? toRecord(row) : null;
  }

  async create(key: string, session: StoredSession): Promise<boolean> {
    return this.createSync(key, session);
  }

  /** {@link Store.createSync}: SQLite writes synchronously, so `create` is this insert in a promise. */
  createSync(key: string, session: StoredSession): boolean {
    this.#open();
    const r = this.#s.create.run(
      key,
      JSON.stringify(session.data ?? {}),
      JSON.stringify(session.meta ?? {}),
      session.createdAt,
      session.lastSeen,
      session.expiresAt,
      session.userId ?? null,
      this.#clock.now(),
    );
    return Number(r.changes) > 0;
  }

  async patch(key: string, patch: SessionPatch): Promise<boolean> {
    return this.patchSync(key, patch);
  }

  /** {@link Store.patchSync}: the read-merge-write of `patch` (one transaction), without the promise. */
  patchSync(key: string, patch: SessionPatch): boolean {
    const db = this.#open();
    // Read, merge and write under the write lock: another process cannot commit in between.
    db.exec('BEGIN IMMEDIATE');
    try {
      const row = this.#s.get.get(key, this.#clock.now()) as Row | undefined;
      if (!row) {
        db.exec('COMMIT');
        return false;
      }
      const dataChanged = (patch.set && Object.keys(patch.set).length > 0) || (patch.unset && patch.unset.length > 0);
      const metaChanged = (patch.metaSet && Object.keys(patch.metaSet).length > 0) || (patch.metaUnset && patch.metaUnset.length > 0);
      const current = toRecord(row);
      if ((dataChanged && current.data === null) || (metaChanged && current.meta === null)) {
        // Never overwrite a record we cannot read: that would lose whatever is in it.
        throw new SeshError('STORE_UNAVAILABLE', 'The stored session holds invalid JSON; it was not modified.', { status: 503 });
      }
      const next = applyPatch(current, patch);
      this.#s.update.run(
        dataChanged ? JSON.stringify(next.data) : row.data,
        metaChanged ? JSON.stringify(next.meta) : row.meta,
        next.lastSeen,
        next.expiresAt,
        next.userId ?? null,
        key,
      );
      db.exec('COMMIT');
      return true;
    } catch (err) {
      rollback(db);
      throw err;
    }
  }

  async touch(key: string, lastSeen: number, expiresAt: number): Promise<boolean> {
    return this.touchSync(key, lastSeen, expiresAt);
  }

  /** {@link Store.touchSync}: the update of `touch`, without the promise. */
  touchSync(key: string, lastSeen: number, expiresAt: number): boolean {
    this.#open();
    return Number(this.#s.touch.run(lastSeen, expiresAt, key, this.#clock.now()).changes) > 0;
  }

  async destroy(key: string): Promise<boolean> {
    this.#open();
    const row = this.#s.destroy.get(key) as { expires_at: number | bigint } | undefined;
    return !!row && Number(row.expires_at) > this.#clock.now();
  }

  async listByUser(userId: string): Promise<StoredSessionEntry[]> {
    this.#open();
    const rows = this.#s.listByUser.all(userId, this.#clock.now()) as Array<Row & { key: string }>;
    return rows.map((row) => ({ key: row.key, session: toRecord(row) }));
  }

  async destroyByUser(userId: string, exceptKeys: readonly string[] = []): Promise<number> {
    this.#open();
    const rows = this.#s.destroyByUser.all(userId, JSON.stringify([...exceptKeys])) as Array<{ expires_at: number | bigint }>;
    const now = this.#clock.now();
    let n = 0;
    for (const r of rows) if (Number(r.expires_at) > now) n++;
    return n;
  }

  /**
   * Delete expired sessions now, `purgeBatchSize` rows per statement, letting the event loop run
   * between batches so requests keep being served during a large purge. Resolves how many rows were
   * deleted. A call while a purge is running joins it.
   */
  purgeExpired(): Promise<number> {
    try {
      this.#open();
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.#purging) {
      this.#purging = this.#purge().finally(() => {
        this.#purging = undefined;
      });
    }
    return this.#purging;
  }

  async #purge(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = Number(this.#s.purge.run(this.#clock.now(), this.#batch).changes);
      total += n;
      if (n < this.#batch) return total;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#closed) return total;
    }
  }

  /** Stop the purge timer and close the database if the store opened it. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#owned) this.#db.close();
  }
}

/** The schema version this release writes (`sesh_schema` table). */
export const SQLITE_SCHEMA_VERSION = SCHEMA_VERSION;
/** @internal Exposed for migration tests: the SQL of each schema step. */
export const SQLITE_MIGRATIONS = MIGRATIONS;

function rollback(db: SqliteDatabase): void {
  try {
    db.exec('ROLLBACK');
  } catch {
    // The failed statement already ended the transaction.
  }
}

function prepareFile(path: string): void {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // Does not exist yet: SQLite creates it.
  }
  if (isDir) {
    throw new OptionsError(
      `SqliteStore \`path\` ${path} is a directory; give a file path inside it, e.g. ${resolve(path, 'sessions.db')}.`,
    );
  }
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (err) {
    throw new SeshError(
      'INVALID_OPTIONS',
      `SqliteStore cannot create the directory of ${path} (${(err as Error).message}). Set \`path\` (or ${SQLITE_PATH_ENV}) to a writable location.`,
      { cause: err },
    );
  }
}

function openError(path: string, err: unknown): SeshError {
  if (err instanceof SeshError) return err;
  if (err instanceof NewerSchemaError) {
    return new SeshError(
      'INVALID_OPTIONS',
      `The session database ${path} uses schema version ${err.version}, written by a newer version of sesh (this one knows up to ${SCHEMA_VERSION}). Upgrade sesh, or point \`path\` at another file.`,
      { cause: err },
    );
  }
  const code = sqliteCode(err);
  const detail = (err as Error)?.message ?? String(err);
  if (code === 'SQLITE_NOTADB') {
    return new SeshError(
      'INVALID_OPTIONS',
      `${path} is not a SQLite database (${detail}); it was left untouched. Point \`path\` (or ${SQLITE_PATH_ENV}) at a new or existing session database file.`,
      { cause: err },
    );
  }
  if (code === 'SQLITE_READONLY' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM' || code === 'SQLITE_IOERR') {
    return new SeshError(
      'INVALID_OPTIONS',
      `SqliteStore cannot write the session database ${path} (${detail}). Set \`path\` (or ${SQLITE_PATH_ENV}) to a writable file; the directory must be writable too (WAL files live beside it).`,
      { cause: err },
    );
  }
  return new SeshError('INVALID_OPTIONS', `SqliteStore could not open the session database ${path}: ${detail}`, { cause: err });
}

function prepareStatements(db: SqliteDatabase, t: string): Statements {
  const T = `"${t}"`;
  return {
    get: db.prepare(`SELECT ${COLUMNS} FROM ${T} WHERE key = ? AND expires_at > ?`),
    // Inserts, or replaces a record that has expired but was not purged yet; a live record wins.
    create: db.prepare(
      `INSERT INTO ${T} (key, ${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET data = excluded.data, meta = excluded.meta, created_at = excluded.created_at,
         last_seen = excluded.last_seen, expires_at = excluded.expires_at, user_id = excluded.user_id
       WHERE ${T}.expires_at <= ?`,
    ),
    update: db.prepare(`UPDATE ${T} SET data = ?, meta = ?, last_seen = ?, expires_at = ?, user_id = ? WHERE key = ?`),
    touch: db.prepare(`UPDATE ${T} SET last_seen = ?, expires_at = ? WHERE key = ? AND expires_at > ?`),
    destroy: db.prepare(`DELETE FROM ${T} WHERE key = ? RETURNING expires_at`),
    listByUser: db.prepare(`SELECT key, ${COLUMNS} FROM ${T} WHERE user_id = ? AND expires_at > ? ORDER BY last_seen DESC, key`),
    destroyByUser: db.prepare(`DELETE FROM ${T} WHERE user_id = ? AND key NOT IN (SELECT value FROM json_each(?)) RETURNING expires_at`),
    purge: db.prepare(`DELETE FROM ${T} WHERE key IN (SELECT key FROM ${T} WHERE expires_at <= ? LIMIT ?)`),
  };
}
