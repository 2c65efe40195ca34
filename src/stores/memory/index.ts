import { type Clock, systemClock } from '../../clock.js';
import { OptionsError } from '../../errors.js';
import { type BaseStoreOptions, FORBIDDEN_KEYS, parseStoredJson, type Store } from '../../store.js';
import type { SessionMeta, SessionPatch, StoredSession, StoredSessionEntry } from '../../types.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions extends BaseStoreOptions {
  /** Most sessions kept; past it the least recently used one is evicted. Default 10 000. */
  maxEntries?: number;
  /** How often expired sessions are swept, in ms (the timer never keeps the process alive). Default 60 000; 0 disables. */
  sweepInterval?: number;
  /** Skip the warning printed when the store is used with NODE_ENV=production. Default false. */
  quiet?: boolean;
}

/**
 * One stored session. Data and metadata are each kept as one JSON text (`null` for an empty
 * object), so nothing is ever shared with callers and an idle session costs little heap: one small
 * object and one string, instead of two Maps of per-key strings (about 600 bytes per session).
 */
interface Entry {
  readonly key: string;
  data: string | null;
  meta: string | null;
  createdAt: number;
  lastSeen: number;
  expiresAt: number;
  userId: string | null;
  /** Neighbours in the recency list (see `MemoryStore`): the next less and more recently used. */
  older: Entry | null;
  newer: Entry | null;
}

/** JSON text of an object without prototype keys, or `null` when it has no key at all. */
function encode(values: Readonly<Record<string, unknown>> | undefined): string | null {
  if (!values) return null;
  let clean: Readonly<Record<string, unknown>> = values;
  for (const k of Object.keys(values)) {
    // `__proto__` & co. as top-level keys would replace the prototype of the object `decode` returns.
    if (FORBIDDEN_KEYS.has(k)) {
      const copy: Record<string, unknown> = {};
      for (const j of Object.keys(values)) if (!FORBIDDEN_KEYS.has(j)) copy[j] = values[j];
      clean = copy;
      break;
    }
  }
  const json = JSON.stringify(clean);
  return json === '{}' ? null : json;
}

/** A fresh object from stored JSON text (prototype keys dropped at every depth). */
function decode(json: string | null): Record<string, unknown> {
  return json === null ? {} : (parseStoredJson(json) as Record<string, unknown>);
}

/** Apply one side of a patch (data or meta) to stored JSON text. */
function merge(
  json: string | null,
  set: Readonly<Record<string, unknown>> | undefined,
  unset: readonly string[] | undefined,
): string | null {
  if (!unset?.length && (!set || Object.keys(set).length === 0)) return json;
  const current = decode(json);
  if (unset) for (const k of unset) delete current[k];
  if (set) {
    for (const k of Object.keys(set)) {
      if (FORBIDDEN_KEYS.has(k)) continue;
      // JSON drops `undefined` members; deleting keeps the key order of what is left.
      if (set[k] === undefined) delete current[k];
      else current[k] = set[k];
    }
  }
  return encode(current);
}

let warned = false;

/**
 * A bounded in-memory store for tests and development: least-recently-used eviction past
 * `maxEntries`, expired sessions swept on an unref'd timer, and the per-user index. Sessions are
 * lost on restart and are not shared between processes; use the SQLite store (the default) or
 * Redis/PostgreSQL in production.
 */
export class MemoryStore implements Store {
  readonly #entries = new Map<string, Entry>();
  /**
   * Recency order, a doubly linked list through the entries: `#oldest` is evicted first, and every
   * read or write moves its entry to `#newest` by relinking it, without touching the Map. Moving it
   * within the Map's own order (delete, then set again) looked free but is not: V8 keeps a deleted
   * entry in its hash bucket's chain until the table is rehashed, so a session read or written over
   * and over leaves a chain of its own dead copies that every later lookup of it walks (measured:
   * 51 µs per request for one busy session among 10,000).
   */
  #oldest: Entry | null = null;
  #newest: Entry | null = null;
  readonly #byUser = new Map<string, Set<string>>();
  readonly #clock: Clock;
  readonly #max: number;
  #timer: NodeJS.Timeout | undefined;
  constructor(options: MemoryStoreOptions = {}) {
    const max = options.maxEntries ?? 10_000;
    if (!Number.isInteger(max) || max < 1)
      throw new OptionsError(`MemoryStore \`maxEntries\` must be a positive integer; got ${String(max)}.`);
    const interval = options.sweepInterval ?? 60_000;
    if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0) {
      throw new OptionsError(`MemoryStore \`sweepInterval\` must be a non-negative number of ms; got ${String(interval)}.`);
    }
    if (options.clock !== undefined && typeof options.clock?.now !== 'function')
      throw new OptionsError(
        'MemoryStore `clock` must be an object with a `now()` method returning ms (e.g. FakeClock from sesh/testing).',
      );
    this.#clock = options.clock ?? systemClock;
    this.#max = max;
    if (interval > 0) {
      this.#timer = setInterval(() => this.#sweep(), interval);
      this.#timer.unref();
    }
    if (process.env.NODE_ENV === 'production' && !options.quiet && !warned) {
      warned = true;
      console.warn(
        '[sesh] MemoryStore is in use with NODE_ENV=production: sessions are lost on restart and not shared between processes. Use the SQLite (default), Redis or PostgreSQL store.',
      );
    }
  }

  /** Number of sessions held, expired ones not yet swept included. */
  get size(): number {
    return this.#entries.size;
  }

  #live(key: string): Entry | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.#clock.now()) {
      this.#remove(e);
      return undefined;
    }
    return e;
  }

  #remove(e: Entry): void {
    this.#entries.delete(e.key);
    this.#unlink(e);
    this.#unindex(e.key, e.userId);
  }

  /** Put `e` at the most recently used end of the list. */
  #link(e: Entry): void {
    const newest = this.#newest;
    e.older = newest;
    e.newer = null;
    if (newest === null) this.#oldest = e;
    else newest.newer = e;
    this.#newest = e;
  }

  #unlink(e: Entry): void {
    const { older, newer } = e;
    if (older === null) this.#oldest = newer;
    else older.newer = newer;
    if (newer === null) this.#newest = older;
    else newer.older = older;
    e.older = null;
    e.newer = null;
  }

  #unindex(key: string, userId: string | null): void {
    if (userId === null) return;
    const set = this.#byUser.get(userId);
    if (!set) return;
    set.delete(key);
    if (set.size === 0) this.#byUser.delete(userId);
  }

  #index(key: string, userId: string | null): void {
    if (userId === null) return;
    let set = this.#byUser.get(userId);
    if (!set) {
      set = new Set();
      this.#byUser.set(userId, set);
    }
    set.add(key);
  }

  /** Mark `e` as the most recently used. */
  #bump(e: Entry): void {
    if (this.#newest === e) return;
    this.#unlink(e);
    this.#link(e);
  }

  #record(e: Entry): StoredSession {
    return {
      data: decode(e.data),
      meta: decode(e.meta) as SessionMeta,
      createdAt: e.createdAt,
      lastSeen: e.lastSeen,
      expiresAt: e.expiresAt,
      userId: e.userId,
    };
  }

  #sweep(): number {
    const now = this.#clock.now();
    let n = 0;
    for (const e of this.#entries.values()) {
      if (e.expiresAt <= now) {
        this.#remove(e);
        n++;
      }
    }
    return n;
  }

  async get(key: string): Promise<StoredSession | null> {
    return this.getSync(key);
  }

  /** {@link Store.getSync}: the read of `get`, without the promise. */
  getSync(key: string): StoredSession | null {
    const e = this.#live(key);
    if (!e) return null;
    this.#bump(e);
    return this.#record(e);
  }

  async create(key: string, session: StoredSession): Promise<boolean> {
    return this.createSync(key, session);
  }

  /** {@link Store.createSync}: the insert of `create`, without the promise. */
  createSync(key: string, session: StoredSession): boolean {
    if (this.#live(key)) return false;
    const e: Entry = {
      key,
      data: encode(session.data),
      meta: encode(session.meta),
      createdAt: session.createdAt,
      lastSeen: session.lastSeen,
      expiresAt: session.expiresAt,
      userId: session.userId ?? null,
      older: null,
      newer: null,
    };
    this.#entries.set(key, e);
    this.#link(e);
    this.#index(key, e.userId);
    // The new entry is the newest, so the oldest is another one (`#max` is at least 1).
    while (this.#entries.size > this.#max) this.#remove(this.#oldest as Entry);
    return true;
  }

  async patch(key: string, patch: SessionPatch): Promise<boolean> {
    return this.patchSync(key, patch);
  }

  /** {@link Store.patchSync}: the merge of `patch`, without the promise. */
  patchSync(key: string, patch: SessionPatch): boolean {
    const e = this.#live(key);
    if (!e) return false;
    // Both texts are computed before either is stored: a value JSON cannot encode changes nothing.
    const data = merge(e.data, patch.set, patch.unset);
    const meta = merge(e.meta, patch.metaSet, patch.metaUnset);
    e.data = data;
    e.meta = meta;
    if (patch.lastSeen !== undefined) e.lastSeen = patch.lastSeen;
    e.expiresAt = patch.expiresAt;
    if (patch.userId !== undefined && patch.userId !== e.userId) {
      this.#unindex(key, e.userId);
      e.userId = patch.userId;
      this.#index(key, e.userId);
    }
    this.#bump(e);
    return true;
  }

  async touch(key: string, lastSeen: number, expiresAt: number): Promise<boolean> {
    return this.touchSync(key, lastSeen, expiresAt);
  }

  /** {@link Store.touchSync}: the update of `touch`, without the promise. */
  touchSync(key: string, lastSeen: number, expiresAt: number): boolean {
    const e = this.#live(key);
    if (!e) return false;
    e.lastSeen = lastSeen;
    e.expiresAt = expiresAt;
    this.#bump(e);
    return true;
  }

  async destroy(key: string): Promise<boolean> {
    const e = this.#live(key);
    if (!e) return false;
    this.#remove(e);
    return true;
  }

  async listByUser(userId: string): Promise<StoredSessionEntry[]> {
    const keys = this.#byUser.get(userId);
    if (!keys) return [];
    const out: StoredSessionEntry[] = [];
    for (const key of [...keys]) {
      const e = this.#live(key);
      if (e) out.push({ key, session: this.#record(e) });
    }
    return out;
  }

  async destroyByUser(userId: string, exceptKeys: readonly string[] = []): Promise<number> {
    const keys = this.#byUser.get(userId);
    if (!keys) return 0;
    const keep = new Set(exceptKeys);
    let n = 0;
    for (const key of [...keys]) {
      if (keep.has(key)) continue;
      const e = this.#entries.get(key);
      if (e) {
        if (e.expiresAt > this.#clock.now()) n++;
        this.#remove(e);
      }
    }
    return n;
  }

  async purgeExpired(): Promise<number> {
    return this.#sweep();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Remove every session (tests). */
  clear(): void {
    this.#entries.clear();
    this.#oldest = null;
    this.#newest = null;
    this.#byUser.clear();
  }
}
