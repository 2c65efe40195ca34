import { type Clock, systemClock } from '../../clock.js';
import { OptionsError, StoreUnavailableError } from '../../errors.js';
import { applyPatch, type BaseStoreOptions, FORBIDDEN_KEYS, parseStoredJson, type Store } from '../../store.js';
import type { SessionPatch, StoredSession } from '../../types.js';

/**
 * The callback API of an express-session store (connect-redis, connect-pg-simple, connect-mongo,
 * memorystore, express-session's own MemoryStore...). Only `get`, `set` and `destroy` are used;
 * `on('connect' | 'disconnect')` is listened to when the store is an EventEmitter.
 */
export interface ConnectStoreLike {
  // biome-ignore lint/suspicious/noExplicitAny: express-session stores call back with any error and session shape.
  get(sid: string, callback: (err: any, session?: any) => void): void;
  // biome-ignore lint/suspicious/noExplicitAny: express-session stores call back with any error value.
  set(sid: string, session: any, callback?: (err?: any) => void): void;
  // biome-ignore lint/suspicious/noExplicitAny: express-session stores call back with any error value.
  destroy(sid: string, callback?: (err?: any) => void): void;
  on?(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** Options of {@link ConnectStore}. */
export interface ConnectStoreOptions extends BaseStoreOptions {
  /**
   * Longest wait for one callback of the wrapped store, in ms; past it the operation fails with
   * `StoreUnavailableError` (the adapter answers 503). Default 5 000.
   */
  timeout?: number;
}

/** The object handed to the wrapped store: express-session's shape, with sesh's record inside. */
interface ConnectSession {
  cookie: { originalMaxAge: number; expires: Date; httpOnly: true; path: string; readonly maxAge?: number };
  sesh: { v: 1; data: unknown; meta: unknown; createdAt: number; lastSeen: number; expiresAt: number; userId: string | null };
}

/**
 * Runs sesh on any express-session store. Each sesh record is written as one express-session
 * "session": `{ cookie: { expires, originalMaxAge, ... }, sesh: { data, meta, createdAt, lastSeen,
 * expiresAt, userId } }` under the store key (a hash of the session ID, never the ID). The cookie's
 * `expires` (and a live `maxAge`) carry the record's expiry, which is how these stores set their TTL.
 *
 * What it cannot guarantee across processes, because the callback API has no conditional write:
 * `create` (insert-if-absent), `patch` and `touch` (update-if-exists, per-key merge) and `destroy`
 * (report whether a record existed) are a read followed by a write. Within one process they are
 * serialized per key, so they are atomic there. No per-user index (`listByUser`/`destroyByUser`)
 * and no `purgeExpired`: the wrapped store expires records itself. Data read back is re-parsed
 * with prototype keys dropped.
 */
export class ConnectStore implements Store {
  readonly #store: ConnectStoreLike;
  readonly #clock: Clock;
  readonly #timeout: number;
  readonly #locks = new Map<string, Promise<unknown>>();
  #connected = true;

  /** Wrap `store`, an express-session store instance. */
  constructor(store: ConnectStoreLike, options: ConnectStoreOptions = {}) {
    if (!store || typeof store.get !== 'function' || typeof store.set !== 'function' || typeof store.destroy !== 'function') {
      throw new OptionsError(
        'ConnectStore needs an express-session store instance (an object with get, set and destroy methods), e.g. new ConnectStore(new RedisStore({ client })).',
      );
    }
    const timeout = options.timeout ?? 5_000;
    if (!Number.isFinite(timeout) || timeout <= 0) {
      throw new OptionsError(`ConnectStore \`timeout\` must be a positive number of ms; got ${String(timeout)}.`);
    }
    this.#store = store;
    this.#clock = options.clock ?? systemClock;
    this.#timeout = timeout;
    if (typeof store.on === 'function') {
      store.on('disconnect', () => {
        this.#connected = false;
      });
      store.on('connect', () => {
        this.#connected = true;
      });
    }
  }

  /** The wrapped express-session store. */
  get inner(): ConnectStoreLike {
    return this.#store;
  }

  /** Read a record; `null` when missing, expired (by `expiresAt`), or not a sesh record. */
  async get(key: string): Promise<StoredSession | null> {
    return this.#read(key);
  }

  /** Insert if absent (`get` then `set`; atomic within this process only). */
  create(key: string, session: StoredSession): Promise<boolean> {
    return this.#locked(key, async () => {
      if ((await this.#read(key)) !== null) return false;
      await this.#write(key, session);
      return true;
    });
  }

  /** Per-key merge into an existing record (`get`, merge, `set`; atomic within this process only). */
  patch(key: string, patch: SessionPatch): Promise<boolean> {
    return this.#locked(key, async () => {
      const current = await this.#read(key);
      if (current === null) return false;
      await this.#write(key, applyPatch(current, patch));
      return true;
    });
  }

  /** Move `lastSeen`/`expiresAt` of an existing record (rewrites it, so the wrapped store's TTL follows). */
  touch(key: string, lastSeen: number, expiresAt: number): Promise<boolean> {
    return this.#locked(key, async () => {
      const current = await this.#read(key);
      if (current === null) return false;
      await this.#write(key, { ...current, lastSeen, expiresAt });
      return true;
    });
  }

  /** Delete a record; resolves whether a live one existed (checked with a `get` first). */
  destroy(key: string): Promise<boolean> {
    return this.#locked(key, async () => {
      const existed = (await this.#read(key)) !== null;
      await this.#call<void>('destroy', (cb) => this.#store.destroy(key, cb));
      return existed;
    });
  }

  /** Serialize the operations on one key inside this process. */
  #locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.#locks.set(key, tail);
    void tail.then(() => {
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    });
    return run;
  }

  async #read(key: string): Promise<StoredSession | null> {
    const raw = await this.#call<unknown>('get', (cb) => this.#store.get(key, cb), true);
    const record = toRecord(raw);
    if (record === null || record.expiresAt <= this.#clock.now()) return null;
    return record;
  }

  async #write(key: string, session: StoredSession): Promise<void> {
    const value = toConnectSession(session, this.#clock.now());
    await this.#call<void>('set', (cb) => this.#store.set(key, value, cb));
  }

  /** One callback call, with a timeout; any error becomes a StoreUnavailableError. */
  #call<T>(operation: string, fn: (cb: (err?: unknown, value?: T) => void) => void, missingOk = false): Promise<T> {
    if (!this.#connected) {
      return Promise.reject(
        new StoreUnavailableError(operation, `The express-session store reported "disconnect"; ${operation} was not attempted.`),
      );
    }
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        reject(
          new StoreUnavailableError(
            operation,
            `The express-session store did not answer ${operation} within ${this.#timeout} ms. Check its connection, or raise ConnectStore's \`timeout\`.`,
          ),
        );
      }, this.#timeout);
      timer.unref?.();
      const callback = (err?: unknown, value?: T) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err && !(missingOk && (err as { code?: unknown }).code === 'ENOENT')) {
          reject(new StoreUnavailableError(operation, `The express-session store failed on ${operation}: ${describe(err)}`, err));
        } else {
          resolve((err ? undefined : value) as T);
        }
      };
      try {
        fn(callback);
      } catch (err) {
        callback(err ?? new Error('store threw'));
      }
    });
  }
}

/** Same as `new ConnectStore(store, options)`: adapt an express-session store to the sesh store contract. */
export function fromConnectStore(store: ConnectStoreLike, options?: ConnectStoreOptions): ConnectStore {
  return new ConnectStore(store, options);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The express-session shaped value written for a record; expiry translated to the real clock. */
function toConnectSession(session: StoredSession, now: number): ConnectSession {
  const ttl = session.expiresAt - now;
  // Stores compute their TTL from the wall clock; translate our (possibly injected) clock to it.
  const expires = new Date(Date.now() + ttl);
  const cookie = { originalMaxAge: ttl, expires, httpOnly: true as const, path: '/' };
  // memorystore and a few others read `cookie.maxAge` (live, as express-session's Cookie has it).
  Object.defineProperty(cookie, 'maxAge', { enumerable: false, get: () => expires.valueOf() - Date.now() });
  return {
    cookie,
    sesh: {
      v: 1,
      // A copy: some stores keep the object itself instead of serializing it.
      data: JSON.parse(JSON.stringify(session.data)) as unknown,
      meta: JSON.parse(JSON.stringify(session.meta)) as unknown,
      createdAt: session.createdAt,
      lastSeen: session.lastSeen,
      expiresAt: session.expiresAt,
      userId: session.userId,
    },
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Turn what the wrapped store returned into a record, or null when it is missing or not one of
 * ours. Values go through JSON again with prototype keys dropped, so the result is fresh and clean.
 */
function toRecord(raw: unknown): StoredSession | null {
  if (!isPlainObject(raw)) return null;
  let inner: unknown;
  try {
    const text = JSON.stringify(raw.sesh);
    if (text === undefined) return null;
    inner = parseStoredJson(text);
  } catch {
    return null;
  }
  if (!isPlainObject(inner) || inner.v !== 1) return null;
  const { data, meta, createdAt, lastSeen, expiresAt, userId } = inner;
  if (!isPlainObject(data) || !isPlainObject(meta)) return null;
  if (![createdAt, lastSeen, expiresAt].every((n) => typeof n === 'number' && Number.isFinite(n))) return null;
  if (userId !== null && typeof userId !== 'string') return null;
  for (const k of FORBIDDEN_KEYS) {
    delete data[k];
    delete meta[k];
  }
  return {
    data,
    meta,
    createdAt: createdAt as number,
    lastSeen: lastSeen as number,
    expiresAt: expiresAt as number,
    userId: userId as string | null,
  };
}
