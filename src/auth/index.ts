/**
 * Authentication helpers on top of the engine, framework-neutral: they work on a request's
 * {@link SessionState} and the {@link Sessions} engine that loaded it. `sesh/express` wraps them
 * for `req`/`res`; other adapters can do the same.
 */
import Bowser from 'bowser';
import {
  SeshError,
  type SessionData,
  type SessionState,
  type Sessions,
  type Store,
  type StoredSession,
  type StoredSessionEntry,
  StoreUnavailableError,
} from '../index.js';
import { renewCsrfSecret } from './csrf.js';

export {
  CSRF_META_KEY,
  checkRequestOrigin,
  isSafeMethod,
  issueCsrfToken,
  normalizeOrigin,
  type OriginCheck,
  type OriginFailure,
  type OriginHeaders,
  renewCsrfSecret,
  verifyCsrfToken,
} from './csrf.js';

/** A request's session plus the engine that loaded it: what every helper here works on. */
export interface AuthContext {
  /** The engine (store, options, key helpers). */
  readonly sessions: Sessions<SessionData>;
  /** The request's session state. */
  readonly state: SessionState<SessionData>;
}

/** Options of {@link login}. */
export interface LoginOptions {
  /** Roles recorded in the session's metadata (checked by `requireRole`). Default none. */
  roles?: readonly string[];
  /** Persistent cookie ("remember me"): `Max-Age` = the remaining absolute lifetime. Default false. */
  remember?: boolean;
  /**
   * Pre-login data keys carried into the authenticated session (e.g. a shopping cart). Default
   * none: everything else written before login is dropped.
   */
  keep?: readonly string[];
  /**
   * Most concurrent sessions of this user. When a login would exceed it, the user's least recently
   * active sessions are revoked. Needs a store with the per-user index. Default unlimited.
   */
  maxSessionsPerUser?: number;
}

/** The authenticated user as the session knows it. */
export interface AuthUser {
  /** The user ID given to {@link login}. */
  id: string;
  /** Roles recorded at login or by {@link setUserRoles}. */
  roles: readonly string[];
  /** Time of the login (ms since the epoch). */
  authTime: number | undefined;
}

/** Why a request is not authenticated. */
export type AuthFailure =
  /** No user is bound to the session. */
  | 'anonymous'
  /** The session middleware did not run for this request. */
  | 'no_session'
  /** The login is older than `maxAuthAge`: ask for the password again. */
  | 'reauth_required'
  /** The session was destroyed or rotated by another request. */
  | 'session_gone';

/**
 * The outcome of an authentication check: a tagged union, so it can never be misread as
 * "authenticated" by a truthiness test. Branch on `ok`.
 */
export type AuthResult = { ok: true; user: AuthUser } | { ok: false; reason: AuthFailure };

/** Options of {@link authResult}. */
export interface AuthCheckOptions {
  /** Deny (`reauth_required`) when the login is older than this many ms (step-up). */
  maxAuthAge?: number;
}

const ROLES = 'roles';

function checkUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > 512) {
    throw new SeshError(
      'INVALID_OPTIONS',
      'login(): the user ID must be a non-empty string (at most 512 characters); pass String(user.id).',
    );
  }
}

function checkRoles(roles: unknown): readonly string[] {
  if (roles === undefined) return [];
  if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string' || r.length === 0)) {
    throw new SeshError('INVALID_OPTIONS', '`roles` must be an array of non-empty strings, e.g. ["admin"].');
  }
  return [...new Set(roles as string[])];
}

function readRoles(value: unknown): readonly string[] {
  return Array.isArray(value) ? value.filter((r): r is string => typeof r === 'string') : [];
}

/** Run one store call with the engine's timeout; failures become `StoreUnavailableError` (503). */
async function storeCall<T>(sessions: Pick<Sessions<SessionData>, 'options'> | null, operation: string, fn: () => Promise<T>): Promise<T> {
  const ms = sessions?.options.storeTimeout ?? 2_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new StoreUnavailableError(operation, `The session store did not answer ${operation} within ${ms} ms (storeTimeout).`)),
          ms,
        );
      }),
    ]);
  } catch (err) {
    const e =
      err instanceof SeshError
        ? err
        : new StoreUnavailableError(operation, `The session store failed on ${operation}: ${(err as Error)?.message ?? String(err)}`, err);
    sessions?.options.onEvent?.({ type: 'store_error', detail: e.message, error: e });
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

function requireIndex(store: Store, what: string): Required<Pick<Store, 'listByUser' | 'destroyByUser'>> {
  if (typeof store.listByUser !== 'function' || typeof store.destroyByUser !== 'function') {
    throw new SeshError(
      'NOT_SUPPORTED',
      `${what} needs a store with the per-user index (listByUser/destroyByUser): use the memory, SQLite, Redis or PostgreSQL store.`,
    );
  }
  return store as Required<Pick<Store, 'listByUser' | 'destroyByUser'>>;
}

/**
 * Log a user in: rotate the session ID (the pre-login ID is destroyed in the store at once, so a
 * planted cookie is worthless), keep only the `keep` data keys, bind the user, record the auth
 * time and roles, renew the CSRF secret, start a new absolute lifetime, and write the session now.
 *
 * Rejects with `SESSION_GONE` (409) when a parallel request rotated or destroyed the same session
 * first, and with `STORE_UNAVAILABLE` (503) when the store fails; the login did not happen then.
 */
export async function login(ctx: AuthContext, userId: string, options: LoginOptions = {}): Promise<void> {
  checkUserId(userId);
  const roles = checkRoles(options.roles);
  const max = options.maxSessionsPerUser;
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    throw new SeshError('INVALID_OPTIONS', `\`maxSessionsPerUser\` must be a positive integer; got ${String(max)}.`);
  }
  if (options.keep !== undefined && (!Array.isArray(options.keep) || options.keep.some((k) => typeof k !== 'string'))) {
    throw new SeshError('INVALID_OPTIONS', '`keep` must be an array of data key names.');
  }
  const { sessions, state } = ctx;
  const index = max === undefined ? null : requireIndex(sessions.store, 'maxSessionsPerUser');
  await state.regenerate({ keep: options.keep ?? [], renewLifetime: true });
  state.setUser(userId);
  state.setMeta('authTime', sessions.options.clock.now());
  state.setMeta(ROLES, roles.length ? roles : undefined);
  state.setMeta('remember', options.remember === true ? true : undefined);
  renewCsrfSecret(state);
  if (index && max !== undefined) {
    const others = await storeCall(sessions, 'listByUser', () => index.listByUser(userId));
    const excess = others.length - (max - 1);
    if (excess > 0) {
      others.sort((a, b) => a.session.lastSeen - b.session.lastSeen || a.session.createdAt - b.session.createdAt);
      for (const entry of others.slice(0, excess)) {
        await storeCall(sessions, 'destroy', () => sessions.store.destroy(entry.key));
      }
      sessions.options.onEvent?.({ type: 'revoked', detail: `maxSessionsPerUser: ${excess} older session(s) revoked at login` });
    }
  }
  await state.save();
  sessions.options.onEvent?.({ type: 'login', sidHash: sessions.sidHash(state.id) });
}

/**
 * Log out: destroy the session in the store and clear the cookie. A slower request of the same
 * session still in flight cannot bring it back (its write is refused: update-if-exists). Rejects
 * with `STORE_UNAVAILABLE` when the store fails; the response still clears the cookie then.
 */
export async function logout(ctx: AuthContext): Promise<void> {
  await ctx.state.destroy();
}

/** The authentication state of a session, as a tagged {@link AuthResult}. Never throws. */
export function authResult(ctx: AuthContext | null, options: AuthCheckOptions = {}): AuthResult {
  if (!ctx) return { ok: false, reason: 'no_session' };
  const { state, sessions } = ctx;
  if (state.gone) return { ok: false, reason: 'session_gone' };
  const id = state.userId;
  if (typeof id !== 'string' || id.length === 0) return { ok: false, reason: 'anonymous' };
  const at = state.getMeta('authTime');
  const authTime = typeof at === 'number' && Number.isFinite(at) ? at : undefined;
  if (options.maxAuthAge !== undefined) {
    if (authTime === undefined || sessions.options.clock.now() - authTime > options.maxAuthAge) {
      return { ok: false, reason: 'reauth_required' };
    }
  }
  return { ok: true, user: { id, roles: readRoles(state.getMeta(ROLES)), authTime } };
}

/** True when the user has at least one of `roles` (an empty list means "any authenticated user"). */
export function hasAnyRole(user: AuthUser, roles: readonly string[]): boolean {
  return roles.length === 0 || roles.some((r) => user.roles.includes(r));
}

/** One session of a user, as {@link listSessions} shows it. Safe to send to that user. */
export interface SessionInfo {
  /**
   * Public handle for {@link revokeSession}: the store key (a SHA-256 of the session ID). It
   * cannot be turned back into the ID and is never accepted as a cookie.
   */
  handle: string;
  /** True for the session of the request that asked. */
  current: boolean;
  /** Creation time of the session (ms). */
  createdAt: number;
  /** Last activity (ms; written at most once per `touchAfter`). */
  lastSeen: number;
  /** When the session expires if unused (ms). */
  expiresAt: number;
  /** Time of the login (ms), if recorded. */
  authTime: number | undefined;
  /** Client IP recorded when the session was created (with `trackClient`). */
  ip: string | undefined;
  /** User-Agent recorded when the session was created (with `trackClient`). */
  userAgent: string | undefined;
  /** Readable device label from the User-Agent, e.g. "Firefox 128 on Windows (desktop)". */
  device: string;
  /** True when the cookie is persistent ("remember me"). */
  remember: boolean;
}

/**
 * A readable label for a User-Agent string ("Safari 17.1 on macOS (desktop)"), parsed with
 * bowser. Returns "Unknown device" for an empty or unparseable value.
 */
export function deviceLabel(userAgent: string | undefined): string {
  if (!userAgent) return 'Unknown device';
  try {
    const r = Bowser.parse(userAgent.slice(0, 512));
    const browser = r.browser.name ? `${r.browser.name}${r.browser.version ? ` ${r.browser.version.split('.')[0]}` : ''}` : '';
    const os = r.os.name ?? '';
    const platform = r.platform.type ?? '';
    const label = [browser, os && `on ${os}`].filter(Boolean).join(' ');
    if (!label) return 'Unknown device';
    return platform ? `${label} (${platform})` : label;
  } catch {
    return 'Unknown device';
  }
}

function info(entry: StoredSessionEntry, currentKey: string | null): SessionInfo {
  const s: StoredSession = entry.session;
  const ua = typeof s.meta.userAgent === 'string' ? s.meta.userAgent : undefined;
  const at = s.meta.authTime;
  return {
    handle: entry.key,
    current: entry.key === currentKey,
    createdAt: s.createdAt,
    lastSeen: s.lastSeen,
    expiresAt: s.expiresAt,
    authTime: typeof at === 'number' ? at : undefined,
    ip: typeof s.meta.ip === 'string' ? s.meta.ip : undefined,
    userAgent: ua,
    device: deviceLabel(ua),
    remember: s.meta.remember === true,
  };
}

function signedInUser(ctx: AuthContext, what: string): string {
  const id = ctx.state.userId;
  if (typeof id !== 'string' || ctx.state.gone) {
    throw new SeshError('UNAUTHENTICATED', `${what} needs a logged-in user; protect the route with requireAuth().`, { status: 401 });
  }
  return id;
}

function currentKey(state: SessionState<SessionData>): string | null {
  return state.isNew ? null : state.storeKey;
}

/**
 * The live sessions of the logged-in user (newest activity first), each with creation and
 * last-seen times, IP, user agent, a device label, and whether it is the current one.
 * Rejects with `UNAUTHENTICATED` for an anonymous session and `NOT_SUPPORTED` without the index.
 */
export async function listSessions(ctx: AuthContext): Promise<SessionInfo[]> {
  const userId = signedInUser(ctx, 'listSessions()');
  const store = requireIndex(ctx.sessions.store, 'listSessions()');
  const entries = await storeCall(ctx.sessions, 'listByUser', () => store.listByUser(userId));
  const now = ctx.sessions.options.clock.now();
  const key = currentKey(ctx.state);
  return entries
    .filter((e) => e.session.userId === userId && e.session.expiresAt > now)
    .map((e) => info(e, key))
    .sort((a, b) => b.lastSeen - a.lastSeen);
}

/**
 * Revoke one session of the logged-in user by its {@link SessionInfo.handle}. Only the user's own
 * sessions can be revoked; another handle resolves `false`. Revoking the current session logs
 * this request out. Resolves `true` when a session was revoked.
 */
export async function revokeSession(ctx: AuthContext, handle: string): Promise<boolean> {
  const userId = signedInUser(ctx, 'revokeSession()');
  if (typeof handle !== 'string' || handle.length === 0) return false;
  const store = requireIndex(ctx.sessions.store, 'revokeSession()');
  if (handle === currentKey(ctx.state)) {
    await ctx.state.destroy();
    ctx.sessions.options.onEvent?.({ type: 'revoked', detail: 'current session revoked by its user' });
    return true;
  }
  const entries = await storeCall(ctx.sessions, 'listByUser', () => store.listByUser(userId));
  const entry = entries.find((e) => e.key === handle && e.session.userId === userId);
  if (!entry) return false;
  const done = await storeCall(ctx.sessions, 'destroy', () => ctx.sessions.store.destroy(entry.key));
  if (done) ctx.sessions.options.onEvent?.({ type: 'revoked', detail: 'one session revoked by its user' });
  return done;
}

/**
 * Revoke every session of the logged-in user except the current one ("log out other devices").
 * Resolves how many were revoked.
 */
export async function revokeOtherSessions(ctx: AuthContext): Promise<number> {
  const userId = signedInUser(ctx, 'revokeOtherSessions()');
  const store = requireIndex(ctx.sessions.store, 'revokeOtherSessions()');
  const key = currentKey(ctx.state);
  const n = await storeCall(ctx.sessions, 'destroyByUser', () => store.destroyByUser(userId, key ? [key] : []));
  ctx.sessions.options.onEvent?.({ type: 'revoked', detail: `${n} other session(s) revoked by their user` });
  return n;
}

/** Something holding a store: the engine, the Express middleware (it has `.sessions`), or a store. */
export type StoreHolder = Sessions<SessionData> | { readonly sessions: Sessions<SessionData> } | Store;

function resolveHolder(target: StoreHolder): { store: Store; sessions: Sessions<SessionData> | null } {
  // The Express middleware is a function carrying `.sessions`; the engine has `store` and `options`.
  const t = target as Partial<{ sessions: Sessions<SessionData>; store: Store; options: unknown; get: unknown }> | null;
  if (t && (typeof t === 'object' || typeof t === 'function')) {
    if (t.sessions && typeof t.sessions === 'object' && 'store' in t.sessions) return { store: t.sessions.store, sessions: t.sessions };
    if (t.store && t.options) return { store: t.store, sessions: t as Sessions<SessionData> };
    if (typeof t.get === 'function') return { store: t as Store, sessions: null };
  }
  throw new SeshError('INVALID_OPTIONS', 'Pass the session middleware, its `.sessions` engine, or a Store.');
}

/**
 * Revoke every session of a user (password change, account lock, admin action), including the
 * one making the request if it belongs to that user. Resolves how many were revoked.
 */
export async function revokeAllSessions(target: StoreHolder, userId: string): Promise<number> {
  checkUserId(userId);
  const { store, sessions } = resolveHolder(target);
  const index = requireIndex(store, 'revokeAllSessions()');
  const n = await storeCall(sessions, 'destroyByUser', () => index.destroyByUser(userId));
  sessions?.options.onEvent?.({ type: 'revoked', detail: `${n} session(s) revoked for a user` });
  return n;
}

/**
 * Set the roles of the request's own session (written with its next save). {@link setUserRoles}
 * changes the stored sessions; this keeps the request's in-memory copy in step, so a later
 * `regenerate()` in the same request does not write the old roles back.
 */
export function setSessionRoles(state: SessionState<SessionData>, roles: readonly string[]): void {
  const list = checkRoles(roles);
  state.setMeta(ROLES, list.length ? list : undefined);
}

/**
 * Change the roles recorded in every live session of a user, so a promotion or demotion takes
 * effect on their other devices at once instead of at expiry. Each session is patched in place
 * (update-if-exists: nothing is re-created). Call it after updating your user database; a login
 * racing with it records whatever roles it read from that database. Resolves how many sessions
 * were updated.
 */
export async function setUserRoles(target: StoreHolder, userId: string, roles: readonly string[]): Promise<number> {
  checkUserId(userId);
  const list = checkRoles(roles);
  const { store, sessions } = resolveHolder(target);
  const index = requireIndex(store, 'setUserRoles()');
  const entries = await storeCall(sessions, 'listByUser', () => index.listByUser(userId));
  let n = 0;
  for (const e of entries) {
    if (e.session.userId !== userId) continue;
    const patch = list.length
      ? { metaSet: { [ROLES]: list }, expiresAt: e.session.expiresAt }
      : { metaUnset: [ROLES], expiresAt: e.session.expiresAt };
    if (await storeCall(sessions, 'patch', () => store.patch(e.key, patch))) n++;
  }
  return n;
}
