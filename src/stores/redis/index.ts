import { type Clock, systemClock } from '../../clock.js';
import { type DeadlineRunner, deadlineRunner } from '../../deadline.js';
import { OptionsError, StoreUnavailableError } from '../../errors.js';
import { type BaseStoreOptions, FORBIDDEN_KEYS, parseStoredJson, type Store } from '../../store.js';
import type { SessionMeta, SessionPatch, StoredSession, StoredSessionEntry } from '../../types.js';
import { type Driver, driverFor, type RedisClientLike } from './client.js';
import { CREATE, DESTROY, INDEX, PATCH, type Script, TOUCH } from './scripts.js';

export type { IoRedisLike, NodeRedisClientLike, NodeRedisClusterLike, RedisClientLike } from './client.js';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions extends BaseStoreOptions {
  /**
   * A connected client, owned by the app (the store never connects or quits it):
   * an ioredis `Redis` or `Cluster`, or a node-redis client from `createClient()` / `createCluster()`
   * (after `await client.connect()`). Attach an `'error'` listener to it (without one, the store
   * attaches a fallback that warns once, so a node-redis reconnect error cannot crash the process).
   */
  client: RedisClientLike;
  /** Prefix of every key the store writes. Must not contain `{` or `}` (hash tags). Default `'sesh:'`. */
  prefix?: string;
  /**
   * Longest wait for Redis per store operation, in ms. Past it the operation fails with
   * `StoreUnavailableError` (503), whatever the client's own retry and queue settings. Default 500.
   */
  commandTimeout?: number;
}

/** The EventEmitter side of a client, when it has one. */
interface ErrorEmitter {
  on?(event: 'error', listener: (err: unknown) => void): unknown;
  off?(event: 'error', listener: (err: unknown) => void): unknown;
  listenerCount?(event: 'error'): number;
}

/**
 * How much longer than its sessions a per-user index set lives. The set is extended only when a
 * session would outlive it, so a logged-in session pays the extra round trip about once a day.
 */
const INDEX_SLACK = 86_400_000;

/**
 * Session store on Redis, standalone or Cluster, with ioredis or node-redis.
 *
 * ```ts
 * import Redis from 'ioredis';
 * import { RedisStore } from 'sesh/stores/redis';
 * const client = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1 });
 * client.on('error', (err) => log.warn(err));
 * app.use(session({ secret, store: new RedisStore({ client }) }));
 * ```
 *
 * One hash per session (`<prefix>s:{<key>}`, a field per data key) and one set per user
 * (`<prefix>u:{<userId>}`). Create, patch, touch and destroy are single-key Lua scripts, so they are
 * atomic on Cluster too; reads are one `HGETALL`. Records expire through `PEXPIREAT` at their
 * `expiresAt`. Every operation fails fast with `StoreUnavailableError` when the client is
 * disconnected or Redis does not answer within `commandTimeout`. See docs/redis.md.
 */
export class RedisStore implements Store {
  readonly #driver: Driver;
  readonly #prefix: string;
  readonly #deadlines: DeadlineRunner;
  readonly #timeout: number;
  readonly #clock: Clock;
  readonly #client: ErrorEmitter;
  #errorListener: ((err: unknown) => void) | undefined;

  constructor(options: RedisStoreOptions) {
    if (!options || typeof options !== 'object') {
      throw new OptionsError('RedisStore needs options: `new RedisStore({ client })` with an ioredis or node-redis client.');
    }
    if (options.client === undefined || options.client === null) {
      throw new OptionsError(
        'RedisStore `client` is missing: pass a connected ioredis `Redis`/`Cluster` or node-redis `createClient()`/`createCluster()` client.',
      );
    }
    this.#driver = driverFor(options.client);
    const prefix = options.prefix ?? 'sesh:';
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
      throw new OptionsError(
        `RedisStore \`prefix\` must be a string without \`{\` or \`}\` (they would change the Cluster hash slot); got ${JSON.stringify(prefix)}.`,
      );
    }
    this.#prefix = prefix;
    const timeout = options.commandTimeout ?? 500;
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
      throw new OptionsError(`RedisStore \`commandTimeout\` must be a positive number of ms; got ${String(timeout)}.`);
    }
    this.#timeout = timeout;
    this.#deadlines = deadlineRunner(
      timeout,
      (operation) =>
        new StoreUnavailableError(
          operation,
          `Redis did not answer the session ${operation} within ${timeout} ms (RedisStore \`commandTimeout\`).`,
        ),
      (err, operation) =>
        err instanceof StoreUnavailableError
          ? err
          : new StoreUnavailableError(operation, `Redis failed on the session ${operation}: ${errorMessage(err)}`, err),
    );
    this.#clock = options.clock ?? systemClock;
    // node-redis emits 'error' on every failed reconnection; with no listener Node would crash the
    // process during a Redis outage instead of answering 503. Attach a fallback when the app has
    // none (removed by close()), and say once how to attach the app's own.
    const client = options.client as ErrorEmitter;
    this.#client = client;
    if (typeof client.on === 'function' && typeof client.listenerCount === 'function' && client.listenerCount('error') === 0) {
      let warned = false;
      this.#errorListener = (err) => {
        if (warned) return;
        warned = true;
        console.warn(
          `[sesh] RedisStore: the Redis client reported an error and has no 'error' listener of its own (${errorMessage(err)}). Attach one with client.on('error', ...); sessions answer 503 until Redis is back.`,
        );
      };
      client.on('error', this.#errorListener);
    }
  }

  /** Which client library was detected: `ioredis`, `ioredis-cluster`, `node-redis` or `node-redis-cluster`. */
  get clientKind(): Driver['kind'] {
    return this.#driver.kind;
  }

  /** The Redis key of a session hash. The hash tag keeps any future per-session key in the same slot. */
  sessionKey(key: string): string {
    return `${this.#prefix}s:{${key}}`;
  }

  /** The Redis key of a user's index set. */
  userKey(userId: string): string {
    return `${this.#prefix}u:{${userId}}`;
  }

  /**
   * The store's own bound on every operation (`commandTimeout`): the engine sets no second deadline
   * when its `storeTimeout` is at least this (see `Store.operationTimeout`).
   */
  get operationTimeout(): number {
    return this.#timeout;
  }

  /** Read a session: one `HGETALL`; `null` when absent or expired by the store's clock. */
  get(key: string): Promise<StoredSession | null> {
    return this.#guard('get', () => {
      const redisKey = this.sessionKey(key);
      return this.#driver.send(redisKey, 'HGETALL', [redisKey]).then((reply) => {
        const record = decodeHash(reply);
        // NaN times (a hash that cannot be read) pass: the engine reports the record as corrupt.
        return record === null || record.expiresAt <= this.#clock.now() ? null : record;
      });
    });
  }

  /** Insert-if-absent (one script); indexes the user first when the session is bound to one. */
  create(key: string, session: StoredSession): Promise<boolean> {
    return this.#guard('create', () => {
      const at = expiryMs(session.expiresAt);
      // The script's arguments, built once (see #script): sha, key count, key, then ARGV.
      const redisKey = this.sessionKey(key);
      const args = [CREATE.sha, '1', redisKey, String(this.#clock.now()), String(at)];
      args.push('_c', String(session.createdAt), '_l', String(session.lastSeen), '_e', String(session.expiresAt));
      const userId = session.userId ?? null;
      const ix = userId === null ? '' : String(at + INDEX_SLACK);
      if (userId !== null) args.push('_u', userId, '_ix', ix);
      pushValues(args, 'd:', session.data);
      pushValues(args, 'm:', session.meta);
      if (userId === null) return this.#script(CREATE, redisKey, args, isOne);
      // Index first: an index entry without a session is harmless (checked on read), a session
      // missing from its user's index would escape "log out everywhere".
      return this.#index(userId, key, ix).then(() => this.#script(CREATE, redisKey, args, isOne));
    });
  }

  /** Per-field update of a live session (one script, update-if-exists); keeps the user index in step. */
  patch(key: string, patch: SessionPatch): Promise<boolean> {
    return this.#guard('patch', async () => {
      const at = expiryMs(patch.expiresAt);
      const ix = String(at + INDEX_SLACK);
      const del: string[] = [];
      // The times first: a data key can never collide with them (data fields are `d:<name>`).
      const set: string[] = ['_e', String(patch.expiresAt)];
      if (patch.lastSeen !== undefined) set.push('_l', String(patch.lastSeen));
      let userOp = '';
      if (patch.userId === null) {
        userOp = '-';
        del.push('_u', '_ix');
      } else if (typeof patch.userId === 'string') {
        userOp = '=';
        await this.#index(patch.userId, key, ix);
        set.push('_u', patch.userId, '_ix', ix);
      }
      for (const k of patch.unset ?? []) del.push(`d:${k}`);
      for (const k of patch.metaUnset ?? []) del.push(`m:${k}`);
      collect(set, del, 'd:', patch.set);
      collect(set, del, 'm:', patch.metaSet);
      const redisKey = this.sessionKey(key);
      const args = [PATCH.sha, '1', redisKey, String(this.#clock.now()), String(at), userOp, ix, String(del.length)];
      for (const d of del) args.push(d);
      for (const x of set) args.push(x);
      const reply = toArray(await this.#script(PATCH, redisKey, args, same));
      if (toNumber(reply[0]) !== 1) return false;
      const previous = toStringOrNull(reply[1]);
      const extend = toStringOrNull(reply[2]);
      if (extend !== null && previous !== null) await this.#index(previous, key, extend);
      if (previous !== null && patch.userId !== undefined && previous !== patch.userId) this.#unindexLater(previous, [key]);
      return true;
    });
  }

  /** Move `lastSeen`/`expiresAt` of a live session (one script, update-if-exists). */
  touch(key: string, lastSeen: number, expiresAt: number): Promise<boolean> {
    return this.#guard('touch', async () => {
      const at = expiryMs(expiresAt);
      const redisKey = this.sessionKey(key);
      const args = [
        TOUCH.sha,
        '1',
        redisKey,
        String(this.#clock.now()),
        String(lastSeen),
        String(expiresAt),
        String(at),
        String(at + INDEX_SLACK),
      ];
      const reply = toArray(await this.#script(TOUCH, redisKey, args, same));
      if (toNumber(reply[0]) !== 1) return false;
      const userId = toStringOrNull(reply[1]);
      const extend = toStringOrNull(reply[2]);
      if (userId !== null && extend !== null) await this.#index(userId, key, extend);
      return true;
    });
  }

  /** Delete a session (one script); resolves `true` when a live one was deleted. */
  destroy(key: string): Promise<boolean> {
    return this.#guard('destroy', async () => {
      const redisKey = this.sessionKey(key);
      const reply = toArray(await this.#script(DESTROY, redisKey, [DESTROY.sha, '1', redisKey, String(this.#clock.now())], same));
      const userId = toStringOrNull(reply[2]);
      if (toNumber(reply[0]) === 1 && userId !== null) this.#unindexLater(userId, [key]);
      return toNumber(reply[1]) === 1;
    });
  }

  /** The live sessions bound to `userId`; stale index entries are skipped and removed. */
  listByUser(userId: string): Promise<StoredSessionEntry[]> {
    return this.#guard('listByUser', async () => {
      const keys = await this.#members(userId);
      const now = this.#clock.now();
      const replies = await Promise.all(
        keys.map((key) => {
          const redisKey = this.sessionKey(key);
          return this.#driver.send(redisKey, 'HGETALL', [redisKey]);
        }),
      );
      const out: StoredSessionEntry[] = [];
      const stale: string[] = [];
      keys.forEach((key, i) => {
        const session = decodeHash(replies[i]);
        if (session && session.userId === userId && session.expiresAt > now) out.push({ key, session });
        else if (!session || session.userId !== userId) stale.push(key);
      });
      if (stale.length > 0) this.#unindexLater(userId, stale);
      return out;
    });
  }

  /** Delete the sessions bound to `userId` except `exceptKeys`; resolves how many live ones were deleted. */
  destroyByUser(userId: string, exceptKeys: readonly string[] = []): Promise<number> {
    return this.#guard('destroyByUser', async () => {
      const keep = new Set(exceptKeys);
      const keys = (await this.#members(userId)).filter((k) => !keep.has(k));
      const now = String(this.#clock.now());
      const replies = await Promise.all(
        keys.map((key) => {
          const redisKey = this.sessionKey(key);
          return this.#script(DESTROY, redisKey, [DESTROY.sha, '1', redisKey, now, userId], same);
        }),
      );
      let n = 0;
      for (const r of replies) if (toNumber(toArray(r)[1]) === 1) n++;
      // Every key handled here is either deleted or bound to someone else now: drop it from the set.
      if (keys.length > 0) this.#unindexLater(userId, keys);
      return n;
    });
  }

  /**
   * Detach the fallback `'error'` listener, if the store attached one. The store owns no connection:
   * it never quits the client, which is the app's (quit it yourself at shutdown, after the HTTP
   * server stopped).
   */
  async close(): Promise<void> {
    if (this.#errorListener && typeof this.#client.off === 'function') this.#client.off('error', this.#errorListener);
    this.#errorListener = undefined;
  }

  async #members(userId: string): Promise<string[]> {
    const userKey = this.userKey(userId);
    const reply = await this.#driver.send(userKey, 'SMEMBERS', [userKey]);
    return toArray(reply).map((m) => toStringOrNull(m) ?? '');
  }

  #index(userId: string, key: string, until: string): Promise<unknown> {
    const userKey = this.userKey(userId);
    return this.#script(INDEX, userKey, [INDEX.sha, '1', userKey, key, until], same);
  }

  /**
   * Remove keys from a user's set without waiting: a leftover entry is harmless (entries are checked
   * against the session on every read and dropped then), so a failure here is ignored.
   */
  #unindexLater(userId: string, keys: string[]): void {
    if (this.#driver.notReady()) return;
    const userKey = this.userKey(userId);
    this.#driver.send(userKey, 'SREM', [userKey, ...keys]).catch(() => {});
  }

  /**
   * Run a script: EVALSHA, falling back to EVAL (which also caches the script) when the server
   * lacks it. `args` are EVALSHA's (`s.sha`, `'1'`, `key`, then ARGV), built by the caller in one
   * array; `map` turns the reply into the result, in the same reaction (no extra promise).
   */
  #script<T>(s: Script, key: string, args: string[], map: (reply: unknown) => T): Promise<T> {
    return this.#driver.send(key, 'EVALSHA', args).then(map, (err: unknown) => {
      if (!/NOSCRIPT/i.test(errorMessage(err))) throw err;
      args[0] = s.source;
      return this.#driver.send(key, 'EVAL', args).then(map);
    });
  }

  /**
   * Run one store operation: refuse at once when the client is known to be down, and give up after
   * `commandTimeout` whatever the client's retry/offline-queue settings (one timer shared by all
   * operations, see deadline.ts). Every failure becomes a `StoreUnavailableError`, which the
   * adapters answer with 503.
   */
  #guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const down = this.#driver.notReady();
    if (down) {
      return Promise.reject(new StoreUnavailableError(operation, `Redis is unavailable (${down}); the session ${operation} was not sent.`));
    }
    return this.#deadlines.run(operation, call, fn);
  }
}

const call = <T>(fn: () => Promise<T>): Promise<T> => fn();
const same = (reply: unknown): unknown => reply;
const isOne = (reply: unknown): boolean => toNumber(reply) === 1;

/** `PEXPIREAT` wants an integer; round up so a record never dies before its `expiresAt`. */
function expiryMs(expiresAt: number): number {
  if (!Number.isFinite(expiresAt)) throw new TypeError(`expiresAt must be a finite number; got ${String(expiresAt)}`);
  return Math.ceil(expiresAt);
}

function pushValues(out: string[], tag: string, values: Readonly<Record<string, unknown>> | undefined): void {
  if (!values) return;
  for (const k of Object.keys(values)) {
    if (FORBIDDEN_KEYS.has(k)) continue;
    const json = JSON.stringify(values[k]);
    if (json !== undefined) out.push(`${tag}${k}`, json);
  }
}

/** Fields to set go to `set`; a value that has no JSON form (undefined) deletes the field instead. */
function collect(set: string[], del: string[], tag: string, values: Readonly<Record<string, unknown>> | undefined): void {
  if (!values) return;
  for (const k of Object.keys(values)) {
    if (FORBIDDEN_KEYS.has(k)) continue;
    const json = JSON.stringify(values[k]);
    if (json === undefined) del.push(`${tag}${k}`);
    else set.push(`${tag}${k}`, json);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return String(v);
}

function toStringOrNull(v: unknown): string | null {
  return v === null || v === undefined || v === false ? null : toText(v);
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return Number(toText(v));
}

function toArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** HGETALL replies: a flat array (RESP2, raw commands), a Map or an object (RESP3 / type mappings). */
function hashEntries(reply: unknown): [string, string][] {
  if (Array.isArray(reply)) {
    const out: [string, string][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([toText(reply[i]), toText(reply[i + 1])]);
    return out;
  }
  if (reply instanceof Map) return [...reply].map(([k, v]) => [toText(k), toText(v)]);
  if (reply && typeof reply === 'object') return Object.entries(reply).map(([k, v]) => [k, toText(v)]);
  return [];
}

/**
 * Turn a session hash into a record. An empty hash is `null`. A hash that cannot be read (bad JSON,
 * missing times) comes back with `NaN` times, so the engine reports it as corrupt and discards it
 * instead of serving it or failing the request.
 */
function decodeHash(reply: unknown): StoredSession | null {
  const entries = hashEntries(reply);
  if (entries.length === 0) return null;
  const data: Record<string, unknown> = {};
  const meta: Record<string, unknown> = {};
  let createdAt = Number.NaN;
  let lastSeen = Number.NaN;
  let expiresAt = Number.NaN;
  let userId: string | null = null;
  let corrupt = false;
  for (const [field, value] of entries) {
    if (field === '_c') createdAt = Number(value);
    else if (field === '_l') lastSeen = Number(value);
    else if (field === '_e') expiresAt = Number(value);
    else if (field === '_u') userId = value;
    else if (field.startsWith('d:') || field.startsWith('m:')) {
      const name = field.slice(2);
      if (FORBIDDEN_KEYS.has(name)) continue;
      try {
        (field[0] === 'd' ? data : meta)[name] = parseStoredJson(value);
      } catch {
        corrupt = true;
      }
    }
  }
  if (corrupt || Number.isNaN(expiresAt)) {
    return { data, meta: meta as SessionMeta, createdAt: Number.NaN, lastSeen: Number.NaN, expiresAt: Number.NaN, userId };
  }
  return { data, meta: meta as SessionMeta, createdAt, lastSeen, expiresAt, userId };
}
