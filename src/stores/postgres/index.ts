import { createHash } from 'node:crypto';
import { type Clock, systemClock } from '../../clock.js';
import { type DeadlineRunner, deadlineRunner } from '../../deadline.js';
import { OptionsError, SeshError, StoreUnavailableError } from '../../errors.js';
import { type BaseStoreOptions, FORBIDDEN_KEYS, type Store } from '../../store.js';
import type { SessionMeta, SessionPatch, StoredSession, StoredSessionEntry } from '../../types.js';
import { fromJsonb, keyToJsonb, toJsonb } from './json.js';
import {
  MIGRATIONS,
  type PostgresTableOptions,
  recordVersionSql,
  SCHEMA_VERSION,
  type SqlNames,
  schemaSql,
  sqlNames,
  versionsTableSql,
} from './schema.js';

export { type PostgresTableOptions, SCHEMA_VERSION } from './schema.js';

/** One query as the store sends it (a subset of pg's `QueryConfig`). */
export interface PgQuery {
  /**
   * Name of a prepared statement (pg prepares it once per connection, then only binds and runs
   * it); absent for a one-off statement.
   */
  name?: string;
  text: string;
  values?: unknown[];
  /** Client-side timeout of this query in ms (pg ≥ 8.8). */
  query_timeout?: number;
}

/** The part of a pg query result the store reads. */
export interface PgResult {
  rows: Record<string, unknown>[];
  rowCount: number | null;
}

/** A client checked out of the pool (pg's `PoolClient`). */
export interface PgPoolClient {
  query(query: PgQuery): Promise<PgResult>;
  /** Return the client; with an error (or `true`) the pool destroys it instead. */
  release(err?: Error | boolean): void;
  on?(event: 'error', listener: (err: Error) => void): unknown;
  off?(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * The pool the store runs on: a `pg.Pool` (from the `pg` package), or anything shaped like one.
 * The store never ends it: the application owns it.
 */
export interface PgPool {
  connect(): Promise<PgPoolClient>;
  on?(event: 'error', listener: (err: Error) => void): unknown;
  on?(event: 'connect', listener: (client: PgPoolClient) => void): unknown;
  off?(event: 'error', listener: (err: Error) => void): unknown;
  off?(event: 'connect', listener: (client: PgPoolClient) => void): unknown;
  listenerCount?(event: 'error'): number;
}

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions extends BaseStoreOptions, PostgresTableOptions {
  /** A `pg.Pool` (see docs/postgres.md for recommended settings). Required. */
  pool: PgPool;
  /**
   * Create and migrate the schema on first use (in a transaction, under an advisory lock). Set to
   * `false` when you run migrations yourself (`PostgresStore.schemaSql()` prints them); the store
   * then only checks that the schema is at the version it needs. Default `true`.
   */
  createSchema?: boolean;
  /**
   * Upper bound in ms for one operation, from waiting for a pool client to the last row. Past it the
   * operation fails with `STORE_UNAVAILABLE` and the client is discarded, so a dead or unreachable
   * database never hangs a request or leaks a client. Keep it at or below the engine's
   * `storeTimeout`. Default 2000.
   */
  queryTimeout?: number;
  /**
   * Run the session statements as named prepared statements: PostgreSQL parses and plans each
   * statement once per connection instead of on every request (planning costs about as much as
   * running these statements). Set to `false` behind a pooler that cannot keep prepared statements
   * per client, such as PgBouncer in transaction mode before 1.21 (or without
   * `max_prepared_statements`). Default `true`.
   */
  preparedStatements?: boolean;
  /** Delete expired rows every `purgeInterval` ms on an unref'd timer. Default 900 000 (15 min); 0 disables. */
  purgeInterval?: number;
  /** Rows deleted per statement when purging. Default 1000. */
  purgeBatchSize?: number;
  /** Called when a background purge fails. Default: `console.warn`. */
  onBackgroundError?: (error: unknown) => void;
}

const COLUMNS =
  'data::text AS data, meta::text AS meta, created_at::text AS created_at, last_seen::text AS last_seen, expires_at::text AS expires_at, user_id';

/** Milliseconds as a bigint parameter (text, so no float formatting reaches PostgreSQL). */
function ms(what: string, value: number): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new SeshError('INVALID_OPTIONS', `PostgresStore: \`${what}\` must be a finite number of ms; got ${String(value)}.`);
  }
  return String(Math.trunc(value));
}

/** JSON text of an object's own keys, skipping prototype keys and values JSON cannot hold. */
function jsonObject(values: Readonly<Record<string, unknown>> | undefined, dropped?: string[]): string {
  if (!values) return '{}';
  const parts: string[] = [];
  for (const k of Object.keys(values)) {
    if (FORBIDDEN_KEYS.has(k)) continue;
    const json = toJsonb(values[k]);
    if (json === undefined) dropped?.push(k);
    else parts.push(`${JSON.stringify(keyToJsonb(k))}:${json}`);
  }
  return `{${parts.join(',')}}`;
}

function readObject(text: unknown): Record<string, unknown> {
  if (typeof text !== 'string') return {};
  return fromJsonb(text) as Record<string, unknown>;
}

function toSession(row: Record<string, unknown>): StoredSession {
  return {
    data: readObject(row.data),
    meta: readObject(row.meta) as SessionMeta,
    createdAt: Number(row.created_at),
    lastSeen: Number(row.last_seen),
    expiresAt: Number(row.expires_at),
    userId: typeof row.user_id === 'string' ? row.user_id : null,
  };
}

/** One of the store's statements: its SQL, and its name when it runs as a prepared statement. */
interface Statement {
  readonly name: string | undefined;
  readonly text: string;
}

type StatementName = 'get' | 'create' | 'patch' | 'touch' | 'destroy' | 'listByUser' | 'destroyByUser' | 'purge';
type Statements = Readonly<Record<StatementName, Statement>>;

/**
 * The store's statements on the tables `n` names. Prepared ones are named after their text's hash,
 * so two stores on different tables (or two releases with different SQL) never share a name: pg
 * refuses a name already prepared on the connection with another text.
 */
function statements(n: SqlNames, prepared: boolean): Statements {
  const out: Partial<Record<StatementName, Statement>> = {};
  for (const [op, text] of Object.entries(statementTexts(n)) as [StatementName, string][]) {
    out[op] = { name: prepared ? `sesh_${op}_${createHash('sha256').update(text).digest('hex').slice(0, 16)}` : undefined, text };
  }
  return out as Statements;
}

function statementTexts(n: SqlNames): Record<StatementName, string> {
  const t = n.qTable;
  return {
    get: `SELECT ${COLUMNS} FROM ${t} WHERE key = $1 AND expires_at > $2`,
    // Insert, or take over a row that exists but has expired (not purged yet); a live row wins.
    create: `INSERT INTO ${t} AS s (key, data, meta, created_at, last_seen, expires_at, user_id)
VALUES ($1, $2::jsonb, $3::jsonb, $4, $5, $6, $7)
ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, meta = EXCLUDED.meta, created_at = EXCLUDED.created_at,
  last_seen = EXCLUDED.last_seen, expires_at = EXCLUDED.expires_at, user_id = EXCLUDED.user_id
WHERE s.expires_at <= $8`,
    // One statement: the row lock serializes concurrent patches and each one merges into the
    // latest row version (READ COMMITTED re-evaluation), so no key written by another request is lost.
    patch: `UPDATE ${t} SET
  data = (data - $2::text[]) || $3::jsonb,
  meta = (meta - $4::text[]) || $5::jsonb,
  last_seen = COALESCE($6::bigint, last_seen),
  expires_at = $7::bigint,
  user_id = CASE WHEN $8::boolean THEN $9::text ELSE user_id END
WHERE key = $1 AND expires_at > $10`,
    touch: `UPDATE ${t} SET last_seen = $2, expires_at = $3 WHERE key = $1 AND expires_at > $4`,
    destroy: `DELETE FROM ${t} WHERE key = $1 RETURNING expires_at::text AS expires_at`,
    listByUser: `SELECT key, ${COLUMNS} FROM ${t} WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, key`,
    destroyByUser: `DELETE FROM ${t} WHERE user_id = $1 AND key <> ALL($2::text[]) RETURNING expires_at::text AS expires_at`,
    purge: `DELETE FROM ${t} WHERE key IN (
  SELECT key FROM ${t} WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
  };
}

/**
 * PostgreSQL session store on a `pg.Pool`.
 *
 * ```ts
 * import pg from 'pg';
 * import { PostgresStore } from 'sesh/stores/postgres';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 2000 });
 * pool.on('error', (err) => console.warn('idle PostgreSQL client error', err));
 * app.use(session({ secret, store: new PostgresStore({ pool }) }));
 * ```
 *
 * - One row per session: `key` (a hash of the session ID), `data` and `meta` as JSONB, times as
 *   bigint ms, `user_id`; indexes on `expires_at` and `user_id`.
 * - The schema is created and migrated forward on first use, in a transaction under an advisory
 *   lock (safe when several instances start at once); `createSchema: false` opts out and
 *   {@link PostgresStore.schemaSql} prints the SQL.
 * - Every operation is a single statement: patches merge per key inside PostgreSQL (no
 *   read-modify-write), patch/touch only update a live row, destroy reports whether a live row existed.
 * - The statements run as named prepared statements (`preparedStatements`, default `true`), planned
 *   once per connection.
 * - Each operation is bounded by `queryTimeout`; a failed client is discarded, never leaked.
 * - Expiry is compared with the injected clock (passed as a parameter, never `now()`).
 */
export class PostgresStore implements Store {
  readonly #pool: PgPool;
  readonly #clock: Clock;
  readonly #names: SqlNames;
  readonly #sql: Statements;
  readonly #createSchema: boolean;
  readonly #batch: number;
  readonly #onBackgroundError: (error: unknown) => void;
  readonly #poolErrorListener: ((err: Error) => void) | undefined;
  /** True while this store counts as a user of {@link quietNewClient} on its pool. */
  #quietsPool = false;
  #ready: Promise<void> | undefined;
  /** Set once the schema is known to be current: operations then skip the wait for `#ready`. */
  #migrated = false;
  /** The time limit of an operation, and of the schema check or migration. */
  readonly #operationBudget: Budget;
  readonly #migrationBudget: Budget;
  #timer: NodeJS.Timeout | undefined;
  #purging = false;
  #closed = false;

  constructor(options: PostgresStoreOptions) {
    const pool = options?.pool as PgPool | undefined;
    if (!pool || typeof pool.connect !== 'function') {
      throw new OptionsError(
        'PostgresStore needs a `pool`: pass `new pg.Pool({ connectionString })` from the `pg` package (npm install pg).',
      );
    }
    this.#pool = pool;
    this.#names = sqlNames(options);
    const prepared = options.preparedStatements ?? true;
    if (typeof prepared !== 'boolean') {
      throw new OptionsError(`PostgresStore \`preparedStatements\` must be true or false; got ${String(prepared)}.`);
    }
    this.#sql = statements(this.#names, prepared);
    this.#clock = options.clock ?? systemClock;
    this.#createSchema = options.createSchema ?? true;
    const timeout = positive('queryTimeout', options.queryTimeout, 2000);
    this.#operationBudget = budget(timeout);
    // Generous bound for the migration: another instance may hold the migration lock for a moment.
    this.#migrationBudget = budget(Math.max(timeout, 15_000));
    this.#batch = positive('purgeBatchSize', options.purgeBatchSize, 1000);
    this.#onBackgroundError = options.onBackgroundError ?? ((err) => console.warn('[sesh] PostgresStore background purge failed:', err));
    const interval = options.purgeInterval ?? 900_000;
    if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0) {
      throw new OptionsError(`PostgresStore \`purgeInterval\` must be a non-negative number of ms; got ${String(interval)}.`);
    }
    if (interval > 0) {
      this.#timer = setInterval(() => void this.#backgroundPurge(), interval);
      this.#timer.unref();
    }
    // An idle client that loses its connection (database restart) makes the pool emit 'error'; with
    // no listener Node would crash the process. Attach a quiet one when the app has none.
    if (typeof pool.on === 'function' && typeof pool.listenerCount === 'function' && pool.listenerCount('error') === 0) {
      this.#poolErrorListener = () => {
        // The pool already discarded the client; the next operation opens a fresh connection.
      };
      pool.on('error', this.#poolErrorListener);
    }
    // pg-pool takes its own 'error' listener off a client when it hands the client out, and the
    // caller's promise resumes only after the parser has finished the whole TCP chunk. A FATAL in
    // the same chunk as the ReadyForQuery or last result (a database shutting down) would then be
    // emitted on a client with no listener and crash the process. Give every new client a
    // permanent quiet listener; the error still reaches the operation that uses the client.
    // One listener per pool, however many stores share it (counted, removed with the last store).
    if (typeof pool.on === 'function') {
      const users = quietPools.get(pool) ?? 0;
      if (users === 0) pool.on('connect', quietNewClient);
      quietPools.set(pool, users + 1);
      this.#quietsPool = true;
    }
  }

  /**
   * The schema as an idempotent SQL script (one transaction, same advisory lock as the store), for
   * teams that run migrations themselves with `createSchema: false`.
   */
  static schemaSql(options: PostgresTableOptions = {}): string {
    return schemaSql(options);
  }

  /** The schema version this release needs. */
  static readonly schemaVersion = SCHEMA_VERSION;

  /** Schema-qualified, quoted name of the session table. */
  get tableName(): string {
    return this.#names.qTable;
  }

  /**
   * Create or migrate the schema now instead of on first use (or, with `createSchema: false`, check
   * it). Failures are not cached: the next call or operation tries again.
   */
  async migrate(): Promise<void> {
    await this.#ensureSchema();
  }

  async get(key: string): Promise<StoredSession | null> {
    const r = await this.#query('get', this.#sql.get, [key, this.#now()]);
    const row = r.rows[0];
    return row ? toSession(row) : null;
  }

  async create(key: string, session: StoredSession): Promise<boolean> {
    const r = await this.#query('create', this.#sql.create, [
      key,
      jsonObject(session.data),
      jsonObject(session.meta),
      ms('createdAt', session.createdAt),
      ms('lastSeen', session.lastSeen),
      ms('expiresAt', session.expiresAt),
      session.userId ?? null,
      this.#now(),
    ]);
    return r.rowCount === 1;
  }

  async patch(key: string, patch: SessionPatch): Promise<boolean> {
    const unset = [...(patch.unset ?? [])];
    const metaUnset = [...(patch.metaUnset ?? [])];
    const set = jsonObject(patch.set, unset);
    const metaSet = jsonObject(patch.metaSet, metaUnset);
    for (let i = 0; i < unset.length; i++) unset[i] = keyToJsonb(unset[i] as string);
    for (let i = 0; i < metaUnset.length; i++) metaUnset[i] = keyToJsonb(metaUnset[i] as string);
    const r = await this.#query('patch', this.#sql.patch, [
      key,
      unset,
      set,
      metaUnset,
      metaSet,
      patch.lastSeen === undefined ? null : ms('lastSeen', patch.lastSeen),
      ms('expiresAt', patch.expiresAt),
      patch.userId !== undefined,
      patch.userId ?? null,
      this.#now(),
    ]);
    return r.rowCount === 1;
  }

  async touch(key: string, lastSeen: number, expiresAt: number): Promise<boolean> {
    const r = await this.#query('touch', this.#sql.touch, [key, ms('lastSeen', lastSeen), ms('expiresAt', expiresAt), this.#now()]);
    return r.rowCount === 1;
  }

  async destroy(key: string): Promise<boolean> {
    const now = this.#clock.now();
    const r = await this.#query('destroy', this.#sql.destroy, [key]);
    return r.rows.some((row) => Number(row.expires_at) > now);
  }

  async listByUser(userId: string): Promise<StoredSessionEntry[]> {
    const r = await this.#query('listByUser', this.#sql.listByUser, [userId, this.#now()]);
    return r.rows.map((row) => ({ key: String(row.key), session: toSession(row) }));
  }

  async destroyByUser(userId: string, exceptKeys: readonly string[] = []): Promise<number> {
    const now = this.#clock.now();
    const r = await this.#query('destroyByUser', this.#sql.destroyByUser, [userId, [...exceptKeys]]);
    return r.rows.filter((row) => Number(row.expires_at) > now).length;
  }

  /** Delete expired rows in batches of `purgeBatchSize`. Resolves how many were deleted. */
  async purgeExpired(): Promise<number> {
    const now = this.#now();
    let total = 0;
    for (;;) {
      const r = await this.#query('purgeExpired', this.#sql.purge, [now, this.#batch]);
      const n = r.rowCount ?? 0;
      total += n;
      if (n < this.#batch || this.#closed) return total;
    }
  }

  /** Stop the purge timer. The pool is the application's: end it yourself (`await pool.end()`). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (typeof this.#pool.off === 'function') {
      if (this.#poolErrorListener) this.#pool.off('error', this.#poolErrorListener);
      if (this.#quietsPool) {
        const users = (quietPools.get(this.#pool) ?? 1) - 1;
        if (users === 0) {
          this.#pool.off('connect', quietNewClient);
          quietPools.delete(this.#pool);
        } else quietPools.set(this.#pool, users);
        this.#quietsPool = false;
      }
    }
  }

  async #backgroundPurge(): Promise<void> {
    if (this.#purging || this.#closed) return;
    this.#purging = true;
    try {
      await this.purgeExpired();
    } catch (err) {
      this.#onBackgroundError(err);
    } finally {
      this.#purging = false;
    }
  }

  #now(): string {
    return ms('clock.now()', this.#clock.now());
  }

  /**
   * The store's own bound on every operation (`queryTimeout`), once the schema is known to be
   * current: the engine then sets no second deadline when its `storeTimeout` is at least this (see
   * `Store.operationTimeout`). Undefined before, since the first operations wait for the schema
   * check or migration, which has a longer budget.
   */
  get operationTimeout(): number | undefined {
    return this.#migrated ? this.#operationBudget.ms : undefined;
  }

  #query(operation: string, statement: Statement, values: unknown[]): Promise<PgResult> {
    if (this.#migrated) return this.#queryOnce(operation, statement, values);
    return this.#ensureSchema().then(() => this.#queryOnce(operation, statement, values));
  }

  /**
   * One statement on a pool client, under the operation budget: the lean path of every session
   * operation (no async frames, no per-call listener). A client is released healthy after a
   * result, and discarded (`release(err)`) after any failure. A connection error that arrives
   * while the client is checked out but between results is caught by the client's permanent quiet
   * listener (see the constructor), and pg marks the client unqueryable, so pg-pool discards it on
   * release. Statements that share a client (the migration) go through `#withClient`.
   */
  #queryOnce(operation: string, statement: Statement, values: unknown[]): Promise<PgResult> {
    const budget = this.#operationBudget;
    const deadline = Date.now() + budget.ms;
    return this.#acquire(operation, budget).then((client) => {
      const failed = (err: unknown): never => {
        client.release(err instanceof Error ? err : true);
        throw this.#fail(operation, err);
      };
      let result: Promise<PgResult>;
      try {
        result = queryBefore(client, statement, values, deadline);
      } catch (err) {
        return failed(err);
      }
      return result.then((r) => {
        client.release();
        return r;
      }, failed);
    });
  }

  /**
   * Check a client out within the budget, run `fn` with a query function bounded by the same
   * deadline, and always give the client back: healthy, or discarded (`release(err)`) after any
   * failure so a connection left mid-query or half-dead is never reused nor leaked.
   */
  async #withClient<T>(
    operation: string,
    budget: Budget,
    fn: (q: (text: string, values?: unknown[]) => Promise<PgResult>) => Promise<T>,
    keepOn?: (err: unknown) => boolean,
  ): Promise<T> {
    const deadline = Date.now() + budget.ms;
    const client = await this.#acquire(operation, budget);
    // A server message can arrive while the client is checked out but between queries (e.g. the
    // FATAL of a shutdown in the same packet as the last result): without a listener of ours, pg
    // would emit an unhandled 'error' and crash the process.
    let broken: unknown;
    const onError = (err: Error) => {
      broken ??= err;
    };
    client.on?.('error', onError);
    const q = async (text: string, values: unknown[] = []) => {
      try {
        return await queryBefore(client, { name: undefined, text }, values, deadline);
      } catch (err) {
        broken ??= err;
        throw err;
      }
    };
    try {
      return await fn(q);
    } catch (err) {
      if (broken === undefined && !keepOn?.(err)) broken = err;
      throw this.#fail(operation, err);
    } finally {
      client.off?.('error', onError);
      client.release(broken === undefined ? undefined : broken instanceof Error ? broken : true);
    }
  }

  /** A pool client within the budget; a client that arrives late is returned to the pool at once. */
  #acquire(operation: string, budget: Budget): Promise<PgPoolClient> {
    const pending = this.#pool.connect();
    return budget.connects.run(operation, same, pending).then(undefined, (err: unknown) => {
      // Timed out: give the client back whenever it comes (a failed connect has nothing to give back).
      pending.then(
        (c) => c.release(),
        () => {},
      );
      throw this.#fail(operation, err);
    });
  }

  #fail(operation: string, err: unknown): Error {
    if (err instanceof SeshError) return err;
    const detail = err instanceof Error ? err.message : String(err);
    return new StoreUnavailableError(
      operation,
      `PostgresStore ${operation} failed: ${detail}. Check that PostgreSQL is reachable (see the pool settings in the PostgreSQL store docs).`,
      err,
    );
  }

  #ensureSchema(): Promise<void> {
    if (!this.#ready) {
      const p = this.#migrateOnce();
      this.#ready = p;
      p.then(
        () => {
          if (this.#ready === p) this.#migrated = true;
        },
        // A failure is not cached: the next operation tries again (database back after an outage).
        () => {
          if (this.#ready === p) this.#ready = undefined;
        },
      );
    }
    return this.#ready;
  }

  async #migrateOnce(): Promise<void> {
    const n = this.#names;
    const refused = (err: unknown) => err instanceof SeshError && err.code === 'INVALID_OPTIONS';
    await this.#withClient(
      'migrate',
      this.#migrationBudget,
      async (q) => {
        // Fast path, no DDL and no lock: the schema is already current (also the only check with createSchema: false).
        let version = await this.#currentVersion(q);
        if (version >= SCHEMA_VERSION) return;
        if (!this.#createSchema) {
          throw new SeshError(
            'INVALID_OPTIONS',
            `PostgresStore: the table ${n.schema}.${n.table} is at schema version ${version}, this release needs ${SCHEMA_VERSION}, and \`createSchema\` is false. Run the SQL printed by PostgresStore.schemaSql({ schema, table }) (it is idempotent), or let the store migrate by removing \`createSchema: false\`.`,
          );
        }
        await q('BEGIN');
        try {
          await q('SELECT pg_advisory_xact_lock($1::bigint)', [n.lockId]);
          if (n.schema !== 'public') {
            const s = await q('SELECT 1 FROM pg_namespace WHERE nspname = $1', [n.schema]);
            if (s.rows.length === 0) await q(`CREATE SCHEMA IF NOT EXISTS ${n.qSchema}`);
          }
          // Another instance may have migrated while we waited for the lock.
          version = await this.#currentVersion(q);
          if (version < SCHEMA_VERSION) {
            await q(versionsTableSql(n));
            for (const m of MIGRATIONS) {
              if (m.version <= version) continue;
              for (const s of m.statements(n)) await q(s);
              await q(recordVersionSql(n, m));
            }
          }
          await q('COMMIT');
        } catch (err) {
          await q('ROLLBACK').catch(() => {});
          throw err;
        }
      },
      refused,
    );
  }

  async #currentVersion(q: (text: string, values?: unknown[]) => Promise<PgResult>): Promise<number> {
    const r = await q(`SELECT CASE WHEN to_regclass($1) IS NULL THEN NULL ELSE 1 END AS present`, [this.#names.versionsRegclass]);
    if (r.rows[0]?.present == null) return 0;
    const v = await q(`SELECT COALESCE(max(version), 0)::int AS version FROM ${this.#names.qVersions}`);
    return Number(v.rows[0]?.version ?? 0);
  }
}

/** The quiet per-client listener (see the constructor): the failed query reports the error. */
function ignoreClientError(): void {}

/** The pool's 'connect' listener that gives each new client {@link ignoreClientError}. */
function quietNewClient(client: PgPoolClient): void {
  client.on?.('error', ignoreClientError);
}

/** Pools carrying {@link quietNewClient}, with the number of open stores that use each. */
const quietPools = new WeakMap<object, number>();

function positive(option: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new OptionsError(`PostgresStore \`${option}\` must be a positive integer; got ${String(v)}.`);
  }
  return v;
}

const same = <T>(value: T): T => value;

/** One statement, given what is left of the operation's budget as pg's `query_timeout`. */
function queryBefore(client: PgPoolClient, statement: Statement, values: unknown[], deadline: number): Promise<PgResult> {
  const query_timeout = Math.max(1, deadline - Date.now());
  const { name, text } = statement;
  return client.query(name === undefined ? { text, values, query_timeout } : { name, text, values, query_timeout });
}

/** A time limit, and the runner that bounds the wait for a pool client under it (one timer for all). */
interface Budget {
  readonly ms: number;
  readonly connects: DeadlineRunner;
}

function budget(ms: number): Budget {
  return { ms, connects: deadlineRunner(ms, () => new Error(`no PostgreSQL connection within ${ms} ms`)) };
}
