import { randomId } from '../crypto/index.js';
import { SeshError } from '../errors.js';
import { FORBIDDEN_KEYS } from '../store.js';
import type { DataRecord, SessionData, SessionMeta, SessionPatch, StoredSession } from '../types.js';
import { adoptData, assertDataKey, RESERVED_KEYS, serializeData, snapshotOf } from './data.js';
import type { EngineInternals, RequestContext, SyncWrites } from './internals.js';
import { storeKeyOf } from './token.js';

/** Where a session proxy's placeholder target keeps its state. */
const STATE: unique symbol = Symbol('sesh.state');
interface ProxyTarget {
  [STATE]: SessionState<unknown>;
}

/** The lock of a session with no operation queued (shared: one promise less per request). */
const IDLE: Promise<unknown> = Promise.resolve();
const ignore = (): undefined => undefined;

/** The methods every `req.session` has, next to the app's data. */
export interface SessionApi {
  /** The session ID (generated on first use for a new session). Never a store key. */
  readonly id: string;
  /**
   * Give the session a new ID and kill the old one at once (call it on any privilege change). Data
   * is kept. Rejects with `SESSION_GONE` when another request destroyed or rotated it meanwhile.
   */
  regenerate(): Promise<void>;
  /** Delete the session from the store now; the response clears the cookie. */
  destroy(): Promise<void>;
  /** Write pending changes now (the response also writes them before its headers are sent). */
  save(): Promise<void>;
  /** Replace the data with the stored copy, dropping unsaved changes. */
  reload(): Promise<void>;
  /** Mark the session active now, even if the touch throttle would skip it. */
  touch(): void;
}

/**
 * The type of `req.session`: the app's {@link SessionData} (every key optional) plus the
 * {@link SessionApi} methods. Data keys named like a method are not allowed.
 */
export type Session<D = SessionData> = Omit<Partial<D>, keyof SessionApi> & SessionApi;

/** Options of {@link SessionState.regenerate}. */
export interface RegenerateOptions {
  /** Data keys to carry over to the new ID; default: all of them. */
  keep?: readonly string[] | 'all';
  /** Start a new absolute lifetime (login does this). Default `false`. */
  renewLifetime?: boolean;
}

/** @internal A session read from the store, as the engine hands it to {@link SessionState}. */
export interface LoadedSession {
  /** The session ID (from the verified cookie). */
  id: string;
  /** Its store key (`storeKeyOf(id)`), already computed to read the record. */
  key: string;
  record: StoredSession;
  /** Send the cookie again (signed under an older key, or untidy copies to clean up). */
  reissue: boolean;
}

/**
 * The engine's handle on one request's session. Adapters expose `state.session` as `req.session`;
 * the auth helpers and the compatibility layer use the rest.
 */
export class SessionState<D = SessionData> {
  /** The object apps read and write (`req.session`). */
  readonly session: Session<D>;

  #engine: EngineInternals;
  #ctx: RequestContext;
  #id: string | null;
  #key: string | null = null;
  /** True when a record for the current ID exists in the store. */
  #persisted: boolean;
  #data: DataRecord;
  #meta: SessionMeta;
  #userId: string | null;
  #createdAt: number;
  #lastSeen: number;
  /** Changed data keys; null when none (most requests change nothing: no Set for them). */
  #dirty: Set<string> | null = null;
  #snapshots: Map<string, string | undefined> | null = null;
  /** Changed metadata keys; null when none. */
  #metaDirty: Set<string> | null = null;
  #userDirty = false;
  #forceTouch = false;
  #forceSave = false;
  #sendCookie = false;
  #clearCookie: boolean;
  #gone = false;
  #lock: Promise<unknown> = IDLE;

  /** @internal Built by the engine: `loaded` is the loaded session, or null for a new one. */
  constructor(engine: EngineInternals, ctx: RequestContext, loaded: LoadedSession | null, clearCookie: boolean) {
    this.#engine = engine;
    this.#ctx = ctx;
    this.#clearCookie = clearCookie;
    if (loaded) {
      this.#id = loaded.id;
      // The engine hashed the ID to read the record: the writes reuse that key.
      this.#key = loaded.key;
      this.#persisted = true;
      this.#data = adoptData(loaded.record.data);
      this.#meta = { ...loaded.record.meta };
      this.#userId = loaded.record.userId ?? null;
      this.#createdAt = loaded.record.createdAt;
      this.#lastSeen = loaded.record.lastSeen;
      this.#sendCookie = loaded.reissue;
    } else {
      this.#id = null;
      this.#persisted = false;
      this.#data = {};
      this.#meta = {};
      this.#userId = null;
      this.#createdAt = engine.options.clock.now();
      this.#lastSeen = this.#createdAt;
    }
    this.session = this.#makeProxy();
  }

  /** The session ID, generated on first use for a new session. */
  get id(): string {
    if (this.#id === null) {
      this.#id = randomId(this.#engine.options.random);
      this.#key = null;
    }
    return this.#id;
  }

  /** The store key of the current ID (a hash of it). */
  get storeKey(): string {
    if (this.#key === null) this.#key = storeKeyOf(this.id);
    return this.#key;
  }

  /** True until the session has been written to the store. */
  get isNew(): boolean {
    return !this.#persisted;
  }

  /** True when a write was refused because the session was destroyed or rotated elsewhere. */
  get gone(): boolean {
    return this.#gone;
  }

  /** Creation time (ms), the basis of the absolute timeout. */
  get createdAt(): number {
    return this.#createdAt;
  }

  /** Last activity time (ms) as stored. */
  get lastSeen(): number {
    return this.#lastSeen;
  }

  /** When the session expires if nothing else happens (ms). */
  get expiresAt(): number {
    return this.#engine.expiresAt(this.#createdAt, this.#lastSeen);
  }

  /** The request this session belongs to (as the adapter described it). */
  get request(): RequestContext {
    return this.#ctx;
  }

  /**
   * @internal The engine services this state was built with (the stateless engine's request
   * scope, which its commit finds here).
   */
  get engine(): EngineInternals {
    return this.#engine;
  }

  /** The user this session is bound to, or null. */
  get userId(): string | null {
    return this.#userId;
  }

  /** Bind the session to a user (or unbind with null); written with the next save. */
  setUser(userId: string | null): void {
    if (userId !== null && (typeof userId !== 'string' || userId.length === 0)) {
      throw new SeshError('INVALID_OPTIONS', 'userId must be a non-empty string (or null to unbind).');
    }
    if (userId !== this.#userId) {
      this.#userId = userId;
      this.#userDirty = true;
      this.#noteChange();
    }
  }

  /** Read a metadata field (library-owned, never visible as data). */
  getMeta<K extends keyof SessionMeta & string>(key: K): SessionMeta[K] {
    return this.#meta[key];
  }

  /** Write a metadata field (`undefined` deletes it); written with the next save. */
  setMeta(key: string, value: unknown): void {
    if (FORBIDDEN_KEYS.has(key)) throw new SeshError('RESERVED_KEY', `"${key}" cannot be a metadata key.`);
    if (this.#meta[key] === value && typeof value !== 'object') return;
    if (value === undefined) delete this.#meta[key];
    else this.#meta[key] = value;
    this.#metaDirty ??= new Set();
    this.#metaDirty.add(key);
    this.#noteChange();
    // "Remember me" changes the cookie itself (Max-Age), so the cookie must be sent again.
    if (key === 'remember') this.#sendCookie = true;
  }

  /** See {@link SessionApi.regenerate}. */
  regenerate(options: RegenerateOptions = {}): Promise<void> {
    return this.#exclusive(async () => {
      const engine = this.#engine;
      if (this.#persisted) {
        const existed = await engine.call('destroy', (s) => s.destroy(this.storeKey));
        if (!existed) {
          this.#markGone();
          throw new SeshError('SESSION_GONE', 'The session was destroyed or rotated by another request before it could be regenerated.', {
            status: 409,
          });
        }
      }
      const keep = options.keep ?? 'all';
      if (keep !== 'all') {
        const allowed = new Set(keep);
        for (const k of Object.keys(this.#data)) if (!allowed.has(k)) delete this.#data[k];
      }
      const oldSid = this.#id;
      this.#id = null;
      this.#key = null;
      this.#persisted = false;
      this.#forceSave = true;
      this.#clearCookie = false;
      if (options.renewLifetime) {
        this.#createdAt = engine.options.clock.now();
        this.#lastSeen = this.#createdAt;
      }
      if (oldSid) engine.emit('regenerated', oldSid);
    });
  }

  /** See {@link SessionApi.destroy}. Afterwards the object is an empty, new session. */
  destroy(): Promise<void> {
    return this.#exclusive(async () => {
      const engine = this.#engine;
      if (this.#persisted) {
        try {
          await engine.call('destroy', (s) => s.destroy(this.storeKey));
        } catch (err) {
          // The record may survive: report the failure, but still clear the cookie in this response
          // and write nothing more for this session (A34).
          this.#gone = true;
          this.#persisted = false;
          this.#clearCookie = true;
          throw err;
        }
        engine.emit('destroyed', this.#id);
      }
      this.#clearCookie = this.#clearCookie || this.#persisted || this.#sendCookie || this.#ctx.hadCookie === true;
      this.#reset();
    });
  }

  /** See {@link SessionApi.save}. Rejects with `SESSION_GONE` when the session was destroyed elsewhere. */
  save(): Promise<void> {
    this.#forceSave = true;
    return this.#exclusive(() => this.#flush(false));
  }

  /** See {@link SessionApi.reload}. */
  reload(): Promise<void> {
    return this.#exclusive(async () => {
      if (!this.#persisted) {
        this.#data = {};
        this.#dirty = null;
        this.#snapshots = null;
        return;
      }
      const record = await this.#engine.call('get', (s) => s.get(this.storeKey));
      if (!record || !this.#engine.isLive(record)) {
        this.#markGone();
        this.#reset();
        throw new SeshError('SESSION_GONE', 'The session no longer exists in the store.', { status: 409 });
      }
      this.#data = adoptData(record.data);
      this.#meta = { ...record.meta };
      this.#userId = record.userId ?? null;
      this.#lastSeen = record.lastSeen;
      this.#dirty = null;
      this.#metaDirty = null;
      this.#userDirty = false;
      this.#snapshots = null;
    });
  }

  /** See {@link SessionApi.touch}. */
  touch(): void {
    this.#forceTouch = true;
  }

  /**
   * @internal Write what changed (adapters call it through the engine's `commit`). When `auto` is
   * true a refused write (session gone) is reported as an event instead of thrown.
   */
  flush(auto: boolean): Promise<void> {
    return this.#exclusive(() => this.#flush(auto));
  }

  /**
   * @internal `flush(true)`, then `finish(this)` in the same exclusive step: the engine's commit,
   * without a second promise chain after the flush.
   */
  flushThen<R>(finish: (state: SessionState<D>) => R): Promise<R> {
    return this.#exclusive(() => {
      const writing = this.#flush(true);
      return writing === undefined ? finish(this) : writing.then(() => finish(this));
    });
  }

  /** @internal Set-Cookie values the response must carry after the last flush. */
  cookieHeaders(): string[] {
    const engine = this.#engine;
    if (this.#persisted && !this.#gone && (this.#sendCookie || engine.options.rolling)) {
      const remember = this.#meta.remember === true;
      return [engine.setCookie(this.id, remember ? this.#engine.remainingLifetime(this.#createdAt) : undefined)];
    }
    if (this.#clearCookie && !this.#persisted) return [engine.clearCookie()];
    return [];
  }

  #markGone(): void {
    this.#gone = true;
    this.#engine.emit('session_gone', this.#id);
  }

  #reset(): void {
    this.#id = null;
    this.#key = null;
    this.#persisted = false;
    this.#data = {};
    this.#meta = {};
    this.#userId = null;
    this.#createdAt = this.#engine.options.clock.now();
    this.#lastSeen = this.#createdAt;
    this.#dirty = null;
    this.#metaDirty = null;
    this.#userDirty = false;
    this.#snapshots = null;
    this.#forceSave = false;
    this.#forceTouch = false;
    this.#sendCookie = false;
  }

  #exclusive<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.then(undefined, ignore);
    return run;
  }

  #markDirty(key: string): void {
    this.#dirty ??= new Set();
    this.#dirty.add(key);
    this.#noteChange();
  }

  /** Set by the engine's `commitNow` when it found nothing to write; called on the next change. */
  #onLateChange: ((state: SessionState<D>) => void) | null = null;

  /**
   * @internal Call `fn` (once, a microtask later) when the session changes from now on: a commit
   * that found nothing to write still writes a change made in the same step after it.
   */
  watchLateChange(fn: (state: SessionState<D>) => void): void {
    this.#onLateChange = fn;
  }

  /** Every change (data, metadata, user) passes here: hands a late change to the watcher. */
  #noteChange(): void {
    const fn = this.#onLateChange;
    if (fn === null) return;
    this.#onLateChange = null;
    queueMicrotask(() => fn(this));
  }

  /** Keys whose object values were read and then mutated in place join the dirty set. */
  #collectMutations(): void {
    const snaps = this.#snapshots;
    if (!snaps) return;
    for (const [k, before] of snaps) {
      if (!this.#dirty?.has(k) && (before === undefined || snapshotOf(this.#data[k]) !== before)) this.#markDirty(k);
    }
  }

  /**
   * Write what changed. Decides synchronously and returns undefined when there is nothing to
   * write (no promise, so the exclusive step settles a microtask hop sooner); the write itself is
   * `#write`. Only ever runs inside `#exclusive`, where a synchronous throw becomes a rejection.
   */
  #flush(auto: boolean): Promise<void> | undefined {
    if (this.#gone) {
      if (!auto) throw new SeshError('SESSION_GONE', 'The session was destroyed or rotated by another request.', { status: 409 });
      return undefined;
    }
    const now = this.#engine.options.clock.now();
    const changed = this.#pending(now);
    return changed === null ? undefined : this.#write(auto, now, changed);
  }

  /**
   * What a flush at `now` has to do: null when nothing (a `save()` that found nothing to write is
   * dropped), otherwise whether data or metadata changed (false: a touch or a forced save is due).
   */
  #pending(now: number): boolean | null {
    const { options } = this.#engine;
    this.#collectMutations();
    // The dirty sets only exist once a key was added (and are dropped when cleared).
    const changed = this.#dirty !== null || this.#metaDirty !== null || this.#userDirty;
    if (this.#persisted) {
      if (!changed && !this.#forceTouch && now - this.#lastSeen < options.touchAfter) {
        this.#forceSave = false;
        return null;
      }
    } else if (!changed && !this.#forceSave && !options.saveUninitialized) {
      return null;
    }
    return changed;
  }

  /**
   * @internal True when a commit now would write nothing and no other step on this session (a
   * save, a regenerate) is running: the engine's `commitNow` then answers without a promise.
   */
  settled(): boolean {
    if (this.#lock !== IDLE) return false;
    return this.#gone || this.#pending(this.#engine.options.clock.now()) === null;
  }

  /**
   * @internal The engine's commit for a store with synchronous writes: when no other step on this
   * session is running, write what changed now, as `flush(true)` would, and return true; false
   * (and nothing done) when a step is running. A failed write throws.
   */
  flushNow(): boolean {
    const writes = this.#engine.writeNow;
    if (this.#lock !== IDLE || writes === null) return false;
    if (this.#gone) return true;
    const now = this.#engine.options.clock.now();
    const changed = this.#pending(now);
    if (changed !== null) this.#writeNow(writes, now, changed);
    return true;
  }

  async #write(auto: boolean, now: number, changed: boolean): Promise<void> {
    const engine = this.#engine;
    const key = this.storeKey;
    if (!this.#persisted) {
      const record = this.#newRecord(now);
      this.#created(await engine.call('create', (s) => s.create(key, record)), now);
      return;
    }
    // Here the data changed or a touch is due (`#flush` decided).
    let ok: boolean;
    if (changed) {
      const patch = this.#patch(now);
      ok = await engine.call('patch', (s) => s.patch(key, patch));
    } else {
      const expiresAt = engine.expiresAt(this.#createdAt, now);
      ok = await engine.call('touch', (s) => s.touch(key, now, expiresAt));
    }
    this.#updated(ok, auto, now);
  }

  /** `#write` through the store's synchronous writes (`writes`), for the engine's `flushNow`. */
  #writeNow(writes: SyncWrites, now: number, changed: boolean): void {
    const key = this.storeKey;
    if (!this.#persisted) {
      this.#created(writes.createSync(key, this.#newRecord(now)), now);
      return;
    }
    const ok = changed ? writes.patchSync(key, this.#patch(now)) : writes.touchSync(key, now, this.#engine.expiresAt(this.#createdAt, now));
    this.#updated(ok, true, now);
  }

  /** The record a new session is created with (its size checked first). */
  #newRecord(now: number): StoredSession {
    const engine = this.#engine;
    const { options } = engine;
    serializeData(this.#data, options.maxSize);
    if (options.trackClient) {
      if (this.#ctx.ip) this.#meta.ip = this.#ctx.ip;
      if (this.#ctx.userAgent) this.#meta.userAgent = this.#ctx.userAgent.slice(0, 512);
    }
    return {
      data: { ...this.#data },
      meta: { ...this.#meta },
      createdAt: this.#createdAt,
      lastSeen: now,
      expiresAt: engine.expiresAt(this.#createdAt, now),
      userId: this.#userId,
    };
  }

  /** After the store answered a create. */
  #created(created: boolean, now: number): void {
    if (!created) {
      // A 256-bit collision does not happen; a store that says so is broken. Fail closed.
      throw new SeshError('STORE_UNAVAILABLE', 'The store refused to create a session under a fresh random ID.', { status: 503 });
    }
    this.#persisted = true;
    this.#sendCookie = true;
    this.#lastSeen = now;
    this.#afterWrite();
    this.#engine.emit('created', this.#id);
  }

  /** The per-key patch of what changed (its size checked first). */
  #patch(now: number): SessionPatch {
    const engine = this.#engine;
    serializeData(this.#data, engine.options.maxSize);
    const patch: SessionPatch = { expiresAt: engine.expiresAt(this.#createdAt, now), lastSeen: now };
    const set: DataRecord = {};
    const unset: string[] = [];
    if (this.#dirty) {
      for (const k of this.#dirty) {
        if (Object.hasOwn(this.#data, k) && this.#data[k] !== undefined) set[k] = this.#data[k];
        else unset.push(k);
      }
    }
    if (unset.length) patch.unset = unset;
    if (Object.keys(set).length) patch.set = set;
    if (this.#metaDirty) {
      const metaSet: SessionMeta = {};
      const metaUnset: string[] = [];
      for (const k of this.#metaDirty) {
        if (this.#meta[k] === undefined) metaUnset.push(k);
        else metaSet[k] = this.#meta[k];
      }
      patch.metaSet = metaSet;
      if (metaUnset.length) patch.metaUnset = metaUnset;
    }
    if (this.#userDirty) patch.userId = this.#userId;
    return patch;
  }

  /** After the store answered a patch or a touch (`ok`: the record still existed). */
  #updated(ok: boolean, auto: boolean, now: number): void {
    if (!ok) {
      this.#markGone();
      if (!auto)
        throw new SeshError('SESSION_GONE', 'The session was destroyed or rotated by another request; the write was refused.', {
          status: 409,
        });
      return;
    }
    this.#lastSeen = now;
    this.#afterWrite();
  }

  #afterWrite(): void {
    this.#dirty = null;
    this.#metaDirty = null;
    this.#userDirty = false;
    this.#forceSave = false;
    this.#forceTouch = false;
    // Objects the app still holds may be mutated after this write: compare against the new state.
    const snaps = this.#snapshots;
    if (snaps) for (const k of snaps.keys()) snaps.set(k, snapshotOf(this.#data[k]));
  }

  /** The `req.session` methods, built on first use (most requests never touch them). */
  #api: SessionApi | null = null;

  #sessionApi(): SessionApi {
    if (this.#api) return this.#api;
    const state = this;
    this.#api = Object.freeze({
      get id() {
        return state.id;
      },
      regenerate: () => this.regenerate(),
      destroy: () => this.destroy(),
      save: () => this.save(),
      reload: () => this.reload(),
      touch: () => this.touch(),
    });
    return this.#api;
  }

  /**
   * One handler for every session proxy (no closures per request). Each proxy's target is a
   * placeholder `{}` that only carries its state under a private symbol; every trap reads the
   * state's current data object, which reload() and destroy() replace.
   */
  static readonly #handler: ProxyHandler<ProxyTarget> = {
    get: (t, key) => {
      const state = t[STATE];
      if (typeof key === 'symbol') return Reflect.get(state.#data, key);
      if (RESERVED_KEYS.has(key)) return key === 'id' ? state.id : state.#sessionApi()[key as keyof SessionApi];
      const data = state.#data;
      const value = data[key];
      if (value !== null && typeof value === 'object' && Object.hasOwn(data, key)) {
        const snaps = state.#snapshots ?? new Map<string, string | undefined>();
        state.#snapshots = snaps;
        if (!snaps.has(key) && !state.#dirty?.has(key)) snaps.set(key, snapshotOf(value));
      }
      return value;
    },
    set: (t, key, value) => {
      assertDataKey(key);
      const state = t[STATE];
      const data = state.#data;
      if (data[key] !== value || (value !== null && typeof value === 'object') || !Object.hasOwn(data, key)) {
        data[key] = value;
        state.#markDirty(key);
      }
      return true;
    },
    deleteProperty: (t, key) => {
      const state = t[STATE];
      if (typeof key === 'string' && Object.hasOwn(state.#data, key)) {
        delete state.#data[key];
        state.#markDirty(key);
      }
      return true;
    },
    has: (t, key) => (typeof key === 'string' && RESERVED_KEYS.has(key)) || key in t[STATE].#data,
    ownKeys: (t) => Reflect.ownKeys(t[STATE].#data),
    getOwnPropertyDescriptor: (t, key) => {
      const d = Reflect.getOwnPropertyDescriptor(t[STATE].#data, key);
      if (d) d.configurable = true;
      return d;
    },
    defineProperty: (t, key, desc) => {
      assertDataKey(key);
      const state = t[STATE];
      state.#markDirty(key);
      return Reflect.defineProperty(state.#data, key, desc);
    },
    setPrototypeOf: () => false,
  };

  #makeProxy(): Session<D> {
    // The STATE property is configurable and never reported by a trap, so it stays invisible.
    const target: ProxyTarget = { [STATE]: this as SessionState<unknown> };
    return new Proxy<ProxyTarget>(target, SessionState.#handler) as unknown as Session<D>;
  }
}

export type { RequestContext } from './internals.js';
