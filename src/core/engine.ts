import { type CompiledCookie, compileCookie, readCookie } from '../cookie/index.js';
import { hmac, type KeyRing, keyRing } from '../crypto/index.js';
import { SeshError } from '../errors.js';
import { type ResolvedOptions, resolveOptions, type SessionOptions } from '../options.js';
import { type Store, type StoreCapabilities, storeCapabilities } from '../store.js';
import type { SessionData, StoredSession } from '../types.js';
import { dropsInsecureCookie, eventEmitter, refusesInsecureLoad, storeCaller, storeFailure, warnIfInsecureDevMode } from './common.js';
import { isValidRecord } from './data.js';
import type { EngineInternals, RequestContext, SyncWrites } from './internals.js';
import { SessionState } from './session.js';
import { MAX_TOKEN_LENGTH, signToken, storeKeyOf, verifyToken } from './token.js';

/** Tolerated clock skew between nodes for times read from the store (ms). */
const MAX_SKEW = 60_000;

/** What {@link Sessions.commit} returns: the Set-Cookie values the response must carry. */
export interface CommitResult {
  setCookie: string[];
}

/**
 * The framework-free session engine. Adapters call {@link Sessions.load} when a request arrives and
 * {@link Sessions.commit} before the response headers are sent.
 */
export interface Sessions<D = SessionData> {
  /** The validated options with defaults filled in. */
  readonly options: ResolvedOptions;
  /** The store. */
  readonly store: Store;
  /** The store's optional capabilities, detected once. */
  readonly capabilities: StoreCapabilities;
  /**
   * Read the session named by the request's cookie. A missing, garbage, tampered, unknown or expired
   * cookie gives a new empty session (never a throw). Rejects with `StoreUnavailableError` (503)
   * when the store fails or times out.
   */
  load(request: RequestContext): Promise<SessionState<D>>;
  /**
   * {@link load}, returning the state itself, without a promise, when it is known at once: no
   * session cookie, a cookie that fails its check, or a store with synchronous reads
   * (`Store.getSync`: memory, SQLite). Otherwise (or on failure) a promise, as `load` gives. For
   * adapters, which save a microtask and an allocation per request with it.
   */
  loadNow(request: RequestContext): SessionState<D> | Promise<SessionState<D>>;
  /**
   * Write what changed (per-key patch, create, or throttled touch) and return the Set-Cookie
   * values. Nothing is written and no cookie is set when nothing changed.
   */
  commit(state: SessionState<D>): Promise<CommitResult>;
  /**
   * {@link commit}, returning the result itself, without a promise, when there is nothing to
   * write (the common read-only request), or when the store writes synchronously
   * (`Store.createSync`, `patchSync`, `touchSync`: memory, SQLite) and no other step on the session
   * (a save, a regenerate) is running; a failed synchronous write gives a rejected promise, as
   * `commit` would. A change made through the session after the call (in the same step) is still
   * written a microtask later, as `commit` would, without a Set-Cookie; an object read from the
   * session and changed in place after the call is not (it is with `commit`, which decides a
   * microtask later).
   */
  commitNow(state: SessionState<D>): CommitResult | Promise<CommitResult>;
  /** The store key of a session ID (what the store and the per-user index see). */
  storeKey(id: string): string;
  /** Keyed hash of a session ID, safe for logs (16 bytes, base64url). */
  sidHash(id: string): string;
  /** Close the store if it owns resources. */
  close(): Promise<void>;
}

/**
 * Create the session engine. Validates every option at once and throws an `OptionsError` that
 * says what to change.
 *
 * ```ts
 * const sessions = createSessions({ secret: process.env.SESSION_SECRET!, store });
 * const state = await sessions.load({ cookie: req.headers.cookie, secure: true });
 * state.session.views = (state.session.views ?? 0) + 1;
 * const { setCookie } = await sessions.commit(state);
 * ```
 */
export function createSessions<D = SessionData>(options: SessionOptions & { store: Store }): Sessions<D> {
  const opts = resolveOptions(options);
  const store = options.store;
  if (!store || typeof store.get !== 'function') {
    throw new SeshError('INVALID_OPTIONS', '`store` is required by the engine: pass a Store (the adapters default to the embedded one).');
  }
  for (const m of ['get', 'create', 'patch', 'touch', 'destroy'] as const) {
    if (typeof store[m] !== 'function') {
      throw new SeshError(
        'INVALID_OPTIONS',
        `The store has no ${m}() method; it does not implement the sesh Store contract (wrap an express-session store with sesh/stores/connect).`,
      );
    }
  }
  const macRing: KeyRing = keyRing(opts.secrets, 'session-mac');
  const logKey = keyRing(opts.secrets.slice(0, 1), 'log-hash').keys[0] as Buffer;
  const cookie: CompiledCookie = compileCookie(opts.cookie);
  const { clock, onEvent } = opts;
  const idle = opts.idleTimeout;
  const absolute = opts.absoluteTimeout;
  const timeoutMs = opts.storeTimeout;

  const sidHash = (id: string) => hmac(logKey, id).slice(0, 22);
  const call = storeCaller(timeoutMs, 'session store', onEvent, store);
  const emit = eventEmitter(onEvent, sidHash);

  /** `store.get` for {@link load}: a shared function instead of a closure per request. */
  const getRecord = (key: string) => store.get(key);
  /**
   * The store's synchronous read, when it has one (no promise, no timer: see `Store.getSync`),
   * looked up at each call like `getRecord`, so a store instrumented later is still honoured.
   */
  const getSync =
    typeof store.getSync === 'function'
      ? (key: string) => (store.getSync as (k: string) => StoredSession | null).call(store, key)
      : undefined;
  const syncFailure = storeFailure('session store', onEvent);
  const capabilities = storeCapabilities(store);
  /** The store's synchronous writes, looked up at each call like `getSync`. */
  const writeNow: SyncWrites | null = capabilities.syncWrite
    ? {
        createSync(key, record) {
          try {
            return (store as SyncWrites).createSync(key, record);
          } catch (err) {
            throw syncFailure(err, 'create');
          }
        },
        patchSync(key, patch) {
          try {
            return (store as SyncWrites).patchSync(key, patch);
          } catch (err) {
            throw syncFailure(err, 'patch');
          }
        },
        touchSync(key, lastSeen, expiresAt) {
          try {
            return (store as SyncWrites).touchSync(key, lastSeen, expiresAt);
          } catch (err) {
            throw syncFailure(err, 'touch');
          }
        },
      }
    : null;

  const internals: EngineInternals = {
    options: opts,
    store,
    call: (operation, fn) => call(operation, fn, store),
    writeNow,
    emit,
    expiresAt(createdAt, lastSeen) {
      const hard = createdAt + absolute;
      return idle === false ? hard : Math.min(hard, lastSeen + idle);
    },
    remainingLifetime(createdAt) {
      return Math.max(0, createdAt + absolute - clock.now());
    },
    isLive(record: StoredSession) {
      const now = clock.now();
      if (record.createdAt > now + MAX_SKEW || record.lastSeen > now + MAX_SKEW) return false;
      if (now >= record.expiresAt || now >= record.createdAt + absolute) return false;
      return idle === false || now < record.lastSeen + idle;
    },
    setCookie(id, maxAgeMs) {
      return cookie.serialize(signToken(macRing, id), maxAgeMs === undefined ? undefined : maxAgeMs / 1000, clock.now());
    },
    clearCookie: () => cookie.clear(),
  };

  function discard(key: string): void {
    // Best effort: the record is dead either way, and the store's own expiry will remove it.
    internals.call('destroy', (s) => s.destroy(key)).catch(() => undefined);
  }

  /** The session a verified cookie names, once its record was read (or found missing). */
  function loaded(
    ctx: RequestContext,
    id: string,
    key: string,
    keyIndex: number,
    record: StoredSession | null | undefined,
  ): SessionState<D> {
    if (record === null || record === undefined) {
      internals.emit('unknown_session', id, undefined, ctx.ip);
      return new SessionState<D>(internals, ctx, null, true);
    }
    if (!isValidRecord(record)) {
      internals.emit('corrupt_session', id);
      discard(key);
      return new SessionState<D>(internals, ctx, null, true);
    }
    if (!internals.isLive(record)) {
      internals.emit('expired', id);
      discard(key);
      return new SessionState<D>(internals, ctx, null, true);
    }
    if (keyIndex > 0) internals.emit('key_rotated', id);
    return new SessionState<D>(internals, ctx, { id, key, record, reissue: keyIndex > 0 }, false);
  }

  function loadNow(ctx: RequestContext): SessionState<D> | Promise<SessionState<D>> {
    try {
      const values = readCookie(ctx.cookie, opts.cookie.name, MAX_TOKEN_LENGTH);
      if (values.length === 0 || refusesInsecureLoad(opts, ctx, emit)) return new SessionState<D>(internals, ctx, null, false);
      ctx.hadCookie = true;
      let id: string | undefined;
      let keyIndex = 0;
      let distinct = 0;
      for (const value of values) {
        const check = verifyToken(macRing, value);
        if (!check.ok) {
          internals.emit(check.reason, null, undefined, ctx.ip);
          continue;
        }
        if (check.id !== id) {
          distinct++;
          id = check.id;
          keyIndex = check.keyIndex;
        }
      }
      if (distinct !== 1 || id === undefined) {
        // No valid value, or two different valid sessions (cookie tossing): trust neither.
        if (distinct > 1) internals.emit('duplicate_cookie', null, undefined, ctx.ip);
        return new SessionState<D>(internals, ctx, null, true);
      }
      const key = storeKeyOf(id);
      if (getSync === undefined) {
        const sid = id;
        const index = keyIndex;
        return call('get', getRecord, key).then((record) => loaded(ctx, sid, key, index, record));
      }
      let record: StoredSession | null;
      try {
        record = getSync(key);
      } catch (err) {
        return Promise.reject(syncFailure(err, 'get'));
      }
      return loaded(ctx, id, key, keyIndex, record);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  function load(ctx: RequestContext): Promise<SessionState<D>> {
    const state = loadNow(ctx);
    return state instanceof Promise ? state : Promise.resolve(state);
  }

  function commitResult(state: SessionState<D>): CommitResult {
    const setCookie = state.cookieHeaders();
    if (dropsInsecureCookie(setCookie, opts, state.request, emit)) return { setCookie: [] };
    return { setCookie };
  }

  function commit(state: SessionState<D>): Promise<CommitResult> {
    try {
      return state.flushThen(commitResult);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * A change made after `commitNow` answered at once (`res.send()`, then `req.session.x = 1` in
   * the same step) is still written, as `commit` would have; only for a session the client
   * already holds a cookie for, since no Set-Cookie can follow the response now. Failures are
   * reported as store_error events by the store caller.
   */
  const lateCommit = (state: SessionState<D>): void => {
    if (!state.isNew) commit(state).catch(() => undefined);
  };

  function commitNow(state: SessionState<D>): CommitResult | Promise<CommitResult> {
    try {
      // With synchronous writes, what changed is written now; otherwise only "nothing to write"
      // is answered at once.
      if (writeNow === null ? state.settled() : state.flushNow()) {
        state.watchLateChange(lateCommit);
        return commitResult(state);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return commit(state);
  }

  warnIfInsecureDevMode(opts);

  return {
    options: opts,
    store,
    capabilities,
    load,
    loadNow,
    commit,
    commitNow,
    storeKey: storeKeyOf,
    sidHash,
    close: async () => {
      await store.close?.();
    },
  };
}
