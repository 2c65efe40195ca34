/**
 * The app's own session data. Augment it to type `req.session`:
 *
 * ```ts
 * declare module 'sesh' {
 *   interface SessionData { views: number; username: string }
 * }
 * ```
 *
 * Every key is optional on `req.session` (a new session starts empty).
 */
// biome-ignore lint/suspicious/noEmptyInterface: this is the module-augmentation point for apps.
export interface SessionData {}

/** A JSON-compatible value, which is what a store persists. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Plain key/value map of session data as the store sees it (values are JSON-compatible). */
export type DataRecord = Record<string, unknown>;

/**
 * Library-owned metadata of a session, kept apart from the app's data so data keys can never shadow
 * it. Stores persist it as an opaque JSON object.
 */
export interface SessionMeta {
  /** Time of the last login (ms), set by the auth helpers. */
  authTime?: number;
  /** When true the cookie is persistent ("remember me"): `Max-Age` = remaining absolute lifetime. */
  remember?: boolean;
  /** Client IP seen at creation or last touch (for the device list). */
  ip?: string;
  /** User-Agent seen at creation or last touch (for the device list). */
  userAgent?: string;
  /** Other library-owned fields (roles, CSRF secret, ...). */
  [key: string]: unknown;
}

/**
 * One session as a store holds it. The store key is never the session ID itself but a hash of it,
 * so a leaked store yields no usable cookies.
 */
export interface StoredSession {
  /** The app's data: top-level keys are the unit of per-key merging. */
  data: DataRecord;
  /** Library metadata (see {@link SessionMeta}); top-level keys merge like data keys. */
  meta: SessionMeta;
  /** Creation time, ms since the epoch: the basis of the absolute timeout. */
  createdAt: number;
  /** Last activity, ms since the epoch: the basis of the idle timeout. */
  lastSeen: number;
  /**
   * The instant after which the record is dead (the earlier of the idle and absolute deadlines).
   * Stores use it for TTLs and purging, and must not return a record whose `expiresAt` has passed.
   */
  expiresAt: number;
  /** The user the session is bound to (set at login), or null for anonymous sessions. */
  userId: string | null;
}

/**
 * A per-key update of an existing session. Only the listed keys change; keys written concurrently by
 * other requests survive. A patch never creates a record (update-if-exists).
 */
export interface SessionPatch {
  /** Data keys to set, with their new values (each replaces the whole value of that key). */
  set?: Readonly<DataRecord>;
  /** Data keys to delete. */
  unset?: readonly string[];
  /** Meta keys to set. */
  metaSet?: Readonly<SessionMeta>;
  /** Meta keys to delete. */
  metaUnset?: readonly string[];
  /** New last-activity time, when the patch also touches the session. */
  lastSeen?: number;
  /** New expiry instant of the record. */
  expiresAt: number;
  /** New user binding; `undefined` leaves it unchanged. */
  userId?: string | null;
}

/** A session as listed by the per-user index: the store key plus the record. */
export interface StoredSessionEntry {
  /** The store key (a hash of the session ID, safe to show; it cannot be used as a cookie). */
  key: string;
  /** The record. */
  session: StoredSession;
}

/** Names of the events the engine reports through `onEvent`. */
export type SeshEventType =
  | 'invalid_signature'
  | 'malformed_cookie'
  | 'duplicate_cookie'
  | 'unknown_session'
  | 'expired'
  | 'corrupt_session'
  | 'session_gone'
  | 'store_error'
  | 'key_rotated'
  | 'insecure_transport'
  | 'created'
  | 'regenerated'
  | 'destroyed'
  /** A stateless (sealed-cookie) session was refused by the revocation store or the auth-version check. */
  | 'revoked'
  /** A user logged in (auth helpers); `sidHash` is the new session's. */
  | 'login'
  /** An unsafe request was refused by the CSRF checks; `detail` says which check. */
  | 'csrf_rejected';

/**
 * A security or lifecycle event. It never carries a raw session ID or cookie value: only `sidHash`,
 * a keyed hash truncated to 16 bytes, safe for logs.
 */
export interface SeshEvent {
  type: SeshEventType;
  /** Keyed, truncated hash of the session ID, when one is known. */
  sidHash?: string;
  /** Human-readable detail, free of secrets. */
  detail?: string;
  /** The underlying error, for `store_error`. */
  error?: unknown;
  /**
   * Client IP of the request, on cookie-check events (`invalid_signature`, `malformed_cookie`,
   * `duplicate_cookie`, `unknown_session`), for app-level rate limiting.
   */
  ip?: string;
}
