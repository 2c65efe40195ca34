import type { ResolvedOptions } from '../options.js';
import type { Store } from '../store.js';
import type { SeshEventType, StoredSession } from '../types.js';

/** What an adapter tells the engine about the request. */
export interface RequestContext {
  /** The raw `Cookie` header, if any. */
  cookie?: string | undefined;
  /** True when the request arrived over https (after the framework's trust-proxy rules). */
  secure: boolean;
  /** The `Host` header; plain-http requests to a loopback host count as local development. */
  host?: string | undefined;
  /** Client IP (after trust-proxy rules), recorded for device lists when `trackClient` is on. */
  ip?: string | undefined;
  /** User-Agent header, recorded for device lists when `trackClient` is on. */
  userAgent?: string | undefined;
  /** Set by the engine: the request carried a cookie under the session cookie's name. */
  hadCookie?: boolean;
}

/**
 * @internal The synchronous writes a session state uses: the store's `createSync`, `patchSync`
 * and `touchSync` (through the engine, which throws a failure as a `StoreUnavailableError`,
 * already reported), or a stateless request's scope.
 */
export type SyncWrites = Required<Pick<Store, 'createSync' | 'patchSync' | 'touchSync'>>;

/** @internal The engine services a session state uses. */
export interface EngineInternals {
  readonly options: ResolvedOptions;
  readonly store: Store;
  /** Run one store operation with the per-operation timeout; failures become StoreUnavailableError. */
  call<T>(operation: string, fn: (store: Store) => Promise<T>): Promise<T>;
  /** The store's synchronous writes, or null when it has none. */
  readonly writeNow: SyncWrites | null;
  emit(type: SeshEventType, sid?: string | null, detail?: string, ip?: string): void;
  expiresAt(createdAt: number, lastSeen: number): number;
  remainingLifetime(createdAt: number): number;
  isLive(record: StoredSession): boolean;
  setCookie(id: string, maxAgeMs?: number): string;
  clearCookie(): string;
}
