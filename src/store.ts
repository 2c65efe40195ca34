import type { Clock } from './clock.js';
import type { SessionPatch, StoredSession, StoredSessionEntry } from './types.js';

/**
 * The store contract: all the engine knows about storage. Every method takes a **store key**, a
 * hash of the session ID computed by the engine, never the ID itself.
 *
 * Rules every store follows (checked by `runStoreSuite` from `sesh/testing`):
 * - `get` never returns a record whose `expiresAt` is at or before the store's clock, and returns a
 *   fresh object each time (callers may mutate it).
 * - `create` inserts only if the key is absent.
 * - `patch` and `touch` only update an existing, unexpired record (update-if-exists): a destroyed
 *   or rotated session is never re-created by a slow request. Patches merge per top-level key.
 * - `destroy` reports whether a live record existed, so exactly one of two concurrent rotations wins.
 * - Data values are JSON-compatible and are stored and returned as JSON values.
 */
export interface Store {
  /** Read a session, or `null` when it does not exist or has expired. */
  get(key: string): Promise<StoredSession | null>;
  /**
   * Optional: the same read, answered synchronously. Stores that answer from inside the process
   * (memory, embedded SQLite) implement it, and the engine then loads a session without a promise
   * or a timer on the request's path (a synchronous call needs no `storeTimeout`). It must return
   * exactly what `get` would resolve; a throw counts as the store being unavailable (503). Stores
   * that talk to a server must not implement it.
   */
  getSync?(key: string): StoredSession | null;
  /** Insert a new session. Resolves `false` (and changes nothing) when the key already exists. */
  create(key: string, session: StoredSession): Promise<boolean>;
  /** Apply a per-key patch to an existing session. Resolves `false` when there is none. */
  patch(key: string, patch: SessionPatch): Promise<boolean>;
  /** Move `lastSeen` and `expiresAt` of an existing session. Resolves `false` when there is none. */
  touch(key: string, lastSeen: number, expiresAt: number): Promise<boolean>;
  /** Delete a session. Resolves `true` when a live record was deleted. */
  destroy(key: string): Promise<boolean>;
  /**
   * Optional, with `patchSync` and `touchSync`: `create`, answered synchronously. Stores that write
   * inside the process (memory, embedded SQLite) implement all three, and the engine then commits
   * a changed session without a promise or a timer on the request's path. Each must do exactly
   * what its asynchronous twin does and return what it would resolve; a throw counts as the store
   * being unavailable (503). Stores that talk to a server must not implement them.
   */
  createSync?(key: string, session: StoredSession): boolean;
  /** Optional: `patch`, answered synchronously (see {@link Store.createSync}). */
  patchSync?(key: string, patch: SessionPatch): boolean;
  /** Optional: `touch`, answered synchronously (see {@link Store.createSync}). */
  touchSync?(key: string, lastSeen: number, expiresAt: number): boolean;

  /**
   * Optional: the longest time, in ms, any operation of this store takes to settle. A store that
   * sets it bounds every operation itself (rejecting with `StoreUnavailableError` past the limit),
   * as the Redis store's `commandTimeout` and the PostgreSQL store's `queryTimeout` do. When it is
   * no longer than the engine's `storeTimeout`, the engine trusts it and sets no deadline of its
   * own on top (a second timer per store call would bound the same wait twice). Read at each call,
   * so a store may declare it only from some point on (the PostgreSQL store once its schema is
   * current). Failures are still reported as `store_error` events and answered with 503.
   */
  readonly operationTimeout?: number;

  /** Optional capability: the sessions bound to a user (per-user index). */
  listByUser?(userId: string): Promise<StoredSessionEntry[]>;
  /** Optional capability: delete the sessions of a user, except the given keys. Resolves the count. */
  destroyByUser?(userId: string, exceptKeys?: readonly string[]): Promise<number>;
  /** Optional capability: delete expired records now. Resolves how many were deleted. */
  purgeExpired?(): Promise<number>;
  /** Optional capability: release timers, connections or file handles the store owns. */
  close?(): Promise<void>;
}

/** Which optional capabilities a store has. Detected once, when the engine is created. */
export interface StoreCapabilities {
  /** `listByUser` and `destroyByUser` are both implemented. */
  userIndex: boolean;
  /** `purgeExpired` is implemented. */
  purge: boolean;
  /** `close` is implemented. */
  close: boolean;
  /** `getSync` is implemented (reads answered inside the process). */
  syncRead: boolean;
  /** `createSync`, `patchSync` and `touchSync` are all implemented (writes done inside the process). */
  syncWrite: boolean;
}

/** Detect the optional capabilities of a store. */
export function storeCapabilities(store: Store): StoreCapabilities {
  return {
    userIndex: typeof store.listByUser === 'function' && typeof store.destroyByUser === 'function',
    purge: typeof store.purgeExpired === 'function',
    close: typeof store.close === 'function',
    syncRead: typeof store.getSync === 'function',
    syncWrite: typeof store.createSync === 'function' && typeof store.patchSync === 'function' && typeof store.touchSync === 'function',
  };
}

/** Options every bundled store accepts. */
export interface BaseStoreOptions {
  /** Clock used for store-side expiry checks. Defaults to the system clock. */
  clock?: Clock;
}

/** Names that are never accepted as data or meta keys (prototype pollution). */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Parse JSON produced by a store into plain data, dropping `__proto__`, `constructor` and
 * `prototype` keys at every depth. Stores that keep JSON text use it for reads.
 */
export function parseStoredJson(text: string): unknown {
  // A reviver makes JSON.parse several times slower; only text that could spell a forbidden key
  // (literally or through a \u escape) needs one.
  return MAYBE_FORBIDDEN.test(text) ? JSON.parse(text, dropForbiddenKeys) : JSON.parse(text);
}

const MAYBE_FORBIDDEN = /__proto__|constructor|prototype|\\u/;

function dropForbiddenKeys(key: string, value: unknown): unknown {
  return FORBIDDEN_KEYS.has(key) ? undefined : value;
}

/**
 * Apply a {@link SessionPatch} to a record in memory: per top-level key, returning a new record.
 * Used by stores that merge in the application process (memory, SQLite inside a transaction).
 */
export function applyPatch(session: StoredSession, patch: SessionPatch): StoredSession {
  const data = mergeKeys(session.data, patch.set, patch.unset);
  const meta = mergeKeys(session.meta, patch.metaSet, patch.metaUnset);
  return {
    data,
    meta,
    createdAt: session.createdAt,
    lastSeen: patch.lastSeen ?? session.lastSeen,
    expiresAt: patch.expiresAt,
    userId: patch.userId === undefined ? session.userId : patch.userId,
  };
}

function mergeKeys<T extends Record<string, unknown>>(
  base: T,
  set: Readonly<Record<string, unknown>> | undefined,
  unset: readonly string[] | undefined,
): T {
  const out: Record<string, unknown> = { ...base };
  if (unset) for (const k of unset) delete out[k];
  if (set) {
    for (const k of Object.keys(set)) {
      if (!FORBIDDEN_KEYS.has(k)) out[k] = set[k];
    }
  }
  return out as T;
}
