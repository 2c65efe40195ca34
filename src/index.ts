export type { Clock } from './clock.js';
export { systemClock } from './clock.js';
export type { CommitResult, Sessions } from './core/engine.js';
export { createSessions } from './core/engine.js';
export type { RequestContext } from './core/internals.js';
export type { RegenerateOptions, Session, SessionApi } from './core/session.js';
export { SessionState } from './core/session.js';
export type {
  StatelessOpenResult,
  StatelessOptions,
  StatelessPayload,
  StatelessRejection,
  StatelessSessions,
} from './core/stateless.js';
export { createStatelessSessions, MAX_CHUNKS, MAX_COOKIE_BYTES } from './core/stateless.js';
export type { RandomSource } from './crypto/index.js';
export type { SeshErrorCode } from './errors.js';
export { isSeshError, OptionsError, SeshError, SessionTooLargeError, StoreUnavailableError } from './errors.js';
export type { CookieOptions, ResolvedOptions, SessionOptions, TimeoutPreset } from './options.js';
export { MIN_SECRET_LENGTH, resolveOptions, validateSecrets } from './options.js';
export type { BaseStoreOptions, Store, StoreCapabilities } from './store.js';
export { applyPatch, FORBIDDEN_KEYS, parseStoredJson, storeCapabilities } from './store.js';
export type {
  DataRecord,
  JsonValue,
  SeshEvent,
  SeshEventType,
  SessionData,
  SessionMeta,
  SessionPatch,
  StoredSession,
  StoredSessionEntry,
} from './types.js';
