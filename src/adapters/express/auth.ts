import type { NextFunction, Request, RequestHandler, Response } from 'express';
import {
  type AuthCheckOptions,
  type AuthContext,
  type AuthResult,
  type AuthUser,
  authResult,
  hasAnyRole,
  type LoginOptions,
  listSessions as listCore,
  login as loginCore,
  logout as logoutCore,
  revokeSession as revokeOneCore,
  revokeOtherSessions as revokeOthersCore,
  type SessionInfo,
  type StoreHolder,
  setSessionRoles,
  setUserRoles as setUserRolesCore,
} from '../../auth/index.js';
import { SeshError } from '../../index.js';
import { getSessionState, getSessions, hasSessionState } from './registry.js';

export type { AuthFailure, AuthResult, AuthUser, LoginOptions, SessionInfo, StoreHolder } from '../../auth/index.js';
export { deviceLabel, revokeAllSessions } from '../../auth/index.js';

function context(req: Request): AuthContext {
  return { sessions: getSessions(req), state: getSessionState(req) };
}

/**
 * Log the user in on this request: new session ID (the pre-login one is dead at once), only
 * `keep` data carried over, user and auth time recorded, CSRF secret renewed, session saved now.
 *
 * ```ts
 * app.post('/login', async (req, res) => {
 *   const user = await checkPassword(req.body.email, req.body.password);
 *   if (!user) return res.status(401).send('Wrong email or password');
 *   await login(req, String(user.id), { roles: user.roles, keep: ['cart'] });
 *   res.redirect('/');
 * });
 * ```
 */
export async function login(req: Request, userId: string, options?: LoginOptions): Promise<void> {
  await loginCore(context(req), userId, options);
}

/** Options of {@link logout}. */
export interface LogoutOptions {
  /** Also send `Clear-Site-Data: "cookies"` (clears every cookie of the site). Default false. */
  clearSiteData?: boolean;
}

/**
 * Log out: the session is destroyed in the store and the cookie cleared. A slower request of the
 * same session still in flight cannot bring it back. Rejects (503) when the store fails; the
 * response still clears the cookie.
 */
export async function logout(req: Request, options: LogoutOptions = {}): Promise<void> {
  const ctx = context(req);
  if (options.clearSiteData && req.res && !req.res.headersSent) req.res.setHeader('Clear-Site-Data', '"cookies"');
  await logoutCore(ctx);
}

/**
 * The authentication state of this request as a tagged union: `{ ok: true, user }` or
 * `{ ok: false, reason }`. Never throws; without the session middleware the reason is `no_session`.
 */
export function authenticate(req: Request, options?: AuthCheckOptions): AuthResult {
  if (!hasSessionState(req)) return { ok: false, reason: 'no_session' };
  let ctx: AuthContext;
  try {
    ctx = context(req);
  } catch {
    return { ok: false, reason: 'no_session' };
  }
  return authResult(ctx, options);
}

/** Options of {@link requireAuth} and {@link requireRole}. */
export interface RequireAuthOptions<U = AuthUser> extends AuthCheckOptions {
  /**
   * Look the user up (e.g. in your database) on every request. Return null when the user no
   * longer exists or is disabled: the request is denied with 401. A throw becomes a 500. The
   * value is put on `res.locals.user`; without the hook `res.locals.user` is the {@link AuthUser}.
   */
  loadUser?: (user: AuthUser, req: Request) => U | null | undefined | Promise<U | null | undefined>;
}

function deny(status: 401 | 403, why: string): SeshError {
  return status === 401
    ? new SeshError('UNAUTHENTICATED', `Authentication required (${why}).`, { status: 401 })
    : new SeshError('FORBIDDEN', `Forbidden (${why}).`, { status: 403 });
}

function guard<U>(roles: readonly string[], options: RequireAuthOptions<U>): RequestHandler {
  for (const r of roles) {
    if (typeof r !== 'string' || r.length === 0)
      throw new SeshError('INVALID_OPTIONS', 'requireRole(): every role must be a non-empty string.');
  }
  if (options.maxAuthAge !== undefined && !(Number.isFinite(options.maxAuthAge) && options.maxAuthAge > 0)) {
    throw new SeshError('INVALID_OPTIONS', '`maxAuthAge` must be a positive number of milliseconds.');
  }
  if (options.loadUser !== undefined && typeof options.loadUser !== 'function') {
    throw new SeshError('INVALID_OPTIONS', '`loadUser` must be a function.');
  }
  return (req: Request, res: Response, next: NextFunction): void => {
    // Deny on any doubt: only an explicit `ok: true` lets the request through.
    let result: AuthResult;
    try {
      if (!hasSessionState(req)) {
        next(
          new SeshError('NO_SESSION', 'requireAuth() ran without a session: add app.use(session({ secret })) before it.', { status: 500 }),
        );
        return;
      }
      result = authResult(context(req), options);
    } catch (err) {
      next(err);
      return;
    }
    if (result.ok !== true) {
      next(deny(401, result.reason));
      return;
    }
    const user = result.user;
    if (!hasAnyRole(user, roles)) {
      next(deny(403, `needs one of the roles: ${roles.join(', ')}`));
      return;
    }
    if (!options.loadUser) {
      res.locals.user = user;
      next();
      return;
    }
    Promise.resolve()
      .then(() => (options.loadUser as NonNullable<typeof options.loadUser>)(user, req))
      .then(
        (loaded) => {
          if (loaded === null || loaded === undefined) {
            next(deny(401, 'user_not_found'));
            return;
          }
          res.locals.user = loaded;
          next();
        },
        (err: unknown) => next(err instanceof Error ? err : new SeshError('INVALID_OPTIONS', `loadUser failed: ${String(err)}`)),
      );
  };
}

/**
 * Middleware: only logged-in users pass. Anonymous requests get a 401 `UNAUTHENTICATED` error
 * (handled by your error handler); a missing session middleware, a store error or a throwing
 * `loadUser` give 5xx. Nothing ever passes by default.
 */
export function requireAuth<U = AuthUser>(options: RequireAuthOptions<U> = {}): RequestHandler {
  return guard(Object.freeze([]), options);
}

/**
 * Middleware: logged-in users with at least one of `roles` pass; anonymous requests get 401,
 * users without the role 403. Roles come from the session (set at login or by `setUserRoles`).
 * Pass options as a last object argument: `requireRole('admin', { maxAuthAge: 300_000 })`.
 */
export function requireRole<U = AuthUser>(...args: Array<string | RequireAuthOptions<U>>): RequestHandler {
  const last = args[args.length - 1];
  const options = last !== undefined && typeof last === 'object' ? (args.pop() as RequireAuthOptions<U>) : {};
  const roles = args as string[];
  if (roles.length === 0) throw new SeshError('INVALID_OPTIONS', 'requireRole() needs at least one role; use requireAuth() for any user.');
  return guard(roles, options);
}

/** The logged-in user's live sessions (devices), newest activity first, with the current one marked. */
export function listSessions(req: Request): Promise<SessionInfo[]> {
  return listCore(context(req));
}

/** Revoke one of the logged-in user's own sessions by its `handle` (from {@link listSessions}). */
export function revokeSession(req: Request, handle: string): Promise<boolean> {
  return revokeOneCore(context(req), handle);
}

/** Revoke every session of the logged-in user except this one. Resolves the count. */
export function revokeOtherSessions(req: Request): Promise<number> {
  return revokeOthersCore(context(req));
}

function isRequest(x: unknown): x is Request {
  return typeof x === 'object' && x !== null && 'headers' in x && 'method' in x && hasSessionState(x as Request);
}

/**
 * Change the roles of every live session of `userId` at once (promotion, demotion). Pass the
 * middleware, its `.sessions`, a store, or the current `req`: with `req`, the request's own
 * session is updated in memory too when it belongs to that user, so nothing in this request can
 * write the old roles back. Resolves how many stored sessions were updated.
 */
export async function setUserRoles(target: StoreHolder | Request, userId: string, roles: readonly string[]): Promise<number> {
  if (!isRequest(target)) return setUserRolesCore(target, userId, roles);
  const n = await setUserRolesCore(getSessions(target), userId, roles);
  const state = getSessionState(target);
  if (state.userId === userId) setSessionRoles(state, roles);
  return n;
}
